import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { baseConfigSchema, env } from "@rebeca/platform";
import { registryConfigSchema } from "@rebeca/registry";
import { storageConfigSchema } from "@rebeca/storage";
import { defaultDescriptorSetFile } from "./descriptors.js";
import type { RequestLimits } from "./validate.js";

const defaultModelsDir = fileURLToPath(new URL("../../../models", import.meta.url));

export const gatewayConfigSchema = baseConfigSchema
  .extend(storageConfigSchema.shape)
  .extend(registryConfigSchema.shape)
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
    /** The compiled protos (a FileDescriptorSet the build writes), served by reflection and the HTTP/JSON bridge. */
    DESCRIPTOR_SET_FILE: env.str(defaultDescriptorSetFile),
    /** PEM certificate (chain) of the gRPC and HTTP/JSON listeners; set with TLS_KEY_FILE to serve TLS. */
    TLS_CERT_FILE: z.string().optional(),
    /** PEM private key of TLS_CERT_FILE. */
    TLS_KEY_FILE: z.string().optional(),
    /** PEM CA bundle for client certificates: set = mutual TLS, every client must present a certificate it signed. */
    TLS_CLIENT_CA_FILE: z.string().optional(),
    /** Seconds between re-reads of the TLS files (a renewed certificate is served to new connections). */
    TLS_RELOAD_SECONDS: env.num(60),
    /** Serve HTTP/JSON (every RPC at `POST /<package>.<Service>/<Method>`, docs/api.md) on its own port. */
    HTTP_JSON_ENABLED: env.bool(true),
    /** HTTP/JSON listen port (0 = any free port; the bound port is logged). */
    HTTP_JSON_PORT: env.int(8081),
    /** HTTP/JSON listen address. */
    HTTP_JSON_HOST: env.str("0.0.0.0"),
    /** Seconds between keep-alive comments on a quiet server-sent-event stream (e.g. WatchEvents over HTTP). */
    SSE_KEEPALIVE_SECONDS: env.num(15),
    /** Directory of model versions (`<version>/manifest.json`). */
    MODELS_DIR: env.str(defaultModelsDir),
    /** Model version used when a request names none and the tenant has no traffic policy (the policy's default stable version). */
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
    /** How long outputs are kept after their job or batch ends when a request sets no output_ttl ("30d"; "" = keep). The monitor's sweeper deletes them. */
    OUTPUT_TTL: env.str(""),
    /** Per-tenant output lifetimes overriding OUTPUT_TTL, comma-separated `tenant=duration` ("acme=7d,globex=90d"). */
    TENANT_OUTPUT_TTL: env.list(""),
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
