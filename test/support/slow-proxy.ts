import { createServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export interface SlowProxy {
  /** `http://127.0.0.1:<port>`: point a client here instead of at the target. */
  endpoint: string;
  /** Milliseconds each chunk waits before it is forwarded (either direction); change at will. */
  delayMs: number;
  /** Bytes per second per direction per connection (0 = unlimited). */
  bytesPerSecond: number;
  /** Chunks forwarded so far (proves traffic went through the proxy). */
  chunks: number;
  close(): Promise<void>;
}

/**
 * A TCP proxy on loopback that forwards to `targetPort` with added latency and a bandwidth cap
 * per direction, preserving byte order: a slow object store as the services see it.
 */
export async function startSlowProxy(targetPort: number, opts: { delayMs: number; bytesPerSecond?: number }): Promise<SlowProxy> {
  const sockets = new Set<Socket>();
  const proxy: SlowProxy = {
    endpoint: "",
    delayMs: opts.delayMs,
    bytesPerSecond: opts.bytesPerSecond ?? 0,
    chunks: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  /** Forwards `from` → `to`, each chunk no earlier than delayMs after it arrived, in order. */
  function pipeSlowly(from: Socket, to: Socket) {
    let chain = Promise.resolve();
    let nextFree = 0;
    from.on("data", (chunk: Buffer) => {
      const arrived = Date.now();
      chain = chain.then(async () => {
        const transfer = proxy.bytesPerSecond > 0 ? (chunk.length / proxy.bytesPerSecond) * 1000 : 0;
        const at = Math.max(arrived + proxy.delayMs, nextFree) + transfer;
        nextFree = at;
        const wait = at - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        proxy.chunks++;
        if (!to.destroyed) to.write(chunk);
      });
    });
    from.on("end", () => void chain.then(() => to.end()));
    from.on("error", () => to.destroy());
    from.on("close", () => void chain.then(() => to.destroy()));
  }

  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    }
    pipeSlowly(client, upstream);
    pipeSlowly(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
