// The resources of the Outpost API v2 (/api/v2), once, for the server that
// presents them, the CLI that reads them and the tests that check them.
// The API follows TFE API v2 conventions (JSON:API documents, dasherized
// attribute names, TFE type names), so attribute keys are kept exactly as
// they travel; docs/api.md documents every field.
//
// Compatibility: clients parse attributes loosely (a newer server may add
// attributes, which pass through untouched: the CLI's `--json` prints what
// the server sent). Adding an attribute is compatible; removing or renaming
// one is not.
import { z } from 'zod';
import { agentStatuses, engines, executionModes, poolKinds, runStatuses } from './statuses.ts';
import { ingressAttributes, vcsProviderKinds } from './vcs-api.ts';
import { errorCodes } from './errors.ts';

const timestamp = z.string();

export const resourceIdentifier = z.object({ type: z.string(), id: z.string() });
export type ResourceIdentifier = z.infer<typeof resourceIdentifier>;

export const relationship = z.object({ data: z.union([resourceIdentifier, z.array(resourceIdentifier), z.null()]) });
export type Relationship = z.infer<typeof relationship>;

/** A JSON:API resource object of one type, with its attributes' schema. */
function resource<const Type extends string, Attributes extends z.ZodType>(type: Type, attributes: Attributes) {
  return z.object({
    id: z.string(),
    type: z.literal(type),
    attributes,
    relationships: z.record(z.string(), relationship).optional(),
    links: z.record(z.string(), z.string()).optional(),
  });
}

export interface Resource<Type extends string, Attributes> {
  readonly id: string;
  readonly type: Type;
  readonly attributes: Attributes;
  readonly relationships?: Readonly<Record<string, Relationship>>;
  readonly links?: Readonly<Record<string, string>>;
}

/** The id a to-one relationship points at, if the server included it. */
export function relatedId(resource: Pick<Resource<string, unknown>, 'relationships'>, name: string): string | undefined {
  const data = resource.relationships?.[name]?.data;
  if (data === null || data === undefined || Array.isArray(data)) return undefined;
  return (data as ResourceIdentifier).id;
}

export const organizationAttributes = z.looseObject({
  name: z.string(),
  'created-at': timestamp,
});
export const organizationResource = resource('organizations', organizationAttributes);
export type Organization = z.infer<typeof organizationResource>;

export const poolAttributes = z.looseObject({
  name: z.string(),
  'created-at': timestamp,
  /** Agents registered and not deregistered. */
  'agent-count': z.number().int(),
  'organization-scoped': z.boolean(),
  /** Absent from servers before VCS pools: `runner`. */
  kind: z.enum(poolKinds).optional(),
});
export const poolResource = resource('agent-pools', poolAttributes);
export type Pool = z.infer<typeof poolResource>;

export const poolTokenAttributes = z.looseObject({
  /** The secret: present only in the response that created the token. */
  token: z.string().optional(),
  description: z.string().nullable(),
  'created-at': timestamp,
  'last-used-at': timestamp.nullable(),
  'revoked-at': timestamp.nullable(),
});
export const poolTokenResource = resource('authentication-tokens', poolTokenAttributes);
export type PoolToken = z.infer<typeof poolTokenResource>;

export const poolWebhookAttributes = z.looseObject({
  url: z.string(),
  /** Names of the custom headers; their values are never shown. */
  headers: z.array(z.string()),
  enabled: z.boolean(),
  'deliveries-per-minute': z.number().int(),
  'claim-timeout-seconds': z.number().int(),
  /** Present only in the response that set or rotated it. */
  'signing-secret': z.string().optional(),
  /** Until then receivers may also accept the previous secret; null when there is none. */
  'previous-secret-expires-at': timestamp.nullable(),
  'created-at': timestamp,
  'updated-at': timestamp,
});
export const poolWebhookResource = resource('pool-webhooks', poolWebhookAttributes);
export type PoolWebhook = z.infer<typeof poolWebhookResource>;

export const webhookDeliveryAttributes = z.looseObject({
  event: z.enum(['job.queued', 'ping']),
  status: z.enum(['pending', 'sending', 'delivered', 'failed', 'abandoned']),
  attempts: z.number().int(),
  'response-status': z.number().int().nullable(),
  'response-excerpt': z.string().nullable(),
  'latency-ms': z.number().int().nullable(),
  error: z.string().nullable(),
  'next-attempt-at': timestamp.nullable(),
  'created-at': timestamp,
  'updated-at': timestamp,
});
export const webhookDeliveryResource = resource('webhook-deliveries', webhookDeliveryAttributes);
export type WebhookDelivery = z.infer<typeof webhookDeliveryResource>;

export const agentAttributes = z.looseObject({
  name: z.string(),
  status: z.enum(agentStatuses),
  version: z.string(),
  driver: z.string(),
  concurrency: z.number().int(),
  /** Runs one job, then exits (serverless tasks). */
  single: z.boolean(),
  'registered-at': timestamp,
  'last-ping-at': timestamp.nullable(),
  'running-jobs': z.number().int(),
});
export const agentResource = resource('agents', agentAttributes);
export type Agent = z.infer<typeof agentResource>;

export const workspaceAttributes = z.looseObject({
  name: z.string(),
  'auto-apply': z.boolean(),
  'working-directory': z.string(),
  engine: z.enum(engines),
  /** The engine version (TFE's name for it, whichever engine is used). */
  'terraform-version': z.string(),
  /** `agent`: runs go to the agent pool; `local`: the CLI runs the engine, and only state and its lock live in Outpost. */
  'execution-mode': z.enum(executionModes),
  locked: z.boolean(),
  'tag-names': z.array(z.string()).optional(),
  /** The repository the workspace follows (TFE's attribute); null when it is not linked. */
  'vcs-repo': z
    .object({
      identifier: z.string(),
      branch: z.string(),
      'vcs-provider-id': z.string(),
      'oauth-token-id': z.string(),
      'ingress-submodules': z.boolean(),
      'tags-regex': z.string().nullable(),
      'repository-http-url': z.string().nullable(),
    })
    .nullable()
    .optional(),
  'trigger-patterns': z.array(z.string()).optional(),
  'speculative-enabled': z.boolean().optional(),
  /** Why the workspace's version control work waits or failed (no VCS agent connected, a fetch refused); null when it does not. */
  'vcs-status': z.string().nullable().optional(),
  'created-at': timestamp,
  'updated-at': timestamp,
});
export const workspaceResource = resource('workspaces', workspaceAttributes);
export type Workspace = z.infer<typeof workspaceResource>;

export const variableCategories = ['terraform', 'env'] as const;
export type VariableCategory = (typeof variableCategories)[number];

export const variableAttributes = z.looseObject({
  key: z.string(),
  /** null when the variable is sensitive: sensitive values are write-only. */
  value: z.string().nullable(),
  category: z.enum(variableCategories),
  hcl: z.boolean(),
  sensitive: z.boolean(),
  description: z.string().nullable(),
});
export const variableResource = resource('vars', variableAttributes);
export type Variable = z.infer<typeof variableResource>;

export const configurationVersionStatuses = ['pending', 'uploaded', 'errored'] as const;
export const configurationVersionAttributes = z.looseObject({
  status: z.enum(configurationVersionStatuses),
  source: z.string(),
  /** Bytes of the uploaded archive; null until it is uploaded. */
  size: z.number().int().nullable(),
  'auto-queue-runs': z.boolean(),
  'created-at': timestamp,
  'uploaded-at': timestamp.nullable(),
  /** Absolute URL to PUT the .tar.gz to; present while the status is pending. */
  'upload-url': z.string().nullable().optional(),
  'error-message': z.string().nullable().optional(),
  /** The commit, for a configuration version fetched from version control; null for uploads. */
  'ingress-attributes': ingressAttributes.nullable().optional(),
});
export const configurationVersionResource = resource('configuration-versions', configurationVersionAttributes);
export type ConfigurationVersion = z.infer<typeof configurationVersionResource>;

export const runAttributes = z.looseObject({
  status: z.enum(runStatuses),
  message: z.string().nullable(),
  'is-destroy': z.boolean(),
  'plan-only': z.boolean(),
  'auto-apply': z.boolean(),
  /** null until the plan has finished, like the counts below. */
  'has-changes': z.boolean().nullable(),
  'resource-additions': z.number().int().nullable(),
  'resource-changes': z.number().int().nullable(),
  'resource-destructions': z.number().int().nullable(),
  /** A code of the error catalogue (src/protocol/errors.ts) when the run errored. */
  'error-code': z.enum(errorCodes).nullable().optional(),
  'error-message': z.string().nullable(),
  'created-at': timestamp,
  'status-timestamps': z.record(z.string(), timestamp),
  /** `tfe-api` for uploads, `tfe-configuration-version` for runs started by version control (TFE's values). */
  source: z.string().optional(),
  /** The commit the run is of, for runs from version control (the configuration version's ingress attributes). */
  'ingress-attributes': ingressAttributes.nullable().optional(),
});
export const runResource = resource('runs', runAttributes);
export type Run = z.infer<typeof runResource>;

export const phaseStatuses = ['pending', 'queued', 'running', 'finished', 'errored', 'canceled', 'unreachable'] as const;
export type PhaseStatus = (typeof phaseStatuses)[number];

/** A phase has ended: its log will not grow any more. */
export function isPhaseOver(status: PhaseStatus): boolean {
  return status === 'finished' || status === 'errored' || status === 'canceled' || status === 'unreachable';
}

/** The plan or the apply of a run: they share their shape, as in TFE. */
export const phaseAttributes = z.looseObject({
  status: z.enum(phaseStatuses),
  'has-changes': z.boolean().nullable().optional(),
  'resource-additions': z.number().int().nullable(),
  'resource-changes': z.number().int().nullable(),
  'resource-destructions': z.number().int().nullable(),
  'log-read-url': z.string().optional(),
});
export type PhaseKind = 'plan' | 'apply';
export const planResource = resource('plans', phaseAttributes);
export const applyResource = resource('applies', phaseAttributes);
export type Phase = z.infer<typeof planResource> | z.infer<typeof applyResource>;

export const stateVersionAttributes = z.looseObject({
  serial: z.number().int(),
  lineage: z.string(),
  size: z.number().int(),
  sha256: z.string(),
  /** MD5 (hex) of the state file, as TFE's clients compute it; null when the file is missing. */
  md5: z.string().nullable().optional(),
  /** Always `finalized`: a state version is stored whole when it is created. */
  status: z.literal('finalized').optional(),
  'resources-processed': z.boolean().optional(),
  'created-at': timestamp,
  /** A pre-signed URL of the raw state (no token needed), valid for OUTPOST_SIGNED_URL_TTL. */
  'hosted-state-download-url': z.string(),
  /** Always null: the JSON form of the state is not kept. */
  'hosted-json-state-download-url': z.string().nullable().optional(),
});
export const stateVersionResource = resource('state-versions', stateVersionAttributes);
export type StateVersion = z.infer<typeof stateVersionResource>;

export const stateOutputAttributes = z.looseObject({
  name: z.string(),
  /** null when the output is sensitive, except when the output is read alone (GET /state-version-outputs/:id). */
  value: z.unknown(),
  sensitive: z.boolean(),
  /** TFE's coarse type: string, number, boolean, array or object. */
  type: z.unknown(),
  /** The engine's type, as the state file records it ("string", ["list","string"], …); null when it did not. */
  'detailed-type': z.unknown().optional(),
});
export const stateOutputResource = resource('state-version-outputs', stateOutputAttributes);
export type StateOutput = z.infer<typeof stateOutputResource>;

export const vcsProviderAttributes = z.looseObject({
  name: z.string(),
  kind: z.enum(vcsProviderKinds),
  'http-url': z.string().nullable(),
  'api-url': z.string().nullable(),
  /** Whether a token / SSH key is set; the secrets themselves are never returned. */
  'has-token': z.boolean(),
  'has-ssh-key': z.boolean(),
  'poll-interval': z.number().int(),
  /** Where the forge sends webhooks: this server, or (reached through a pool) a VCS agent's listener. */
  'webhook-url': z.string().nullable(),
  /** Only in the answer that created it or rotated it. */
  'webhook-secret': z.string().optional(),
  'created-at': timestamp,
});
export const vcsProviderResource = resource('vcs-providers', vcsProviderAttributes);
export type VcsProvider = z.infer<typeof vcsProviderResource>;

/** What a check of a repository found (POST vcs-providers/:id/actions/check). */
export interface VcsRepositoryCheck {
  type: 'vcs-repository-checks';
  attributes: { repository: string; 'default-branch': string | null; private: boolean | null; branches: number };
}

export const vcsDeliveryAttributes = z.looseObject({
  'delivery-id': z.string(),
  event: z.string(),
  outcome: z.string(),
  'received-at': timestamp,
});
export const vcsDeliveryResource = resource('vcs-deliveries', vcsDeliveryAttributes);
export type VcsDelivery = z.infer<typeof vcsDeliveryResource>;

export const vcsTriggerAttributes = z.looseObject({
  kind: z.enum(['push', 'tag', 'pull_request', 'poll', 'manual']),
  'commit-sha': z.string(),
  ref: z.string(),
  /** waiting (for the commit's configuration), queued (a run was queued), skipped (no trigger path changed), failed. */
  status: z.enum(['waiting', 'queued', 'skipped', 'failed']),
  reason: z.string().nullable(),
  /** The files the commit changed as far as known (up to 100), null when not known. */
  'changed-files': z.array(z.string()).nullable().optional(),
  'created-at': timestamp,
});
export const vcsTriggerResource = resource('vcs-triggers', vcsTriggerAttributes);
export type VcsTrigger = z.infer<typeof vcsTriggerResource>;

/** A JSON:API document whose `data` is one resource of `schema`. */
export function documentOf<Schema extends z.ZodType>(schema: Schema) {
  return z.object({ data: schema });
}

/** A JSON:API document whose `data` is a list of resources of `schema`. */
export function listDocumentOf<Schema extends z.ZodType>(schema: Schema) {
  return z.object({ data: z.array(schema) });
}
