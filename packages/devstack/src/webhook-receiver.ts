import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedWebhook {
  /** Request path (one receiver can play several endpoints). */
  url: string;
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
 * (default 204), so tests can make it fail, throttle or disable itself. `port` 0 picks a free one;
 * a fixed port brings an endpoint "back up" where callbacks were refused before.
 */
export async function startWebhookReceiver(
  respond: (req: { url: string; headers: IncomingHttpHeaders; body: string; count: number }) => Reply = () => ({ status: 204 }),
  port = 0,
) {
  const received: ReceivedWebhook[] = [];
  const waiters = new Set<() => void>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const reply = respond({ url: req.url ?? "/", headers: req.headers, body, count: received.length });
      received.push({ url: req.url ?? "/", headers: req.headers, body, receivedAt: Date.now(), status: reply.status });
      res.writeHead(reply.status, reply.headers ?? {});
      res.end();
      for (const w of waiters) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}/hooks`,
    port: bound,
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
