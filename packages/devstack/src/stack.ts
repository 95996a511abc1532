import { randomBytes, createHash } from "node:crypto";
import { REPO_ROOT, startService, type RunningService, type ServiceName } from "./services.js";
import { startRedis, type RedisServer } from "./redis.js";
import { startS3, type S3Server } from "./s3.js";

export interface Tenant {
  name: string;
  apiKey: string;
  /** Standard Webhooks secret (`whsec_` + base64). */
  webhookSecret: string;
}

export interface StackOptions {
  /** Tenants to create. @default ["acme", "globex"] */
  tenants?: string[];
  /** Services to start. @default gateway, prior-worker, decoder-worker, notifier, data-worker (not the monitor) */
  services?: ServiceName[];
  /** Extra environment per service (or for all, under "*"). */
  env?: Partial<Record<ServiceName | "*", Record<string, string>>>;
  /** Redis with AOF (restart scenarios). @default false */
  aof?: boolean;
  /** Unique queue prefix. @default a random `{t-xxxx}` */
  prefix?: string;
  modelsDir?: string;
  /** Where s3rver keeps objects. @default a temporary directory */
  s3Dir?: string;
  /** Redis over TLS only (`rediss://`); the services trust `caFile` through NODE_EXTRA_CA_CERTS. */
  redisTls?: { certFile: string; keyFile: string; caFile: string };
  /** s3rver logs every object written (see `startS3`). @default false */
  s3LogPuts?: boolean;
}

export interface Stack {
  redis: RedisServer;
  s3: S3Server;
  tenants: Record<string, Tenant>;
  prefix: string;
  grpcAddress: string;
  /** The console's admin key (the gateway's CONSOLE_ADMIN_KEYS holds its sha256). */
  adminKey: string;
  /** http://127.0.0.1:<port> of the gateway's console ("" until the gateway started). */
  consoleUrl: string;
  /** http://127.0.0.1:<port> of the gateway's HTTP/JSON bridge ("" until the gateway started). */
  httpUrl: string;
  /** The latest instance started of each service. */
  services: Partial<Record<ServiceName, RunningService>>;
  /** The environment every service got (to start more workers later). */
  envFor(name: ServiceName): Record<string, string>;
  /** Starts one more instance (e.g. a second worker pool); `stop` stops every instance. */
  start(name: ServiceName, extra?: Record<string, string>): Promise<RunningService>;
  stop(): Promise<void>;
}

export function newTenant(name: string): Tenant {
  return { name, apiKey: `rk_${name}_${randomBytes(18).toString("base64url")}`, webhookSecret: `whsec_${randomBytes(32).toString("base64")}` };
}

/**
 * The whole pipeline on real components: redis-server, s3rver, gateway, prior and decoder
 * workers and notifier as separate processes, all on loopback.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const names = opts.tenants ?? ["acme", "globex"];
  const tenants = Object.fromEntries(names.map((n) => [n, newTenant(n)]));
  const prefix = opts.prefix ?? `{t-${randomBytes(4).toString("hex")}}`;
  const adminKey = `rk_admin_${randomBytes(18).toString("base64url")}`;
  const [redis, s3] = await Promise.all([startRedis({ aof: opts.aof, tls: opts.redisTls }), startS3({ dir: opts.s3Dir, logPuts: opts.s3LogPuts })]);
  const common: Record<string, string> = {
    REDIS_URL: redis.url,
    QUEUE_PREFIX: prefix,
    S3_BUCKET: s3.bucket,
    S3_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
    MODELS_DIR: opts.modelsDir ?? `${REPO_ROOT}models`,
    API_KEYS: JSON.stringify(Object.values(tenants).map((t) => ({ tenant: t.name, sha256: createHash("sha256").update(t.apiKey).digest("hex") }))),
    WEBHOOK_SECRETS: JSON.stringify(Object.fromEntries(Object.values(tenants).map((t) => [t.name, [t.webhookSecret]]))),
    CALLBACK_ALLOW_HOSTS: "127.0.0.1,localhost",
    CONSOLE_PORT: "0",
    CONSOLE_HOST: "127.0.0.1",
    CONSOLE_ADMIN_KEYS: createHash("sha256").update(adminKey).digest("hex"),
    GRPC_PORT: "0",
    GRPC_HOST: "127.0.0.1",
    HTTP_JSON_PORT: "0",
    HTTP_JSON_HOST: "127.0.0.1",
    ORT_INTRA_OP_THREADS: "1",
    DRAIN_DEADLINE_MS: "10000",
    ...(opts.redisTls ? { NODE_EXTRA_CA_CERTS: opts.redisTls.caFile } : {}),
  };
  const envFor = (name: ServiceName) => ({ ...common, ...opts.env?.["*"], ...opts.env?.[name] });
  const services: Stack["services"] = {};
  const started: RunningService[] = [];
  const stack: Stack = {
    redis,
    s3,
    tenants,
    prefix,
    grpcAddress: "",
    adminKey,
    consoleUrl: "",
    httpUrl: "",
    services,
    envFor,
    async start(name, extra = {}) {
      const svc = await startService(name, { ...envFor(name), ...extra });
      services[name] = svc;
      started.push(svc);
      if (name === "gateway") {
        stack.grpcAddress = `127.0.0.1:${svc.started.grpcPort}`;
        stack.consoleUrl = svc.started.consolePort ? `http://127.0.0.1:${svc.started.consolePort}` : "";
        stack.httpUrl = svc.started.httpJsonPort ? `http://127.0.0.1:${svc.started.httpJsonPort}` : "";
      }
      return svc;
    },
    async stop() {
      await Promise.all(started.map((s) => s.process.stop()));
      await Promise.all([redis.stop(), s3.stop()]);
    },
  };
  try {
    // The data worker too: DeleteUserData (docs/api.md's walkthrough, the demo) needs it.
    for (const name of opts.services ?? (["gateway", "prior-worker", "decoder-worker", "notifier", "data-worker"] as ServiceName[])) await stack.start(name);
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}
