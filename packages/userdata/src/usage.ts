import type { Redis } from "ioredis";
import { Counter, type Registry } from "@rebeca/platform";
import { userDataKeys } from "./keys.js";

/** What a tenant used on one day (UTC). Seconds are the time stage workers spent on the tenant's jobs. */
export interface UsageDay {
  day: string;
  images: number;
  embeddings: number;
  priorSeconds: number;
  decoderSeconds: number;
  /** Bytes of images written to the store. */
  bytesStored: number;
}

export type UsageCounter = Exclude<keyof UsageDay, "day">;
export const USAGE_COUNTERS: readonly UsageCounter[] = ["images", "embeddings", "priorSeconds", "decoderSeconds", "bytesStored"];

/** Usage counters are kept this long (per day hash), seconds. @default 400 days */
const USAGE_TTL_SECONDS = 400 * 24 * 3600;

/** The UTC day of a time, YYYY-MM-DD. */
export const dayOf = (t: Date): string => t.toISOString().slice(0, 10);

/** The days from `start` to `end` inclusive (YYYY-MM-DD, UTC). @throws RangeError on a bad or reversed range */
export function daysBetween(start: string, end: string, maxDays = 366): string[] {
  const day = /^\d{4}-\d{2}-\d{2}$/;
  if (!day.test(start) || !day.test(end) || Number.isNaN(Date.parse(`${start}T00:00:00Z`)) || Number.isNaN(Date.parse(`${end}T00:00:00Z`)))
    throw new RangeError("days must be YYYY-MM-DD");
  const out: string[] = [];
  for (let t = Date.parse(`${start}T00:00:00Z`); t <= Date.parse(`${end}T00:00:00Z`); t += 86_400_000) {
    out.push(dayOf(new Date(t)));
    if (out.length > maxDays) throw new RangeError(`at most ${maxDays} days per call`);
  }
  if (out.length === 0) throw new RangeError("start_day is after end_day");
  return out;
}

/**
 * Per-tenant, per-day usage counters in Redis (one hash per tenant and day). Stages add as they
 * work (one pipelined HINCRBY per counter they touch, on a round trip they make anyway or off the
 * hot path); GetUsage, the CLI and the console read them.
 */
export function createUsageStore(redis: Redis, prefix: string, now: () => Date = () => new Date()) {
  const keys = userDataKeys(prefix);
  return {
    /** Adds to today's counters of `tenant` (zero and missing counters are skipped). */
    async add(tenant: string, delta: Partial<Record<UsageCounter, number>>): Promise<void> {
      const key = keys.usage(tenant, dayOf(now()));
      const m = redis.pipeline();
      let any = false;
      for (const c of USAGE_COUNTERS) {
        const v = delta[c];
        if (!v) continue;
        any = true;
        if (Number.isInteger(v)) m.hincrby(key, c, v);
        else m.hincrbyfloat(key, c, v);
      }
      if (!any) return;
      m.expire(key, USAGE_TTL_SECONDS);
      await m.exec();
    },

    /** One counter of today (quotas read it). */
    async today(tenant: string, counter: UsageCounter): Promise<number> {
      return Number((await redis.hget(keys.usage(tenant, dayOf(now())), counter)) ?? 0);
    },

    /** The tenant's usage on each of `days` (zeros for days without any). */
    async read(tenant: string, days: readonly string[]): Promise<UsageDay[]> {
      const m = redis.pipeline();
      for (const d of days) m.hgetall(keys.usage(tenant, d));
      const res = (await m.exec()) ?? [];
      return days.map((day, i) => {
        const h = (res[i]?.[1] ?? {}) as Record<string, string>;
        const row = { day } as UsageDay;
        for (const c of USAGE_COUNTERS) row[c] = Number(h[c] ?? 0);
        return row;
      });
    },
  };
}
export type UsageStore = ReturnType<typeof createUsageStore>;

/** Prometheus counters of usage, per tenant (the same quantities as the daily records). */
export function createUsageRecorder(store: Pick<UsageStore, "add">, registry: Registry, log: { warn: (o: object, msg: string) => void }) {
  const counters = {
    images: new Counter({ name: "rebeca_usage_images_total", help: "Images generated, per tenant", labelNames: ["tenant"], registers: [registry] }),
    embeddings: new Counter({ name: "rebeca_usage_embeddings_total", help: "Embeddings generated, per tenant", labelNames: ["tenant"], registers: [registry] }),
    priorSeconds: new Counter({
      name: "rebeca_usage_prior_seconds_total",
      help: "Prior-stage seconds spent on a tenant's jobs",
      labelNames: ["tenant"],
      registers: [registry],
    }),
    decoderSeconds: new Counter({
      name: "rebeca_usage_decoder_seconds_total",
      help: "Decode-stage seconds spent on a tenant's jobs",
      labelNames: ["tenant"],
      registers: [registry],
    }),
    bytesStored: new Counter({
      name: "rebeca_usage_stored_bytes_total",
      help: "Bytes of images written to the store, per tenant",
      labelNames: ["tenant"],
      registers: [registry],
    }),
  } satisfies Record<UsageCounter, Counter>;
  /**
   * Adds to the tenant's counters and, off the job's path, to today's record. A failed write is
   * logged, never thrown: usage must not fail the work it measures.
   */
  return function record(tenant: string, delta: Partial<Record<UsageCounter, number>>): void {
    for (const c of USAGE_COUNTERS) if (delta[c]) counters[c].inc({ tenant }, delta[c]);
    store.add(tenant, delta).catch((err: unknown) => log.warn({ err: (err as Error).message, tenant }, "usage not recorded"));
  };
}
export type UsageRecord = ReturnType<typeof createUsageRecorder>;

/** The usage of stored outputs: one image and one embedding each, and the images' bytes. */
export function usageOfOutputs(outputs: readonly { bytes: number }[]): Partial<Record<UsageCounter, number>> {
  return { images: outputs.length, embeddings: outputs.length, bytesStored: outputs.reduce((sum, o) => sum + o.bytes, 0) };
}
