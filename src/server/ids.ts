// Resource ids in the TFE style (`ws-` followed by 16 random characters) and
// secrets with a prefix per kind, so a leaked token is recognisable by secret
// scanners and a token of the wrong kind is refused before any lookup.
import { createHash, randomBytes } from 'node:crypto';
import { poolTokenWithUrl } from '../protocol/pool-token.ts';

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

function randomString(length: number): string {
  // Rejection sampling keeps every character equally likely.
  const out: string[] = [];
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 256 - (256 % alphabet.length)) out.push(alphabet[byte % alphabet.length] as string);
      if (out.length === length) break;
    }
  }
  return out.join('');
}

export type IdPrefix = 'org' | 'at' | 'apool' | 'agent' | 'ws' | 'var' | 'cv' | 'run' | 'job' | 'sv' | 'lease' | 'ot' | 'whd' | 'vcs' | 'vcst' | 'vcsk' | 'vcsd';

export function newId(prefix: IdPrefix): string {
  return `${prefix}-${randomString(16)}`;
}

/**
 * The lease id an adoption gives: derived from the lease it replaces and the
 * adopter, so the adopter asking again (its answer was lost) is recognised
 * and answered the same. Fencing needs a new id, not a secret one: only
 * the holder's session may use it.
 */
export function adoptedLeaseId(previousLeaseId: string, agentId: string): string {
  return `lease-${createHash('sha256').update(`${previousLeaseId}\n${agentId}`).digest('base64url').slice(0, 16)}`;
}

export const tokenKinds = {
  api: 'opa_',
  pool: 'opp_',
  session: 'ops_',
  job: 'opj_',
} as const;
export type TokenKind = keyof typeof tokenKinds;

export function newToken(kind: TokenKind): string {
  return `${tokenKinds[kind]}${randomString(40)}`;
}

/**
 * A pool webhook's signing secret. Not a token (nothing authenticates with
 * it), but prefixed the same way so secret scanners recognise a leaked one.
 */
export function newWebhookSecret(): string {
  return `opw_${randomString(40)}`;
}

/** What a version control provider signs its webhooks with (or, GitLab, sends); prefixed for secret scanners. */
export function newVcsWebhookSecret(): string {
  return `opv_${randomString(40)}`;
}

/** A pool token that also tells the agent where the control plane is. */
export function newPoolToken(publicUrl: string): string {
  return poolTokenWithUrl(publicUrl, randomString(40));
}

/**
 * Tokens are 40 random characters (~230 bits), so a plain SHA-256 is a safe
 * one-way store: no password-style stretching is needed, and lookups stay a
 * single indexed equality match.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function tokenKindOf(token: string): TokenKind | undefined {
  for (const [kind, prefix] of Object.entries(tokenKinds)) {
    if (token.startsWith(prefix)) return kind as TokenKind;
  }
  return undefined;
}

/** TFE gives plans and applies their own ids; ours derive from the run id. */
export function planIdOf(runId: string): string {
  return runId.replace(/^run-/, 'plan-');
}
export function applyIdOf(runId: string): string {
  return runId.replace(/^run-/, 'apply-');
}
export function runIdOfPhase(phaseId: string): string | undefined {
  const match = /^(?:plan|apply)-([A-Za-z0-9]+)$/.exec(phaseId);
  return match ? `run-${match[1]}` : undefined;
}
