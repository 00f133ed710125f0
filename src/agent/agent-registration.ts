// The agent's registration with the control plane (its agent id, session
// token and timings), kept in the data dir when its driver's sandboxes
// outlive the agent (docker). The control plane fences every job update by
// the lease *and* the agent that holds it, so only that same agent can take
// back the jobs whose containers ran on while it restarted: an agent
// process that starts again with such containers continues its previous
// registration instead of registering anew (agent.ts). The file holds the
// session token, so it is the agent's alone (mode 0600), in the data dir
// that job containers never see; it is removed when the agent stops
// cleanly, and it is only ever used by the same agent (name) of the same
// pool (pool token) at the same control plane (URL).
import { createHash } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { registerResponse, type RegisterResponse } from '../protocol/agent-api.ts';

/** Who registered. */
export interface AgentIdentity {
  readonly url: string;
  readonly poolToken: string;
  readonly name: string;
}

interface SavedRegistration {
  /** A hash of the identity: the pool token itself is never written. */
  readonly identity: string;
  readonly registration: RegisterResponse;
}

export class RegistrationStore {
  readonly #file: string;

  constructor(dataDir: string) {
    this.#file = path.join(dataDir, 'agent-registration.json');
  }

  async save(identity: AgentIdentity, registration: RegisterResponse): Promise<void> {
    const saved: SavedRegistration = { identity: fingerprint(identity), registration };
    await writeFile(`${this.#file}.tmp`, JSON.stringify(saved), { mode: 0o600 });
    await rename(`${this.#file}.tmp`, this.#file);
  }

  /** The registration saved by a previous process of this same agent, if any. */
  async load(identity: AgentIdentity): Promise<RegisterResponse | undefined> {
    try {
      const saved = JSON.parse(await readFile(this.#file, 'utf8')) as SavedRegistration;
      if (saved.identity !== fingerprint(identity)) return undefined;
      return registerResponse.parse(saved.registration);
    } catch {
      return undefined;
    }
  }

  async remove(): Promise<void> {
    await rm(this.#file, { force: true });
  }
}

function fingerprint(identity: AgentIdentity): string {
  return createHash('sha256').update(`${identity.url}\0${identity.poolToken}\0${identity.name}`).digest('hex');
}
