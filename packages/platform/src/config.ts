import { z } from "zod";

/** Thrown when the environment does not satisfy a service's config schema; lists every problem. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

/**
 * Parses `env` with a service's schema, reporting all problems at once (never at import time:
 * call it from main).
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`));
}

/** Env helpers: env values are strings, so numbers and booleans are coerced with explicit rules. */
export const env = {
  int: (def: number) => z.coerce.number().int().default(def),
  num: (def: number) => z.coerce.number().default(def),
  bool: (def: boolean) =>
    z
      .enum(["true", "false", "1", "0"])
      .default(def ? "true" : "false")
      .transform((v) => v === "true" || v === "1"),
  str: (def: string) => z.string().default(def),
  list: (def: string) =>
    z
      .string()
      .default(def)
      .transform((v) =>
        v
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      ),
};

/** Config every service shares: Redis, queue prefix, the health/metrics port, log level. */
export const baseConfigSchema = z.object({
  /** Redis URL (redis:// or rediss://). */
  REDIS_URL: z.string().default("redis://127.0.0.1:6379"),
  /** Key prefix of every queue and record; the braces make it a Redis Cluster hash tag. */
  QUEUE_PREFIX: env.str("{rebeca}"),
  /** Port of the HTTP server with /metrics, /healthz and /readyz (0 = any free port). */
  HTTP_PORT: env.int(9090),
  /** Address the HTTP server binds. */
  HTTP_HOST: env.str("0.0.0.0"),
  /** pino log level. */
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Seconds finished jobs and request ids are kept (every service that finishes jobs applies it). */
  JOB_RETENTION_SECONDS: env.int(7 * 24 * 3600),
  /** Approximate number of events kept per tenant stream (XADD MAXLEN ~); set the same in every service. */
  EVENTS_MAX_LEN: env.int(100_000).pipe(z.number().int().min(1)),
  /** Milliseconds a draining service waits for in-flight work before it exits. */
  DRAIN_DEADLINE_MS: env.int(20000),
});

/** Execution-provider policy shared by the ONNX workers. */
export const onnxConfigSchema = z.object({
  /** Execution providers in order of preference, e.g. `cuda,webgpu,cpu`. */
  ORT_PROVIDERS: env.list("cpu"),
  /** Refuse to start on CPU when no GPU provider works (GPU pools). */
  REQUIRE_GPU: env.bool(false),
  /** onnxruntime intra-op threads (0 = onnxruntime decides). */
  ORT_INTRA_OP_THREADS: env.int(0),
  /** onnxruntime inter-op threads (0 = onnxruntime decides). */
  ORT_INTER_OP_THREADS: env.int(0),
});

/** What a stage worker process serves, and at which CPU priority (separate pools per class). */
export const workClassConfigSchema = z.object({
  /** Work classes served: `interactive` (single jobs), `batch` (batch shards), or both. */
  WORK_CLASSES: env.list("interactive,batch").pipe(z.array(z.enum(["interactive", "batch"])).min(1, "name at least one of interactive, batch")),
  /** Nice value (0–19) the process lowers itself to at start, e.g. 10 for a batch pool sharing
   *  nodes with an interactive one; 0 keeps the priority it was started with. */
  PROCESS_NICE: env.int(0).pipe(z.number().int().min(0).max(19)),
});
