/**
 * In-memory stand-ins for the prior processors' ports, for unit tests of their logic: a sampler
 * backend whose embeddings are a known function of the seeds, job and shard records that follow
 * the real lifecycles, a blob map, and a job sink that parses every job against the catalog.
 * The real path (sampler threads, Redis, S3) is covered by test/e2e.
 */
import {
  canTransition,
  newId,
  prepareJob,
  type JobKind,
  type JobPayload,
  type JobRecord,
  type JobSink,
  type PreparedJob,
  type PriorTask,
} from "@rebeca/contracts";
import { applyTransition, newJobRecord, type BatchStore, type JobStore } from "@rebeca/jobstore";
import type { BlobStore } from "@rebeca/storage";
import type { PriorBackend, SampleJob, SampleOutcome } from "../backend.js";

export const DIM = 3;

/** The embedding the fake sampler gives an item: a function of its seed only, as the real one is. */
export const embeddingOf = (seed: number): number[] => [seed % 1000, (seed >>> 10) % 1000, 0.5];

/**
 * A backend serving "demo-v1" whose users are `known`. `hold` makes every sample wait until its
 * signal aborts (a cancel), so a test can cancel mid-sample.
 */
export function fakeBackend(known: readonly string[] = ["alice", "bob", "carol"], opts: { hold?: boolean } = {}) {
  const calls: SampleJob[] = [];
  const backend: PriorBackend & { calls: SampleJob[] } = {
    calls,
    versions: new Map([["demo-v1", { embeddingDim: DIM }]]),
    async sample(job, signal): Promise<SampleOutcome> {
      calls.push(job);
      if (opts.hold) {
        await new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve(), { once: true }));
        throw new Error("aborted");
      }
      const served: number[] = [];
      const rejected: number[] = [];
      const population: boolean[] = [];
      job.userIds.forEach((u, i) => {
        const isKnown = known.includes(u);
        if (!isKnown && job.unknownUser === "reject") rejected.push(i);
        else {
          served.push(i);
          population.push(!isKnown);
        }
      });
      return { embeddings: Float32Array.from(served.flatMap((i) => embeddingOf(job.seeds[i]!))), served, population, rejected };
    },
    close: async () => {},
  };
  return backend;
}

/** A JobSink that parses every job against the catalog, as the real one does, and keeps it. */
export function recordingJobSink(): Pick<JobSink, "add"> & { added: PreparedJob[] } {
  const added: PreparedJob[] = [];
  return {
    added,
    async add<K extends JobKind>(kind: K, payload: JobPayload<K>) {
      added.push(prepareJob(kind, payload));
    },
  };
}

export function memoryBlobs(): BlobStore & { objects: Map<string, Uint8Array> } {
  const objects = new Map<string, Uint8Array>();
  const missing = (key: string) => Object.assign(new Error(`${key} not found`), { name: "BlobNotFoundError" });
  return {
    objects,
    async put(key, body) {
      objects.set(key, body);
      return `mem://${key}`;
    },
    async putStream() {
      throw new Error("not used by the prior stage");
    },
    async get(key) {
      const o = objects.get(key);
      if (!o) throw missing(key);
      return o;
    },
    async getStream() {
      throw new Error("not used by the prior stage");
    },
    uri: (key) => `mem://${key}`,
    signedUrl: async (key) => `mem://${key}`,
    async *list(prefix) {
      for (const key of [...objects.keys()].filter((k) => k.startsWith(prefix)).sort()) {
        yield { key, size: objects.get(key)!.byteLength, lastModified: new Date(0) };
      }
    },
    async deleteMany(keys) {
      keys.forEach((key) => objects.delete(key));
      return { deleted: keys.length };
    },
  };
}

/** Job records in a Map that follow the job lifecycle; counts applied moves per target state. */
export function memoryJobStore() {
  const records = new Map<string, JobRecord>();
  const moves: string[] = [];
  const store = {
    records,
    moves,
    async get(jobId: string) {
      return records.get(jobId) ?? null;
    },
    async transition(jobId: string, to: JobRecord["state"], patch = {}) {
      const current = records.get(jobId);
      if (!current) throw new Error(`job ${jobId} not found`);
      if (!canTransition(current.state, to)) return { applied: false as const, record: current };
      const next = applyTransition(current, to, patch, new Date().toISOString());
      records.set(jobId, next);
      moves.push(to);
      return { applied: true as const, record: next, eventId: `${moves.length}-0` };
    },
  };
  // The processor uses only get and transition of the store.
  return store as typeof store & JobStore;
}

/** A stored job in QUEUED and the prior task the gateway enqueued for it. */
export function queuedJob(store: ReturnType<typeof memoryJobStore>, overrides: Partial<PriorTask> = {}): PriorTask {
  const jobId = newId("job");
  const task: PriorTask = {
    tenant: "acme",
    jobId,
    userId: "alice",
    modelVersion: "demo-v1",
    numImages: 2,
    guidance: 3,
    steps: 50,
    sampler: "ddim",
    seed: 7,
    unknownUser: "reject",
    priority: 0,
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ...overrides,
  };
  const spec = {
    userId: task.userId,
    numImages: task.numImages,
    guidance: task.guidance,
    steps: task.steps,
    sampler: task.sampler,
    seed: task.seed,
    modelVersion: task.modelVersion,
    priority: 0,
    labels: {},
    callbackUrl: "",
    callbackEvents: [],
    unknownUser: task.unknownUser,
  };
  store.records.set(jobId, newJobRecord({ jobId, tenant: task.tenant, requestId: jobId, spec, now: new Date().toISOString(), traceparent: task.traceparent }));
  return task;
}

type ShardState = "queued" | "sampling" | "decoding" | "done";

/**
 * One batch's shard records with the rules of the Redis store's SHARD_STEP and SHARD_DONE: a shard
 * moves forward unless its batch stopped, is counted once, and the count that completes the batch
 * reports `last`. `shardsTotal` shards start QUEUED.
 */
export function memoryShards(shardsTotal: number) {
  const shards = new Map<number, ShardState>(Array.from({ length: shardsTotal }, (_, i) => [i, "queued" as ShardState]));
  const counted: { index: number; succeeded: number; failed: number; cancelled: number }[] = [];
  const state = { batch: "running" as "running" | "cancelled" };
  const allDone = () => [...shards.values()].every((s) => s === "done");
  const batches = {
    shards,
    counted,
    state,
    async shardStep(_batchId: string, index: number, to: "sampling" | "decoding") {
      const s = shards.get(index);
      if (!s) return "missing" as const;
      if (s === "done") return "done" as const;
      if (state.batch === "cancelled") return "stopped" as const;
      if (to === "sampling" && s === "queued") shards.set(index, "sampling");
      if (to === "decoding" && (s === "queued" || s === "sampling")) shards.set(index, "decoding");
      return "ok" as const;
    },
    async shardDone(_batch: { batchId: string; tenant: string }, index: number, n: { succeeded: number; failed: number; cancelled: number }) {
      if (shards.get(index) === "done") return { counted: false, last: allDone() };
      shards.set(index, "done");
      counted.push({ index, ...n });
      return { counted: true, last: allDone() };
    },
  };
  // The shard processor uses only shardStep and shardDone of the batch store.
  return batches as typeof batches & BatchStore;
}
