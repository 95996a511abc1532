/**
 * In-memory stand-ins for the gateway services' ports, for unit tests of the handlers' logic.
 * They keep the contracts the real adapters keep (request-id dedup, the job lifecycle, the batch
 * intake watermark, catalog parsing of every job added) and record what was asked of them.
 * The real adapters are covered by the end-to-end suites in test/.
 */
import { Metadata, status, type sendUnaryData, type ServerReadableStream, type ServerUnaryCall, type ServiceError } from "@grpc/grpc-js";
import { canTransition, prepareJob, type BatchRecord, type JobKind, type JobPayload, type JobRecord, type JobSink, type PreparedJob } from "@rebeca/contracts";
import { applyTransition } from "@rebeca/jobstore";
import { createLogger, Registry } from "@rebeca/platform";
import { RpcError } from "../errors.js";
import type { IntakeDeps } from "../intake.js";
import { createGatewayMetrics } from "../metrics.js";
import type { BatchRecords, JobRecords } from "../ports.js";
import type { ModelInfo } from "../validate.js";

export const MODEL: ModelInfo = { version: "demo-v1", timesteps: 1000, defaults: { guidance: 3, steps: 50, sampler: "ddpm" } };

/** Keys `key-<tenant>` authenticate as `<tenant>`; anything else is UNAUTHENTICATED. */
export function authenticate(metadata: Metadata): string {
  const m = /^Bearer key-([a-z]+)$/.exec(String(metadata.get("authorization")[0] ?? ""));
  if (!m) throw new RpcError(status.UNAUTHENTICATED, "missing or unknown API key");
  return m[1]!;
}

export function metadataFor(tenant: string | null, extra: Record<string, string> = {}): Metadata {
  const md = new Metadata();
  if (tenant) md.set("authorization", `Bearer key-${tenant}`);
  for (const [k, v] of Object.entries(extra)) md.set(k, v);
  return md;
}

/** What the intake needs, every check passing unless a test overrides it; records what it was asked. */
export function intakeDeps(overrides: Partial<IntakeDeps> = {}) {
  const asked = { callbackUrls: [] as string[], admissions: [] as string[] };
  const deps: IntakeDeps = {
    models: new Map([[MODEL.version, MODEL]]),
    defaultModel: MODEL.version,
    limits: { maxImagesPerJob: 16, maxGuidance: 50, maxLabels: 16 },
    callbackGuard: async (url) => (asked.callbackUrls.push(url), null),
    admission: async (tenant) => (asked.admissions.push(tenant), null),
    ...overrides,
  };
  return { deps, asked };
}

export function edgeDeps() {
  return { authenticate, metrics: createGatewayMetrics(new Registry()), log: createLogger("test", "silent") };
}

/** A JobSink that parses every job against the catalog, as the real one does, and keeps it. */
export function recordingJobSink(): JobSink & { added: PreparedJob[] } {
  const added: PreparedJob[] = [];
  return {
    added,
    async add<K extends JobKind>(kind: K, payload: JobPayload<K>) {
      added.push(prepareJob(kind, payload));
    },
    async addBulk<K extends JobKind>(kind: K, payloads: readonly JobPayload<K>[]) {
      const jobs = payloads.map((p) => prepareJob(kind, p));
      added.push(...jobs);
    },
  };
}

/** Job records in a Map: a tenant's request id names one job; moves follow the lifecycle. */
export function memoryJobStore(): JobRecords & { records: Map<string, JobRecord> } {
  const records = new Map<string, JobRecord>();
  const byRequest = new Map<string, string>();
  return {
    records,
    async create(record) {
      const first = byRequest.get(`${record.tenant}/${record.requestId}`);
      if (first) return { created: false, record: records.get(first)! };
      byRequest.set(`${record.tenant}/${record.requestId}`, record.jobId);
      records.set(record.jobId, record);
      return { created: true, record, eventId: `${records.size}-0` };
    },
    async get(jobId) {
      return records.get(jobId) ?? null;
    },
    async transition(jobId, to, patch = {}) {
      const current = records.get(jobId);
      if (!current) throw new Error(`job ${jobId} not found`);
      if (!canTransition(current.state, to)) return { applied: false, record: current };
      const next = applyTransition(current, to, patch, new Date().toISOString());
      records.set(jobId, next);
      return { applied: true, record: next, eventId: "1-0" };
    },
    async list(tenant, query) {
      const mine = [...records.values()].filter((r) => r.tenant === tenant && (!query.after || r.jobId < query.after) && (!query.filter || query.filter(r)));
      mine.sort((a, b) => (a.jobId < b.jobId ? 1 : -1));
      const page = mine.slice(0, query.pageSize);
      return { records: page, next: page.length === query.pageSize ? page[page.length - 1]!.jobId : "" };
    },
  };
}

/**
 * Batch records in a Map, with the intake contract of the Redis store: shards are recorded while
 * RECEIVING, the watermark only moves forward, sealing moves to RUNNING and reports whether every
 * shard already finished (`doneShards` lets a test say how many have).
 */
export function memoryBatchStore(): BatchRecords & { records: Map<string, BatchRecord>; shards: Map<string, Set<number>>; doneShards: number } {
  const records = new Map<string, BatchRecord>();
  const byRequest = new Map<string, string>();
  const shards = new Map<string, Set<number>>();
  const store = {
    records,
    shards,
    doneShards: 0,
    async findByRequest(tenant: string, requestId: string) {
      const id = byRequest.get(`${tenant}/${requestId}`);
      return id ? structuredClone(records.get(id)!) : null;
    },
    async create(doc: Parameters<BatchRecords["create"]>[0]) {
      const first = byRequest.get(`${doc.tenant}/${doc.requestId}`);
      if (first) return { created: false, batchId: first };
      byRequest.set(`${doc.tenant}/${doc.requestId}`, doc.batchId);
      shards.set(doc.batchId, new Set());
      records.set(doc.batchId, {
        ...doc,
        state: "receiving",
        counts: { total: 0, received: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 0, shardsTotal: 0, shardsDone: 0 },
        runningTime: "",
        endTime: "",
        resultManifestUri: "",
        error: null,
      });
      return { created: true, batchId: doc.batchId };
    },
    async get(batchId: string) {
      const r = records.get(batchId);
      return r ? structuredClone(r) : null;
    },
    async addShards(batchId: string, added: { index: number; users: number }[], receivedUpTo: number) {
      const r = records.get(batchId)!;
      if (r.state !== "receiving") return r.state;
      for (const s of added) shards.get(batchId)!.add(s.index);
      r.counts.received = Math.max(r.counts.received, receivedUpTo);
      return "ok";
    },
    async shardDone(batch: { batchId: string }, index: number) {
      if (!shards.get(batch.batchId)!.has(index)) return { counted: false, last: false };
      store.doneShards++;
      return { counted: true, last: false };
    },
    async seal(batch: { batchId: string }, total: number, shardsTotal: number) {
      const r = records.get(batch.batchId)!;
      if (r.state !== "receiving") return { sealed: false, allDone: false };
      r.state = "running";
      r.counts.total = total;
      r.counts.shardsTotal = shardsTotal;
      r.counts.shardsDone = store.doneShards;
      return { sealed: true, allDone: store.doneShards >= shardsTotal };
    },
    async finish(record: BatchRecord, to: "cancelled" | "completed" | "failed") {
      const r = records.get(record.batchId)!;
      if (r.state !== "receiving" && r.state !== "running") return false;
      r.state = to;
      return true;
    },
    async list(tenant: string, pageSize: number, after?: string) {
      const mine = [...records.values()].filter((r) => r.tenant === tenant && (!after || r.batchId < after)).sort((a, b) => (a.batchId < b.batchId ? 1 : -1));
      const page = mine.slice(0, pageSize);
      return { records: page, next: page.length === pageSize ? page[page.length - 1]!.batchId : "" };
    },
  };
  return store;
}

/** The outcome of one RPC: its response, or the error it was answered with. */
export type Outcome<Res> = { ok: true; res: Res } | { ok: false; err: Partial<ServiceError> & { code: status; details: string } };

type UnaryHandler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;

/** Calls a unary handler the way grpc-js does and waits for its answer. */
export function callUnary<Req, Res>(handler: UnaryHandler<Req, Res>, request: Req, metadata: Metadata): Promise<Outcome<Res>> {
  return new Promise((resolve) => {
    handler({ request, metadata } as ServerUnaryCall<Req, Res>, (err, res) => resolve(err ? { ok: false, err: err as never } : { ok: true, res: res! }));
  });
}

type ClientStreamHandler<Req, Res> = (call: ServerReadableStream<Req, Res>, callback: sendUnaryData<Res>) => void;

/** Calls a client-streaming handler with `messages` as the client's stream. */
export function callClientStream<Req, Res>(
  handler: ClientStreamHandler<Req, Res>,
  messages: AsyncIterable<Req>,
  metadata: Metadata,
  cancelled = false,
): Promise<Outcome<Res>> {
  const call = { metadata, cancelled, [Symbol.asyncIterator]: () => messages[Symbol.asyncIterator]() } as unknown as ServerReadableStream<Req, Res>;
  return new Promise((resolve) => {
    handler(call, (err, res) => resolve(err ? { ok: false, err: err as never } : { ok: true, res: res! }));
  });
}

/** The field paths of an INVALID_ARGUMENT answer's violations, as its message lists them. */
export function violatedFields(outcome: Outcome<unknown>): string[] {
  if (outcome.ok) throw new Error("expected an error, got a response");
  if (outcome.err.code !== status.INVALID_ARGUMENT) throw new Error(`expected INVALID_ARGUMENT, got ${status[outcome.err.code]}: ${outcome.err.details}`);
  return [...outcome.err.details.replace(/^invalid request: /, "").matchAll(/(?:^|; )([a-z_.[\]0-9]+):/g)].map((m) => m[1]!);
}
