import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { baseConfigSchema, env } from "@rebeca/platform";
import { storageConfigSchema } from "@rebeca/storage";
import type { RequestLimits } from "./validate.js";

const defaultProtoDir = fileURLToPath(new URL("../../../proto", import.meta.url));
const defaultModelsDir = fileURLToPath(new URL("../../../models", import.meta.url));

export const gatewayConfigSchema = baseConfigSchema
  .extend(storageConfigSchema.shape)
  .extend({
    /** Submissions (CreateJob, CreateBatch) per second per tenant, with one second of burst; 0 = unlimited. */
    SUBMISSIONS_PER_SECOND: env.int(0),
    /** Redis used_memory (bytes) above which submissions are refused; 0 = no budget. */
    REDIS_MEMORY_BUDGET_BYTES: env.int(0),
    /** Users per shard: the unit the models run as one batch and Redis keeps one record for. */
    SHARD_SIZE: env.int(256),
    /** Largest CreateBatchFromManifest object, bytes (1 GiB holds ~10M ids of ~100 bytes); a bigger one is refused before it is read. */
    MAX_MANIFEST_BYTES: env.int(1024 * 1024 * 1024),
    /** Most users one batch may hold. */
    MAX_USERS_PER_BATCH: env.int(10_000_000),
    /** gRPC listen port (0 = any free port; the bound port is logged). */
    GRPC_PORT: env.int(50051),
    /** gRPC listen address. */
    GRPC_HOST: env.str("0.0.0.0"),
    /** Directory holding rebeca/v1/jobs.proto, served by reflection. */
    PROTO_DIR: env.str(defaultProtoDir),
    /** Directory of model versions (`<version>/manifest.json`). */
    MODELS_DIR: env.str(defaultModelsDir),
    /** Model version used when a request names none. */
    DEFAULT_MODEL_VERSION: env.str("demo-v1"),
    /** API keys as JSON `[{"tenant": "acme", "sha256": "<hex sha256 of the key>"}]`. */
    API_KEYS: z.string().optional(),
    /** Path of a file with the same JSON as API_KEYS (a mounted Secret). */
    API_KEYS_FILE: z.string().optional(),
    /** Largest accepted request message, bytes. */
    MAX_MESSAGE_BYTES: env.int(1024 * 1024),
    /** Most images one job may ask for. */
    MAX_IMAGES_PER_JOB: env.int(16),
    /** Largest guidance scale accepted. */
    MAX_GUIDANCE: env.num(50),
    /** Open WatchEvents streams one tenant may hold; past it WatchEvents answers RESOURCE_EXHAUSTED. */
    MAX_WATCHERS_PER_TENANT: env.int(1000),
    /** Unsent events one WatchEvents stream may hold before it is ended RESOURCE_EXHAUSTED (the client resumes from its last event id). */
    WATCH_BUFFER_EVENTS: env.int(10_000),
    /** A tenant's unfinished prior-stage jobs above which its CreateJob answers RESOURCE_EXHAUSTED. */
    MAX_PRIOR_BACKLOG: env.int(100_000),
    /** Per-tenant quotas as JSON: `{"acme": {"imagesPerDay": 100000, "concurrentBatches": 2, "backlog": 5000}, "*": {...}}` (docs/operations.md). */
    TENANT_QUOTAS: env.str("{}"),
    /** Hosts or CIDRs callback URLs may point at although they are private (e.g. `127.0.0.1` in tests). */
    CALLBACK_ALLOW_HOSTS: env.list(""),
    /** Serve the web console (batches, galleries, evaluation reports, queue view) on its own admin HTTP port. */
    CONSOLE_ENABLED: env.bool(true),
    /** Console (admin HTTP) port (0 = any free port; the bound port is logged). Keep it off public ingress. */
    CONSOLE_PORT: env.int(8080),
    /** Console listen address. */
    CONSOLE_HOST: env.str("0.0.0.0"),
    /** Admin keys of the console as sha256 hex, comma-separated: they see every tenant and the queue view. API keys sign in to their own tenant. */
    CONSOLE_ADMIN_KEYS: env.list(""),
    /** How long a console sign-in lasts, seconds. */
    CONSOLE_SESSION_TTL_SECONDS: env.int(8 * 3600),
    /** Mark the session cookie Secure (set true when the console is reached over TLS). */
    CONSOLE_SECURE_COOKIE: env.bool(false),
  })
  .refine((c) => c.API_KEYS || c.API_KEYS_FILE, { message: "set API_KEYS or API_KEYS_FILE", path: ["API_KEYS"] });
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

const apiKeysSchema = z.array(z.object({ tenant: z.string(), sha256: z.string() })).min(1);

/** The configured API keys (hashes only), from API_KEYS or API_KEYS_FILE. */
export function readApiKeys(config: GatewayConfig) {
  const text = config.API_KEYS ?? readFileSync(config.API_KEYS_FILE!, "utf8");
  return apiKeysSchema.parse(JSON.parse(text));
}

/** Labels one job may carry and one list or watch filter may name (a fixed limit: events carry them). */
export const MAX_LABELS = 16;

/** The per-request limits both services check. */
export function requestLimits(config: GatewayConfig): RequestLimits {
  return { maxImagesPerJob: config.MAX_IMAGES_PER_JOB, maxGuidance: config.MAX_GUIDANCE, maxLabels: MAX_LABELS };
}
