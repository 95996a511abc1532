import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";
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
  const port = await freePort();
  const bucket = opts.bucket ?? "rebeca";
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "rebeca-s3-")));
  const main = fileURLToPath(new URL("../dist/s3rver-main.js", import.meta.url));
  const launch = async () => {
    // s3rver encrypts listing continuation tokens with DES, which OpenSSL 3 only offers through
    // its legacy provider: without it every listing past 1,000 keys fails with InternalError.
    const p = startProcess("s3rver", process.execPath, ["--openssl-legacy-provider", main, String(port), dir, bucket, ...(opts.logPuts ? ["log-puts"] : [])]);
    await p.waitFor((l) => (jsonLine(l)?.msg === "s3rver ready" ? true : undefined), 20_000);
    return p;
  };
  const server: S3Server = {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    dir,
    process: await launch(),
    stop: async () => void (await server.process.stop()),
    start: async () => void (server.process = await launch()),
  };
  return server;
}
