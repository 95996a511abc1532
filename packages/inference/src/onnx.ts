/**
 * onnxruntime-node adapters: a session factory with an explicit execution-provider policy, and the
 * prior, decoder and encoder role implementations. The only module here that imports onnxruntime.
 */
import * as ort from "onnxruntime-node";
import type { PriorInput, PriorModel } from "./sampler.js";
import type { ImageDecoder, ImageEncoder } from "./image-roles.js";
import type { ImageProjectionModel, LatentUNetModel, LatentVaeModel } from "./latent-decoder.js";

/** Execution providers this factory knows how to ask for. */
export type ExecutionProvider = "cuda" | "tensorrt" | "webgpu" | "cpu";

const GPU_PROVIDERS: ReadonlySet<ExecutionProvider> = new Set(["cuda", "tensorrt", "webgpu"]);
const KNOWN_PROVIDERS: ReadonlySet<string> = new Set(["cuda", "tensorrt", "webgpu", "cpu"]);

export interface SessionOptions {
  /** Providers to try, first that works wins. @default ['cpu'] */
  readonly providers?: readonly ExecutionProvider[];
  /** Refuse to run on the CPU provider (a GPU pool must not silently run 50× slower). @default false */
  readonly requireGpu?: boolean;
  /** Threads inside one operator; 0 lets onnxruntime decide. @default 0 */
  readonly intraOpThreads?: number;
  /** Threads across independent operators; 0 lets onnxruntime decide. @default 0 */
  readonly interOpThreads?: number;
}

/** A created session and the provider that was selected, for the start-up log line. */
export interface ResolvedSession {
  readonly session: ort.InferenceSession;
  /** Providers the session was created with, in priority order (e.g. `['cuda', 'cpu']`). */
  readonly providers: readonly ExecutionProvider[];
  /** Providers that were tried and refused, with why. */
  readonly rejected: readonly { provider: ExecutionProvider; reason: string }[];
}

/** Thrown when `requireGpu` is set and no GPU provider could be used. */
export class GpuUnavailableError extends Error {
  override readonly name = "GpuUnavailableError";
  constructor(readonly rejected: readonly { provider: ExecutionProvider; reason: string }[]) {
    super(
      `requireGpu is set but no GPU execution provider is usable; refusing CPU fallback (${
        rejected.length === 0 ? "no GPU provider configured" : rejected.map((r) => `${r.provider}: ${r.reason}`).join("; ")
      })`,
    );
  }
}

/** Parses a provider list such as `"cuda,webgpu,cpu"` (from config). */
export function parseProviders(value: string): ExecutionProvider[] {
  const list = value
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0);
  for (const p of list) {
    if (!KNOWN_PROVIDERS.has(p)) throw new RangeError(`unknown execution provider ${JSON.stringify(p)}`);
  }
  if (list.length === 0) throw new RangeError("execution provider list is empty");
  return list as ExecutionProvider[];
}

/** A worker's ORT_* settings (platform's `onnxConfigSchema`). */
export interface OnnxSettings {
  readonly ORT_PROVIDERS: readonly string[];
  readonly REQUIRE_GPU: boolean;
  readonly ORT_INTRA_OP_THREADS: number;
  readonly ORT_INTER_OP_THREADS: number;
}

/** Session options from a worker's ORT_* settings; an unknown provider name is refused here, at start. */
export function sessionOptionsOf(settings: OnnxSettings): SessionOptions {
  return {
    providers: parseProviders(settings.ORT_PROVIDERS.join(",")),
    requireGpu: settings.REQUIRE_GPU,
    intraOpThreads: settings.ORT_INTRA_OP_THREADS,
    interOpThreads: settings.ORT_INTER_OP_THREADS,
  };
}

/**
 * Execution providers this onnxruntime-node build supports, as it reports them. Support is not
 * availability: a CUDA provider in the list can still fail to create a session (no driver, no
 * CUDA libraries); {@link createOnnxSession} reports that per provider.
 */
export function supportedExecutionProviders(): string[] {
  return ort.listSupportedBackends().map((b) => b.name);
}

function availableBackends(): Map<string, boolean> {
  return new Map(ort.listSupportedBackends().map((b) => [b.name, b.bundled]));
}

/**
 * Creates an inference session, trying each configured provider in order. A GPU provider is
 * tried on its own (with CPU for the operators it lacks, as onnxruntime always does); when it
 * cannot be created the next is tried. With `requireGpu`, CPU is never selected.
 */
export async function createOnnxSession(model: string | Uint8Array, options: SessionOptions = {}): Promise<ResolvedSession> {
  const order = options.providers ?? ["cpu"];
  const rejected: { provider: ExecutionProvider; reason: string }[] = [];
  const base: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: options.intraOpThreads ?? 0,
    interOpNumThreads: options.interOpThreads ?? 0,
    graphOptimizationLevel: "all",
  };
  const backends = availableBackends();
  const create = (eps: ExecutionProvider[]): Promise<ort.InferenceSession> =>
    typeof model === "string"
      ? ort.InferenceSession.create(model, { ...base, executionProviders: eps })
      : ort.InferenceSession.create(model, { ...base, executionProviders: eps });

  for (const provider of order) {
    if (provider === "cpu") {
      if (options.requireGpu) continue;
      return { session: await create(["cpu"]), providers: ["cpu"], rejected };
    }
    if (!GPU_PROVIDERS.has(provider)) continue;
    if (!backends.has(provider)) {
      rejected.push({ provider, reason: "not supported by this onnxruntime-node build" });
      continue;
    }
    try {
      const session = await create([provider, "cpu"]);
      return { session, providers: [provider, "cpu"], rejected };
    } catch (e) {
      rejected.push({ provider, reason: firstLine((e as Error).message) });
    }
  }
  if (options.requireGpu) throw new GpuUnavailableError(rejected);
  throw new Error(`no execution provider could be used (tried ${order.join(", ")}): ${rejected.map((r) => `${r.provider}: ${r.reason}`).join("; ")}`);
}

/** onnxruntime errors lead with a source location; the useful part is the last "Failed to …". */
function firstLine(s: string): string {
  const line = s.split("\n", 1)[0]!;
  const at = line.lastIndexOf("Failed to");
  return (at >= 0 ? line.slice(at) : line).slice(0, 300);
}

/** Output-tensor float32 data, copied when onnxruntime hands back a different type. */
function float32Output(results: ort.InferenceSession.OnnxValueMapType, name: string): Float32Array {
  const t = results[name];
  if (!t) throw new Error(`model has no output ${JSON.stringify(name)}`);
  const data = (t as ort.Tensor).data;
  if (data instanceof Float32Array) return data;
  throw new Error(`output ${name} is ${(t as ort.Tensor).type}, expected float32`);
}

/** Minimal session surface the adapters use, so tests can pass a fake. */
export type RunnableSession = Pick<ort.InferenceSession, "run">;

export interface OnnxPriorOptions {
  readonly embeddingDim: number;
  readonly userDim: number;
}

/** {@link PriorModel} over `prior.onnx` (inputs x_t, t, user, like; output x0). */
export function createOnnxPrior(session: RunnableSession, options: OnnxPriorOptions): PriorModel {
  const D = options.embeddingDim;
  const U = options.userDim;
  return {
    async predictX0(input: PriorInput): Promise<Float32Array> {
      const B = input.rows;
      const results = await session.run({
        x_t: new ort.Tensor("float32", input.xT, [B, D]),
        t: new ort.Tensor("int64", input.t, [B]),
        user: new ort.Tensor("float32", input.user, [B, U]),
        like: new ort.Tensor("int64", input.like, [B]),
      });
      return float32Output(results, "x0");
    },
  };
}

export interface SingleShotShape {
  readonly embeddingDim: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  /** Graph input and output names. */
  readonly io: { readonly input: string; readonly output: string };
}

/** {@link ImageDecoder} over a single-shot `decoder(e[B,D]) → image[B,C,H,W]` graph. */
export function createSingleShotDecoder(session: RunnableSession, shape: SingleShotShape): ImageDecoder {
  const { embeddingDim: D, channels, height, width, io } = shape;
  return {
    async decode(embeddings, count, _seeds, signal) {
      signal?.throwIfAborted();
      if (embeddings.length !== count * D) {
        throw new RangeError(`embeddings has ${embeddings.length} values, expected ${count}×${D}`);
      }
      const results = await session.run({ [io.input]: new ort.Tensor("float32", embeddings, [count, D]) });
      const pixels = float32Output(results, io.output);
      if (pixels.length !== count * channels * height * width) {
        throw new Error(`decoder returned ${pixels.length} values, expected ${count}×${channels}×${height}×${width}`);
      }
      return { pixels, count, channels, height, width };
    },
  };
}

/** {@link ImageEncoder} over `encoder(image[B,C,H,W]) → embedding[B,D]`. */
export function createImageEncoder(session: RunnableSession, shape: SingleShotShape): ImageEncoder {
  const { embeddingDim: D, channels, height, width, io } = shape;
  const per = channels * height * width;
  return {
    async encode(pixels, count) {
      if (pixels.length !== count * per) {
        throw new RangeError(`pixels has ${pixels.length} values, expected ${count}×${channels}×${height}×${width}`);
      }
      const results = await session.run({
        [io.input]: new ort.Tensor("float32", pixels, [count, channels, height, width]),
      });
      const out = float32Output(results, io.output);
      if (out.length !== count * D) throw new Error(`encoder returned ${out.length} values, expected ${count}×${D}`);
      return out;
    },
  };
}

/** Graph input and output names of the latent decoder's three graphs (manifest `io`). */
export interface LatentIoNames {
  readonly unet: { readonly sample: string; readonly timestep: string; readonly condition: string; readonly output: string };
  readonly imageProj?: { readonly input: string; readonly output: string };
  readonly vaeDecoder: { readonly input: string; readonly output: string };
}

export interface LatentShapes {
  readonly embeddingDim: number;
  readonly latent: { readonly channels: number; readonly height: number; readonly width: number };
  /** Condition per row after the projection: [tokens, dim] (IP-Adapter), or absent (Kandinsky: [E]). */
  readonly condition?: { readonly tokens: number; readonly dim: number };
}

/** The latent decoder's model roles over `unet.onnx`, `image_proj.onnx`, `vae_decoder.onnx`. */
export function createOnnxLatentModels(
  sessions: { unet: RunnableSession; imageProj?: RunnableSession; vaeDecoder: RunnableSession },
  io: LatentIoNames,
  shapes: LatentShapes,
): { unet: LatentUNetModel; imageProjection?: ImageProjectionModel; vae: LatentVaeModel } {
  const { channels: C, height: h, width: w } = shapes.latent;
  const E = shapes.embeddingDim;
  const condDims = (rows: number): number[] => (shapes.condition ? [rows, shapes.condition.tokens, shapes.condition.dim] : [rows, E]);
  const unet: LatentUNetModel = {
    async predictNoise(sample, timestep, condition, rows) {
      const out = await sessions.unet.run({
        [io.unet.sample]: new ort.Tensor("float32", sample, [rows, C, h, w]),
        [io.unet.timestep]: new ort.Tensor("float32", timestep, [rows]),
        [io.unet.condition]: new ort.Tensor("float32", condition, condDims(rows)),
      });
      return float32Output(out, io.unet.output);
    },
  };
  const vae: LatentVaeModel = {
    async decode(latents, rows) {
      const out = await sessions.vaeDecoder.run({ [io.vaeDecoder.input]: new ort.Tensor("float32", latents, [rows, C, h, w]) });
      return float32Output(out, io.vaeDecoder.output);
    },
  };
  const proj = sessions.imageProj;
  const pio = io.imageProj;
  if (!proj || !pio) return { unet, vae };
  return {
    unet,
    vae,
    imageProjection: {
      async project(embeddings, rows) {
        const out = await proj.run({ [pio.input]: new ort.Tensor("float32", embeddings, [rows, E]) });
        return float32Output(out, pio.output);
      },
    },
  };
}
