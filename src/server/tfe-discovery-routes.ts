// What TFE's clients ask before anything else: service discovery (the
// `tofu` CLI reads `/.well-known/terraform.json` of the host in a `cloud`
// block or `backend "remote"`), `/api/v2/ping` (go-tfe's NewClient reads the
// API version from its headers), and the headers and media type every
// `/api/v2` response carries in TFE.
import type { FastifyInstance } from 'fastify';
import { jsonApiMediaType } from '../protocol/api-inputs.ts';

/**
 * The TFE API version this server speaks. OpenTofu's cloud backend refuses a
 * server below 2.5, and gates run options (targets, replace, refresh-only)
 * on 2.3 and 2.4.
 */
export const tfeApiVersion = '2.6';

/** What go-tfe and the CLI show as the product's name (the TFP-AppName header). */
export const appName = 'Outpost';

const tokensPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Outpost: API tokens for tofu login</title></head>
<body>
<h1>An API token for <code>tofu login</code></h1>
<p>Outpost's API tokens start with <code>opa_</code>. Paste one into the terminal where <code>tofu login</code> waits for it:</p>
<ul>
<li>the admin token the server printed at its first start (or the one it was given as <code>OUTPOST_BOOTSTRAP_TOKEN</code>);</li>
<li>on the machine that ran <code>npm start</code>, the token it prints each time it starts.</li>
</ul>
<p><code>tofu login</code> stores it in <code>~/.terraform.d/credentials.tfrc.json</code>; a <code>credentials</code> block in the CLI configuration or a <code>TF_TOKEN_&lt;host&gt;</code> variable works as well.</p>
</body></html>
`;

export function tfeDiscoveryRoutes(app: FastifyInstance, version: string): void {
  app.get('/.well-known/terraform.json', async () => ({
    'tfe.v2': '/api/v2/',
    'tfe.v2.1': '/api/v2/',
    'tfe.v2.2': '/api/v2/',
  }));

  app.get('/api/v2/ping', async (_request, reply) => reply.status(204).send());

  // `tofu login` opens this page of a TFE host (no `login.v1` is advertised:
  // Outpost has no OAuth server) and then asks for the token in the terminal.
  app.get('/app/settings/tokens', async (_request, reply) => reply.header('content-type', 'text/html; charset=utf-8').send(tokensPage));

  app.addHook('onSend', async (request, reply, payload) => {
    if (!request.url.startsWith('/api/v2/')) return payload;
    void reply.header('tfp-api-version', tfeApiVersion).header('tfp-appname', appName).header('x-outpost-version', version);
    // JSON:API documents (and error documents) go out in JSON:API's media
    // type, as TFE's do. Raw JSON that happens to be a file (a state, a JSON
    // plan) is sent as a buffer or a stream and keeps its type.
    if (typeof payload === 'string' && String(reply.getHeader('content-type') ?? '').startsWith('application/json')) {
      void reply.header('content-type', jsonApiMediaType);
    }
    return payload;
  });
}
