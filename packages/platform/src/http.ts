import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HealthState {
  /** False while starting or draining: /readyz answers 503 so traffic moves elsewhere. */
  ready: boolean;
}

export type ExtraRoute = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

export interface OpsServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * The HTTP side every service has: `/metrics` (Prometheus text), `/healthz` (liveness: the process
 * serves HTTP) and `/readyz` (readiness). `extra` routes return true when they answered.
 */
export async function startOpsServer(opts: { host: string; port: number; registry: Registry; health: HealthState; extra?: ExtraRoute }): Promise<OpsServer> {
  const server = createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      const body = await opts.registry.metrics();
      res.writeHead(200, { "content-type": opts.registry.contentType });
      res.end(body);
    } else if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
    } else if (path === "/readyz") {
      res.writeHead(opts.health.ready ? 200 : 503, { "content-type": "text/plain" });
      res.end(opts.health.ready ? "ready\n" : "not ready\n");
    } else if (!(opts.extra && (await opts.extra(req, res)))) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
