// Which TFE client sent a request, for the `source` TFE shows on
// configuration versions and runs: the `tofu` CLI's cloud block sends
// `X-Terraform-Integration: cloud`, its `backend "remote"` only its
// User-Agent (`OpenTofu/1.x …`, `Terraform/1.x …`).
import type { FastifyRequest } from 'fastify';

export type TfeClient = 'cloud-block' | 'remote-backend' | 'api';

export function tfeClientOf(request: FastifyRequest): TfeClient {
  const integration = request.headers['x-terraform-integration'];
  if (typeof integration === 'string' && integration.toLowerCase() === 'cloud') return 'cloud-block';
  const agent = request.headers['user-agent'] ?? '';
  return /^(OpenTofu|Terraform)\//.test(agent) ? 'remote-backend' : 'api';
}

/** A configuration version's source, as TFE names them. */
export function configurationSourceOf(client: TfeClient): string {
  return client === 'cloud-block' ? 'terraform+cloud' : client === 'remote-backend' ? 'terraform' : 'tfe-api';
}

/** A run's source, as TFE names them. */
export function runSourceOf(client: TfeClient): string {
  return client === 'api' ? 'tfe-api' : 'tfe-cli';
}
