import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
  /** The status code this request was answered with. */
  status: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
}

/**
 * A real HTTP endpoint on loopback that records every callback. `respond` decides each answer
 * (default 204), so tests can make it fail, throttle or disable itself.
 */
export async function startWebhookReceiver(respond: (req: { headers: IncomingHttpHeaders; body: string; count: number }) => Reply = () => ({ status: 204 })) {
  const received: ReceivedWebhook[] = [];
  const waiters = new Set<() => void>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const reply = respond({ headers: req.headers, body, count: received.length });
      received.push({ headers: req.headers, body, receivedAt: Date.now(), status: reply.status });
      res.writeHead(reply.status, reply.headers ?? {});
      res.end();
      for (const w of waiters) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    /** Resolves once `predicate(received)` holds. */
    until(predicate: (all: ReceivedWebhook[]) => boolean, timeoutMs = 60_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(received)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`webhook receiver: condition not met after ${timeoutMs} ms (${received.length} received)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;
