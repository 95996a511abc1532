import { join } from "node:path";
import { loadLatentDecoder } from "@rebeca/inference";
import { REPO_ROOT } from "@rebeca/devstack";
import { imageSeed } from "@rebeca/contracts";
import { createThreadedDecoders } from "../services/decoder-worker/src/threaded-decoders.js";
import { threadCpuSeconds } from "./proc.js";

const session = { providers: ["cpu"] as const, intraOpThreads: 1, interOpThreads: 1 };
const log = { info() {}, warn() {}, error() {} } as never;
const threaded = await createThreadedDecoders({ modelsDir: join(REPO_ROOT, "models"), versions: ["demo-v2"], session: session as never, latent: {} }, 1, log);
const tdec = threaded.decoders.get("demo-v2")!.decoder;
const { decoder } = await loadLatentDecoder(join(REPO_ROOT, "models/demo-v2/decoder/manifest.json"), session as never, {});
const E = 64, B = 8, N = 256;
async function loop(dec: { decode: typeof decoder.decode }) {
  for (let j = 0; j < N; j += B) {
    const e = Float32Array.from({ length: B * E }, (_, k) => Math.sin(j * E + k));
    await dec.decode(e, B, Array.from({ length: B }, (_, i) => imageSeed(j, i)));
  }
}
await loop(decoder); await loop(tdec);
for (let r = 0; r < 3; r++) {
  for (const [name, dec] of [["inproc", decoder], ["thread", tdec]] as const) {
    const t0 = threadCpuSeconds(process.pid); const w0 = performance.now();
    await loop(dec);
    const t1 = threadCpuSeconds(process.pid);
    const per = [...t1].map(([tid, s]) => [tid, (s - (t0.get(tid) ?? 0)) * 1000 / N] as const).filter(([, v]) => v > 0.05);
    console.log(name, `wall ${((performance.now() - w0) / N).toFixed(2)} ms/img`, per.map(([t, v]) => `${t === process.pid ? "main" : t}:${v.toFixed(2)}`).join(" "));
  }
}
await threaded.close();
