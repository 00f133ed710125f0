// A small typed client for the Outpost API v2 (docs/api.md). One method per
// endpoint the CLI uses; each returns the JSON:API `data` unchanged so the
// CLI's --json output is exactly what the API sent. Errors: ApiError (the
// server answered with an error document) or ServerUnreachableError.
import { ApiError } from './api-error.ts';
import type {
  Agent,
  ConfigurationVersion,
  Phase,
  PhaseKind,
  Pool,
  PoolKind,
  PoolToken,
  PoolWebhook,
  PoolWebhookInput,
  Run,
  RunInput,
  StateOutput,
  StateVersion,
  Variable,
  VariableInput,
  VcsDelivery,
  VcsProvider,
  VcsRepositoryCheck,
  VcsProviderInput,
  VcsProviderUpdate,
  VcsTrigger,
  WebhookDelivery,
  Workspace,
  WorkspaceInput,
} from './api-resources.ts';
import { ApiTransport, type TransportOptions } from './api-transport.ts';

const segment = encodeURIComponent;
const phasePath: Readonly<Record<PhaseKind, string>> = { plan: 'plans', apply: 'applies' };

export interface LogReadOptions {
  /** Bytes of the log already received: the server sends only what follows. */
  readonly offset?: number;
  /** Keep the response open and stream new output until the phase is over. */
  readonly follow?: boolean;
  /** Longest silence on a followed stream before giving up (the caller reconnects). */
  readonly idleTimeoutMs?: number;
}

export type RunAction = 'apply' | 'discard' | 'cancel' | 'force-cancel';

export class ApiClient {
  readonly #http: ApiTransport;

  constructor(options: TransportOptions) {
    this.#http = new ApiTransport(options);
  }

  get url(): string {
    return this.#http.baseUrl;
  }

  // Agent pools, their tokens and agents.

  listPools(org: string): Promise<Pool[]> {
    return this.#http.allPages(`/api/v2/organizations/${segment(org)}/agent-pools`);
  }

  createPool(org: string, name: string, kind: PoolKind = 'runner'): Promise<Pool> {
    return this.#http.data('POST', `/api/v2/organizations/${segment(org)}/agent-pools`, {
      data: { type: 'agent-pools', attributes: { name, kind } },
    });
  }

  getPool(poolId: string): Promise<Pool> {
    return this.#http.data('GET', `/api/v2/agent-pools/${segment(poolId)}`);
  }

  /** The only response that carries the token's secret (`attributes.token`). */
  createPoolToken(poolId: string, description?: string): Promise<PoolToken> {
    return this.#http.data('POST', `/api/v2/agent-pools/${segment(poolId)}/authentication-tokens`, {
      data: { type: 'authentication-tokens', attributes: { description } },
    });
  }

  listPoolTokens(poolId: string): Promise<PoolToken[]> {
    return this.#http.allPages(`/api/v2/agent-pools/${segment(poolId)}/authentication-tokens`);
  }

  async revokePoolToken(tokenId: string): Promise<void> {
    await this.#http.json('DELETE', `/api/v2/authentication-tokens/${segment(tokenId)}`);
  }

  // A serverless pool's webhook and its deliveries.
  getWebhook(poolId: string): Promise<PoolWebhook> {
    return this.#http.data('GET', `/api/v2/agent-pools/${segment(poolId)}/webhook`);
  }

  setWebhook(poolId: string, attributes: PoolWebhookInput): Promise<PoolWebhook> {
    return this.#http.data('PUT', `/api/v2/agent-pools/${segment(poolId)}/webhook`, { data: { type: 'pool-webhooks', attributes } });
  }

  async removeWebhook(poolId: string): Promise<void> {
    await this.#http.json('DELETE', `/api/v2/agent-pools/${segment(poolId)}/webhook`);
  }

  rotateWebhookSecret(poolId: string, overlapSeconds: number): Promise<PoolWebhook> {
    return this.#http.data('POST', `/api/v2/agent-pools/${segment(poolId)}/webhook/actions/rotate-secret`, {
      data: { type: 'pool-webhooks', attributes: { 'overlap-seconds': overlapSeconds } },
    });
  }

  testWebhook(poolId: string): Promise<WebhookDelivery> {
    return this.#http.data('POST', `/api/v2/agent-pools/${segment(poolId)}/webhook/actions/test`);
  }

  listWebhookDeliveries(poolId: string, pageSize: number): Promise<WebhookDelivery[]> {
    return this.#http.data('GET', `/api/v2/agent-pools/${segment(poolId)}/webhook-deliveries?page%5Bsize%5D=${pageSize}`);
  }

  listAgents(poolId: string): Promise<Agent[]> {
    return this.#http.allPages(`/api/v2/agent-pools/${segment(poolId)}/agents`);
  }

  // Workspaces and their variables.

  listWorkspaces(org: string): Promise<Workspace[]> {
    return this.#http.allPages(`/api/v2/organizations/${segment(org)}/workspaces`);
  }

  createWorkspace(org: string, attributes: WorkspaceInput): Promise<Workspace> {
    return this.#http.data('POST', `/api/v2/organizations/${segment(org)}/workspaces`, {
      data: { type: 'workspaces', attributes },
    });
  }

  getWorkspaceByName(org: string, name: string): Promise<Workspace> {
    return this.#http.data('GET', `/api/v2/organizations/${segment(org)}/workspaces/${segment(name)}`);
  }

  getWorkspace(workspaceId: string): Promise<Workspace> {
    return this.#http.data('GET', `/api/v2/workspaces/${segment(workspaceId)}`);
  }

  updateWorkspace(workspaceId: string, attributes: WorkspaceInput): Promise<Workspace> {
    return this.#http.data('PATCH', `/api/v2/workspaces/${segment(workspaceId)}`, {
      data: { type: 'workspaces', id: workspaceId, attributes },
    });
  }

  async deleteWorkspace(workspaceId: string): Promise<void> {
    await this.#http.json('DELETE', `/api/v2/workspaces/${segment(workspaceId)}`);
  }

  listVariables(workspaceId: string): Promise<Variable[]> {
    return this.#http.data('GET', `/api/v2/workspaces/${segment(workspaceId)}/vars`);
  }

  createVariable(workspaceId: string, attributes: VariableInput): Promise<Variable> {
    return this.#http.data('POST', `/api/v2/workspaces/${segment(workspaceId)}/vars`, {
      data: { type: 'vars', attributes },
    });
  }

  updateVariable(workspaceId: string, variableId: string, attributes: VariableInput): Promise<Variable> {
    return this.#http.data('PATCH', `/api/v2/workspaces/${segment(workspaceId)}/vars/${segment(variableId)}`, {
      data: { type: 'vars', id: variableId, attributes },
    });
  }

  async deleteVariable(workspaceId: string, variableId: string): Promise<void> {
    await this.#http.json('DELETE', `/api/v2/workspaces/${segment(workspaceId)}/vars/${segment(variableId)}`);
  }

  /** What version control did for the workspace (pushes, tags, pull requests, polls), newest first. */
  listVcsTriggers(workspaceId: string, pageSize: number): Promise<VcsTrigger[]> {
    return this.#http.data('GET', `/api/v2/workspaces/${segment(workspaceId)}/vcs-triggers?page%5Bsize%5D=${pageSize}`);
  }

  // Version control providers and the webhooks they sent.

  listVcsProviders(org: string): Promise<VcsProvider[]> {
    return this.#http.data('GET', `/api/v2/organizations/${segment(org)}/vcs-providers`);
  }

  /** The only response, with rotateVcsWebhookSecret's, that carries the webhook secret (`attributes['webhook-secret']`). */
  createVcsProvider(org: string, attributes: VcsProviderInput): Promise<VcsProvider> {
    return this.#http.data('POST', `/api/v2/organizations/${segment(org)}/vcs-providers`, { data: { type: 'vcs-providers', attributes } });
  }

  getVcsProvider(providerId: string): Promise<VcsProvider> {
    return this.#http.data('GET', `/api/v2/vcs-providers/${segment(providerId)}`);
  }

  updateVcsProvider(providerId: string, attributes: VcsProviderUpdate): Promise<VcsProvider> {
    return this.#http.data('PATCH', `/api/v2/vcs-providers/${segment(providerId)}`, {
      data: { type: 'vcs-providers', id: providerId, attributes },
    });
  }

  async deleteVcsProvider(providerId: string): Promise<void> {
    await this.#http.json('DELETE', `/api/v2/vcs-providers/${segment(providerId)}`);
  }

  rotateVcsWebhookSecret(providerId: string, overlapSeconds: number): Promise<VcsProvider> {
    return this.#http.data('POST', `/api/v2/vcs-providers/${segment(providerId)}/actions/rotate-webhook-secret`, { 'overlap-seconds': overlapSeconds });
  }

  /** Tries the provider's credentials on a repository (git and the forge's API), through whoever reaches the provider; waits up to 30 s. */
  checkVcsRepository(providerId: string, repository: string): Promise<VcsRepositoryCheck> {
    return this.#http.data('POST', `/api/v2/vcs-providers/${segment(providerId)}/actions/check`, { repository });
  }

  listVcsDeliveries(providerId: string, pageSize: number): Promise<VcsDelivery[]> {
    return this.#http.data('GET', `/api/v2/vcs-providers/${segment(providerId)}/deliveries?page%5Bsize%5D=${pageSize}`);
  }

  // Configuration versions and runs.

  createConfigurationVersion(workspaceId: string): Promise<ConfigurationVersion> {
    return this.#http.data('POST', `/api/v2/workspaces/${segment(workspaceId)}/configuration-versions`, {
      data: { type: 'configuration-versions', attributes: { 'auto-queue-runs': false } },
    });
  }

  /** PUTs the .tar.gz to the absolute upload-url the configuration version was created with. */
  async uploadConfiguration(uploadUrl: string, archive: Uint8Array): Promise<void> {
    await this.#http.bytes('PUT', uploadUrl, { body: archive, contentType: 'application/octet-stream' });
  }

  getConfigurationVersion(id: string): Promise<ConfigurationVersion> {
    return this.#http.data('GET', `/api/v2/configuration-versions/${segment(id)}`);
  }

  createRun(input: RunInput): Promise<Run> {
    return this.#http.data('POST', '/api/v2/runs', {
      data: {
        type: 'runs',
        attributes: {
          message: input.message,
          'is-destroy': input.isDestroy,
          'plan-only': input.planOnly,
          'auto-apply': input.autoApply,
        },
        relationships: {
          workspace: { data: { type: 'workspaces', id: input.workspaceId } },
          'configuration-version': { data: { type: 'configuration-versions', id: input.configurationVersionId } },
        },
      },
    });
  }

  getRun(runId: string): Promise<Run> {
    return this.#http.data('GET', `/api/v2/runs/${segment(runId)}`);
  }

  listRuns(workspaceId: string): Promise<Run[]> {
    return this.#http.data('GET', `/api/v2/workspaces/${segment(workspaceId)}/runs`);
  }

  /** apply | discard | cancel | force-cancel; the server answers 202 and acts asynchronously. */
  async runAction(runId: string, action: RunAction, comment?: string): Promise<void> {
    const body = comment === undefined ? undefined : { comment };
    await this.#http.json('POST', `/api/v2/runs/${segment(runId)}/actions/${action}`, body);
  }

  getPhase(kind: PhaseKind, phaseId: string): Promise<Phase> {
    return this.#http.data('GET', `/api/v2/${phasePath[kind]}/${segment(phaseId)}`);
  }

  /** The plan in `show -json` form. */
  async getPlanJson(planId: string): Promise<unknown> {
    return this.#http.json('GET', `/api/v2/plans/${segment(planId)}/json-output`, undefined, { accept: 'application/json' });
  }

  /** Streams a phase's log from `offset`, calling onChunk as bytes arrive. */
  readLog(kind: PhaseKind, phaseId: string, options: LogReadOptions, onChunk: (chunk: Buffer) => void): Promise<void> {
    return this.#http.stream(`/api/v2/${phasePath[kind]}/${segment(phaseId)}/logs`, onChunk, {
      accept: 'text/plain',
      query: { offset: options.offset ?? 0, follow: options.follow === true ? 1 : undefined },
      // A followed log may send nothing (not even headers) until the phase starts.
      headersTimeoutMs: options.follow === true ? options.idleTimeoutMs : undefined,
      bodyTimeoutMs: options.follow === true ? options.idleTimeoutMs : undefined,
    });
  }

  // State.

  /** The newest 100 state versions, newest first. */
  listStateVersions(workspaceId: string): Promise<StateVersion[]> {
    return this.#http.data('GET', `/api/v2/workspaces/${segment(workspaceId)}/state-versions?page%5Bsize%5D=100`);
  }

  /** The workspace's current state version, or undefined when it has none yet. */
  async getCurrentStateVersion(workspaceId: string): Promise<StateVersion | undefined> {
    try {
      return await this.#http.data<StateVersion>('GET', `/api/v2/workspaces/${segment(workspaceId)}/current-state-version`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && error.code === 'not_found') return undefined;
      throw error;
    }
  }

  getStateVersion(stateVersionId: string): Promise<StateVersion> {
    return this.#http.data('GET', `/api/v2/state-versions/${segment(stateVersionId)}`);
  }

  /** The raw state file (JSON) of a state version. */
  downloadState(stateVersionId: string): Promise<Buffer> {
    return this.#http.bytes('GET', `/api/v2/state-versions/${segment(stateVersionId)}/download`, { accept: 'application/json' });
  }

  getStateOutputs(stateVersionId: string): Promise<StateOutput[]> {
    return this.#http.data('GET', `/api/v2/state-versions/${segment(stateVersionId)}/outputs`);
  }
}

/** What the CLI needs from a client; tests hand in fakes of this shape. */
export type OutpostApi = Pick<ApiClient, keyof ApiClient>;
