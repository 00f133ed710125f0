// Configuration versions as the API shows them (TFE: configuration-versions),
// for their routes and for runs that include them. The upload-url is
// pre-signed: TFE's clients PUT the archive there without a token.
import type { ConfigurationVersion } from '../../protocol/api-resources.ts';
import type { IngressAttributes } from '../../protocol/vcs-api.ts';
import type { ServerContext } from '../context.ts';
import { iso, relation } from '../http/json-api.ts';
import type { ConfigurationVersionRow } from './repo.ts';

/** What a pre-signed upload URL names: one configuration version's archive, for PUT. */
export const uploadObject = (id: string) => `configuration-versions/${id}/upload`;

export function present(ctx: ServerContext, row: ConfigurationVersionRow): ConfigurationVersion {
  return {
    id: row.id,
    type: 'configuration-versions',
    attributes: {
      status: row.status,
      source: row.source,
      size: row.size,
      'auto-queue-runs': row.auto_queue_runs === 1,
      speculative: row.speculative === 1,
      provisional: false,
      'created-at': iso(row.created_at),
      'uploaded-at': iso(row.uploaded_at),
      'upload-url': row.status === 'pending' ? `${ctx.publicUrl}${ctx.signer.sign('PUT', uploadObject(row.id), ctx.now() + ctx.config.signedUrlTtl)}` : null,
      'ingress-attributes': row.ingress === null ? null : (JSON.parse(row.ingress) as IngressAttributes),
    },
    relationships: { workspace: relation('workspaces', row.workspace_id) },
  };
}

