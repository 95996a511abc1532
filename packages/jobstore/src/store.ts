import type { Redis } from "ioredis";
import { canTransition, eventTypeOf, redisKeys, TERMINAL_STATES, type JobEvent, type JobRecord, type JobStateName } from "@rebeca/contracts";
import { luaOutboxFields } from "./lua.js";
import { applyTransition, callbackWanted, parseEvent, type TransitionPatch } from "./records.js";

/*
 * Jobs live in one hash each (`state`, `tenant`, `doc` = JSON record). Scripts make each change
 * atomic with its event: a state change, its stream entry and its outbox entry happen together or
 * not at all. JSON is built in TypeScript, never in Lua (Lua's cjson turns [] into {}); the scripts
 * compare-and-set on `state`.
 */

const CREATE = `
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
redis.call('HSET', KEYS[2], 'state', 'queued', 'tenant', ARGV[2], 'doc', ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'type', ARGV[6], 'time', ARGV[7], 'job', ARGV[3])
if ARGV[8] == '1' then
  redis.call('XADD', KEYS[5], '*', ${luaOutboxFields("job", { tenant: "ARGV[2]", eventId: "id", url: "ARGV[9]", type: "ARGV[6]", time: "ARGV[7]", job: "ARGV[3]" })})
end
return {1, ARGV[1], id}
`;

const TRANSITION = `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {-1} end
if cur ~= ARGV[1] then return {0, cur} end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'doc', ARGV[3])
if tonumber(ARGV[10]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[10]) end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'type', ARGV[5], 'time', ARGV[6], 'job', ARGV[3])
if ARGV[7] == '1' then
  redis.call('XADD', KEYS[3], '*', ${luaOutboxFields("job", { tenant: "ARGV[9]", eventId: "id", url: "ARGV[8]", type: "ARGV[5]", time: "ARGV[6]", job: "ARGV[3]" })})
end
return {1, id}
`;

export interface JobStoreOptions {
  prefix: string;
  /** How long finished jobs and idempotency keys are kept, in seconds. @default 604800 (7 days) */
  retentionSeconds?: number;
  /** Approximate number of events kept per tenant stream. @default 100000 */
  eventsMaxLen?: number;
  /** Clock, for tests. @default () => new Date() */
  now?: () => Date;
  /** Called after this process moved a job to a terminal state (for outcome metrics). */
  onFinished?: (record: JobRecord) => void;
}

export type CreateResult = { created: true; record: JobRecord; eventId: string } | { created: false; record: JobRecord };

export type TransitionResult =
  | { applied: true; record: JobRecord; eventId: string }
  /** The move is not allowed from the job's current state; `record` is that current state. */
  | { applied: false; record: JobRecord };

export class JobNotFoundError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} not found`);
    this.name = "JobNotFoundError";
  }
}

export interface ListQuery {
  pageSize: number;
  /** Exclusive upper bound (a job id) from the previous page. */
  after?: string;
  filter?: (record: JobRecord) => boolean;
}

/** Runs a Lua script by its sha (EVALSHA), loading it on first use; ioredis handles NOSCRIPT. */
function scriptRunner(redis: Redis, name: string, lua: string, keys: number) {
  if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: keys, lua });
  return (...args: (string | number)[]) => (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[name]!(...args);
}

/** Job records, their per-tenant event streams and the callback outbox, in Redis. */
export function createJobStore(redis: Redis, options: JobStoreOptions) {
  const keys = redisKeys(options.prefix);
  const retention = options.retentionSeconds ?? 7 * 24 * 3600;
  const maxLen = options.eventsMaxLen ?? 100_000;
  const now = options.now ?? (() => new Date());
  const createScript = scriptRunner(redis, "rebecaCreateJob", CREATE, 5);
  const transitionScript = scriptRunner(redis, "rebecaTransitionJob", TRANSITION, 3);

  async function get(jobId: string): Promise<JobRecord | null> {
    const doc = await redis.hget(keys.job(jobId), "doc");
    return doc ? (JSON.parse(doc) as JobRecord) : null;
  }

  const store = {
    keys,

    /**
     * Stores a new job and its `job.queued` event, unless the tenant's `requestId` was seen: then
     * the first job is returned and nothing is written.
     */
    async create(record: JobRecord): Promise<CreateResult> {
      const type = eventTypeOf("queued");
      const out = (await createScript(
        keys.request(record.tenant, record.requestId),
        keys.job(record.jobId),
        keys.tenantJobs(record.tenant),
        keys.events(record.tenant),
        keys.outbox(),
        record.jobId,
        record.tenant,
        JSON.stringify(record),
        retention,
        maxLen,
        type,
        record.updateTime,
        callbackWanted(record, type) ? "1" : "0",
        record.callbackUrl,
      )) as [number, string, string?];
      if (out[0] === 1) return { created: true, record, eventId: out[2]! };
      const first = await get(out[1]);
      if (!first) throw new JobNotFoundError(out[1]);
      return { created: false, record: first };
    },

    get,

    /**
     * Moves a job to `to` with its event, if the lifecycle allows it from the current state.
     * Compare-and-set: a concurrent change (e.g. a cancel) makes it re-read and decide again.
     * @param known the record as last read, to skip the first read (stale is safe)
     */
    async transition(jobId: string, to: JobStateName, patch: TransitionPatch = {}, known?: JobRecord): Promise<TransitionResult> {
      // `known` (the record as the caller last saw it) saves a read; the compare-and-set below
      // catches it being stale and falls back to reading.
      let guess = known;
      for (;;) {
        const current = guess ?? (await get(jobId));
        guess = undefined;
        if (!current) throw new JobNotFoundError(jobId);
        if (!canTransition(current.state, to)) return { applied: false, record: current };
        const next = applyTransition(current, to, patch, now().toISOString());
        const type = eventTypeOf(to);
        const out = (await transitionScript(
          keys.job(jobId),
          keys.events(current.tenant),
          keys.outbox(),
          current.state,
          to,
          JSON.stringify(next),
          maxLen,
          type,
          next.updateTime,
          callbackWanted(next, type) ? "1" : "0",
          next.callbackUrl,
          current.tenant,
          TERMINAL_STATES.has(to) ? retention : 0,
        )) as [number, string?];
        if (out[0] === -1) throw new JobNotFoundError(jobId);
        if (out[0] === 1) {
          if (TERMINAL_STATES.has(to)) options.onFinished?.(next);
          return { applied: true, record: next, eventId: out[1]! };
        }
      }
    },

    /**
     * Records that a stage gave up on a job (retries exhausted or unrecoverable), so clients see
     * FAILED with a code instead of a job stuck in its last state. A job that is gone (expired) or
     * already finished is left as it is.
     */
    async failJob(jobId: string, error: { code: string; message: string }): Promise<void> {
      const current = await get(jobId);
      if (current) await store.transition(jobId, "failed", { error }, current);
    },

    /** A tenant's jobs, newest first (job ids sort by creation time). */
    async list(tenant: string, query: ListQuery): Promise<{ records: JobRecord[]; next: string }> {
      const records: JobRecord[] = [];
      let upper = query.after ? `(${query.after}` : "+";
      // Filters may reject most of a page; scan in chunks, bounded so one call stays cheap.
      for (let scanned = 0; records.length < query.pageSize && scanned < 5000;) {
        const ids = await redis.zrevrangebylex(keys.tenantJobs(tenant), upper, "-", "LIMIT", 0, 200);
        if (ids.length === 0) return { records, next: "" };
        scanned += ids.length;
        const docs = await redis.pipeline(ids.map((id) => ["hget", keys.job(id), "doc"])).exec();
        const expired: string[] = [];
        for (let i = 0; i < ids.length; i++) {
          const doc = docs?.[i]?.[1] as string | null;
          if (!doc) {
            expired.push(ids[i]!);
            continue;
          }
          const record = JSON.parse(doc) as JobRecord;
          if (query.filter && !query.filter(record)) continue;
          records.push(record);
          if (records.length === query.pageSize) return { records, next: ids[i]! };
        }
        // Records past retention leave their index entry behind; drop it when we meet it.
        if (expired.length > 0) await redis.zrem(keys.tenantJobs(tenant), ...expired);
        upper = `(${ids[ids.length - 1]}`;
      }
      return { records, next: records.length > 0 ? records[records.length - 1]!.jobId : "" };
    },

    /** Events of a tenant strictly after `afterId` ("0" = from the oldest kept), up to `count`. */
    async readEvents(tenant: string, afterId: string, count: number): Promise<JobEvent[]> {
      const entries = await redis.xrange(keys.events(tenant), `(${afterId}`, "+", "COUNT", count);
      return entries.map(([id, fields]) => parseEvent(tenant, id, fields));
    },

    /** The id of a tenant's newest event, or "0-0" when it has none. */
    async lastEventId(tenant: string): Promise<string> {
      const last = await redis.xrevrange(keys.events(tenant), "+", "-", "COUNT", 1);
      return last[0]?.[0] ?? "0-0";
    },
  };
  return store;
}

export type JobStore = ReturnType<typeof createJobStore>;
