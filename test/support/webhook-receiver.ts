// A real HTTP receiver for pool webhooks on loopback: it records every
// request as it arrived (headers, raw body) and answers as the test says
// (a status, or never: a receiver that hangs).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook, type WebhookPayload } from '../../src/protocol/webhook-signature.ts';
import type { TestHooks } from './cluster.ts';
import { waitUntil } from './waits.ts';

export interface ReceivedDelivery {
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: string;
  readonly payload: WebhookPayload;
  readonly receivedAt: number;
}

export type Answer = { status: number; body?: string } | 'hang';

export interface WebhookReceiver {
  readonly url: string;
  readonly received: ReceivedDelivery[];
  /** How the next requests are answered; the default is 202. */
  answer: (delivery: ReceivedDelivery) => Answer | Promise<Answer>;
  /** Whether a delivery verifies with these secrets now. */
  verifies(delivery: ReceivedDelivery, secrets: readonly string[]): boolean;
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedDelivery[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(t: TestHooks): Promise<WebhookReceiver> {
  const received: ReceivedDelivery[] = [];
  const hanging = new Set<http.ServerResponse>();
  const receiver: WebhookReceiver = {
    url: '',
    received,
    answer: () => ({ status: 202, body: '{"ok":true}' }),
    verifies: (delivery, secrets) => verifyWebhook({ headers: delivery.headers, body: delivery.body, secrets, nowSeconds: Math.floor(Date.now() / 1000) }).ok,
    waitFor: (count, timeoutMs = 30_000) =>
      waitUntil(`${count} webhook deliveries`, async () => (received.length >= count ? received.slice() : undefined), () => JSON.stringify(received.map((r) => r.payload)), timeoutMs),
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(',') : value]));
      const delivery: ReceivedDelivery = { headers, body, payload: JSON.parse(body) as WebhookPayload, receivedAt: Date.now() };
      received.push(delivery);
      void Promise.resolve(receiver.answer(delivery)).then((answer) => {
        if (answer === 'hang') {
          hanging.add(response);
          return;
        }
        response.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body ?? '');
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (receiver as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/outpost?key=query-secret`;
  t.after(() => receiver.close());
  return receiver;
}
