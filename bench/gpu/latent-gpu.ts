/*
 * Latent decoder images/s on each usable execution provider and across batch sizes, with ratios
 * (GPU over CPU at each batch; batch N over batch 1 on each provider). Run by bench/gpu/run.sh.
 *
 * Env: BENCH_GPU_MODEL (a latent decoder manifest; default the bench model), BENCH_GPU_STEPS (50; 0 = the manifest's),
 * BENCH_GPU_BATCHES ("1,2,4,8,16"), BENCH_GPU_SECONDS (time budget per measurement, 6),
 * BENCH_GPU_PROVIDERS ("cuda,webgpu,cpu").
 */
import { join } from "node:path";
import { cpus } from "node:os";
import { loadLatentDecoder, parseProviders, supportedExecutionProviders, type ExecutionProvider, type LatentImageDecoder } from "@rebeca/inference";
import { REPO_ROOT } from "@rebeca/devstack";
import { fmt, report } from "../stats.js";

const MODEL = process.env.BENCH_GPU_MODEL ?? join(REPO_ROOT, "bench", "models", "latent-bench", "manifest.json");
const STEPS = Number(process.env.BENCH_GPU_STEPS ?? 50);
const BATCHES = (process.env.BENCH_GPU_BATCHES ?? "1,2,4,8,16").split(",").map(Number);
const SECONDS = Number(process.env.BENCH_GPU_SECONDS ?? 6);
const PROVIDERS = parseProviders(process.env.BENCH_GPU_PROVIDERS ?? "cuda,webgpu,cpu");

console.log(`onnxruntime-node reports backends: ${supportedExecutionProviders().join(", ")}`);

/** Opens the model on exactly one provider; undefined (with the reason printed) when it cannot. */
async function open(provider: ExecutionProvider): Promise<LatentImageDecoder | undefined> {
  try {
    const l = await loadLatentDecoder(
      MODEL,
      provider === "cpu" ? { providers: ["cpu"] } : { providers: [provider], requireGpu: true },
      STEPS > 0 ? { steps: STEPS } : {},
    );
    console.log(`${provider}: usable (session providers ${l.providers.join(" + ")})`);
    return l.decoder;
  } catch (err) {
    console.log(`${provider}: NOT usable — ${(err as Error).message.split("\n")[0]}`);
    return undefined;
  }
}

/** Images/s decoding batches of `batch` for about SECONDS (after two warm-up batches). */
async function measure(decoder: LatentImageDecoder, batch: number): Promise<number> {
  const E = decoder.config.embeddingDim;
  const once = async (j: number) => {
    const e = Float32Array.from({ length: batch * E }, (_, k) => Math.sin(j * 7919 + k));
    await decoder.decode(
      e,
      batch,
      Array.from({ length: batch }, (_, i) => (j * batch + i) >>> 0),
    );
  };
  await once(0);
  await once(1);
  let images = 0;
  const t0 = performance.now();
  for (let j = 2; performance.now() - t0 < SECONDS * 1000 || images === 0; j++) {
    await once(j);
    images += batch;
  }
  return images / ((performance.now() - t0) / 1000);
}

const rows: Record<string, string | number>[] = [];
const results = new Map<string, Map<number, number>>();
for (const provider of PROVIDERS) {
  const decoder = await open(provider);
  if (!decoder) continue;
  const byBatch = new Map<number, number>();
  for (const b of BATCHES) {
    const ips = await measure(decoder, b);
    byBatch.set(b, ips);
    console.log(`  ${provider} batch ${b}: ${fmt(ips, 1)} images/s`);
  }
  results.set(provider, byBatch);
}
const cpu = results.get("cpu");
for (const [provider, byBatch] of results) {
  const one = byBatch.get(BATCHES[0]!)!;
  for (const [b, ips] of byBatch) {
    rows.push({
      provider,
      batch: b,
      "images/s": fmt(ips, 1),
      [`vs batch ${BATCHES[0]}`]: `${fmt(ips / one, 2)}×`,
      "vs cpu, same batch": cpu?.get(b) ? `${fmt(ips / cpu.get(b)!, 2)}×` : "—",
    });
  }
}
const gpus = [...results.keys()].filter((p) => p !== "cpu");
report("latent decoder on GPU vs CPU", rows.length ? rows : [{ provider: "none usable" }], {
  model: MODEL,
  steps: STEPS > 0 ? STEPS : "manifest",
  cpuCores: cpus().length,
  gpuProvidersUsable: gpus,
  imagesPerSecond: Object.fromEntries([...results].map(([p, m]) => [p, Object.fromEntries(m)])),
});
if (gpus.length === 0) console.log("no GPU execution provider was usable: the figures above are CPU only (see bench/gpu/README.md)");
