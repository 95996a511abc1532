import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jsonLine, startProcess, type ManagedProcess } from "./process.js";

export interface S3Server {
  endpoint: string;
  bucket: string;
  dir: string;
  process: ManagedProcess;
  stop(): Promise<void>;
  /** Starts it again on the same port and directory (outage scenarios). */
  start(): Promise<void>;
}

/** s3rver in its own process on a free loopback port, with one bucket, data in `dir`. */
/** `logPuts`: s3rver prints `{"msg":"s3 put","key":…}` for every object written (fault tests count them). */
export async function startS3(opts: { bucket?: string; dir?: string; logPuts?: boolean } = {}): Promise<S3Server> {
  const bucket = opts.bucket ?? "rebeca";
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "rebeca-s3-")));
  const main = fileURLToPath(new URL("../dist/s3rver-main.js", import.meta.url));
  const launch = async (port: number) => {
    // s3rver encrypts listing continuation tokens with DES, which OpenSSL 3 only offers through
    // its legacy provider: without it every listing past 1,000 keys fails with InternalError.
    const p = startProcess("s3rver", process.execPath, ["--openssl-legacy-provider", main, String(port), dir, bucket, ...(opts.logPuts ? ["log-puts"] : [])]);
    const bound = await p.waitFor((l) => {
      const line = jsonLine(l);
      return line?.msg === "s3rver ready" ? Number(line.port) : undefined;
    }, 20_000);
    return { p, bound };
  };
  // Port 0 the first time: the kernel picks the port as s3rver binds it, so no other test process
  // can take it between a free-port probe and the bind (seen once as EADDRINUSE in CI). A restart
  // (outage scenarios) binds the same port again.
  const first = await launch(0);
  const server: S3Server = {
    endpoint: `http://127.0.0.1:${first.bound}`,
    bucket,
    dir,
    process: first.p,
    stop: async () => void (await server.process.stop()),
    start: async () => void (server.process = (await launch(first.bound)).p),
  };
  return server;
}
