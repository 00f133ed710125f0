// The job-token endpoints of the agent protocol (agentPaths in agent-api.ts)
// as the operation uses them: spec, configuration, plan files, result.
// The state endpoints are not here: the engine's http backend calls them.
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { agentPaths, jobSpec, type JobResult, type JobSpec } from '../protocol/agent-api.ts';
import { OutpostError } from '../protocol/errors.ts';
import { formatByteSize } from './byte-size.ts';
import type { ControlPlaneTransport } from './control-plane-transport.ts';

export class JobApi {
  readonly #transport: ControlPlaneTransport;

  constructor(transport: ControlPlaneTransport) {
    this.#transport = transport;
  }

  async fetchSpec(signal?: AbortSignal): Promise<JobSpec> {
    const body = await this.#transport.send({ method: 'GET', path: agentPaths.jobSpec, signal }, (response) => response.json());
    const parsed = jobSpec.safeParse(body);
    if (!parsed.success) {
      throw new OutpostError('invalid_request', `the control plane sent a job spec this operation cannot read: ${parsed.error.message}`);
    }
    return parsed.data;
  }

  /** Downloads the configuration version (.tar.gz) to `file`, refusing more than `maxBytes`. */
  async downloadConfiguration(file: string, maxBytes: number, signal?: AbortSignal): Promise<number> {
    return this.#download(agentPaths.jobConfiguration, file, maxBytes, 'the configuration archive', signal);
  }

  /** Downloads the plan file saved by the plan job (for an apply job). */
  async downloadPlan(file: string, signal?: AbortSignal): Promise<number> {
    return this.#download(agentPaths.jobPlan, file, Number.POSITIVE_INFINITY, 'the saved plan', signal);
  }

  async uploadPlan(file: string): Promise<void> {
    await this.#transport.send(
      { method: 'PUT', path: agentPaths.jobPlan, contentType: 'application/octet-stream', body: () => createReadStream(file) },
      (response) => response.discard(),
    );
  }

  async uploadPlanJson(json: Buffer): Promise<void> {
    await this.#transport.send(
      { method: 'PUT', path: agentPaths.jobPlanJson, contentType: 'application/json', body: () => json },
      (response) => response.discard(),
    );
  }

  async reportResult(result: JobResult): Promise<void> {
    const body = JSON.stringify(result);
    await this.#transport.send(
      { method: 'POST', path: agentPaths.jobResult, contentType: 'application/json', body: () => body },
      (response) => response.discard(),
    );
  }

  async #download(path: string, file: string, maxBytes: number, what: string, signal?: AbortSignal): Promise<number> {
    return this.#transport.send({ method: 'GET', path, signal }, async (response) => {
      let received = 0;
      const limit = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          received += chunk.length;
          if (received > maxBytes) {
            done(new OutpostError('archive_too_large', `${what} is larger than ${formatByteSize(maxBytes)}`));
            return;
          }
          done(null, chunk);
        },
      });
      // Each attempt rewrites the file from the start ('w' truncates).
      await pipeline(response.body, limit, createWriteStream(file, { flags: 'w', mode: 0o600 }));
      return received;
    });
  }
}
