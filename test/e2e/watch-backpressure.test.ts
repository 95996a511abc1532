import { status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobClient, startStack, type JobClient, type Stack } from "@rebeca/devstack";
import type { Event, WatchEventsResponse } from "@rebeca/contracts/grpc";
import { modelUserIds } from "../support/world.js";
import { rawWatch } from "../support/raw-watch.js";

/** The gateway's WATCH_BUFFER_EVENTS here: small, so a few thousand events pass it. */
const BOUND = 1000;

/** Polls `check` until it returns a value, or fails after `timeoutMs` saying what it waited for. */
async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A WatchEvents stream's events and how it ended, recorded as they come. */
function record(stream: ClientReadableStream<WatchEventsResponse>) {
  const out = { events: [] as Event[], error: null as ServiceError | null, ended: false };
  stream.on("data", (r: WatchEventsResponse) => r.event && out.events.push(r.event));
  stream.on("error", (err: ServiceError) => (out.error = err));
  stream.on("end", () => (out.ended = true));
  return out;
}

describe("WatchEvents backpressure: slow watchers are cut off and resume without a gap", () => {
  let stack: Stack;
  let acme: JobClient;
  const user = modelUserIds()[0]!;
  const created: string[] = [];

  beforeAll(async () => {
    // Gateway only: jobs stay queued, each making exactly one job.queued event.
    stack = await startStack({ services: ["gateway"], env: { gateway: { WATCH_BUFFER_EVENTS: String(BOUND) } } });
    acme = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
  });
  afterAll(async () => {
    acme?.close();
    await stack?.stop();
  });

  /** Creates `n` jobs, 32 at a time; returns their ids. */
  async function createJobs(tag: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i += 32) {
      const batch = await Promise.all(Array.from({ length: Math.min(32, n - i) }, (_, k) => acme.createJob({ requestId: `${tag}-${i + k}`, userId: user })));
      ids.push(...batch.map((r) => r.job!.jobId));
    }
    created.push(...ids);
    return ids;
  }

  async function cutsSoFar(): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${stack.services.gateway!.httpPort}/metrics`)).text();
    const line = text
      .split("\n")
      .find((l) => l.startsWith("rebeca_gateway_requests_total{") && l.includes('method="WatchEvents"') && l.includes('code="RESOURCE_EXHAUSTED"'));
    return line ? Number(line.split(" ").pop()) : 0;
  }

  /** Event ids strictly increasing (so none repeats) and each created job's event exactly once. */
  function expectExactlyOnce(events: Event[], jobIds: string[]) {
    for (let i = 1; i < events.length; i++) expect(compareIds(events[i - 1]!.eventId, events[i]!.eventId)).toBeLessThan(0);
    expect(events.map((e) => e.jobId).sort()).toEqual([...jobIds].sort());
  }

  it("ends a watcher that stops reading once it is past the bound; resuming from its last id gives every event once", async () => {
    const stalled = rawWatch(stack.grpcAddress, stack.tenants.acme!.apiKey, { afterEventId: "0", types: ["job.queued"] });
    const jobs = await createJobs("slow", 4 * BOUND);
    // The gateway counts the cut as the call's RESOURCE_EXHAUSTED status.
    await until("the stalled watcher to be cut", async () => ((await cutsSoFar()) >= 1 ? true : undefined));

    // Reading again, it gets what was queued for it, then the status.
    stalled.read();
    const cut = await until("the cut to reach the client", () => stalled.status ?? undefined);
    stalled.close();
    expect(cut.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(cut.message).toContain("after_event_id");
    // Cut well before the end: it got its buffer (about the bound), not everything.
    expect(stalled.events.length).toBeGreaterThan(BOUND);
    expect(stalled.events.length).toBeLessThan(jobs.length);
    console.log(JSON.stringify({ bound: BOUND, produced: jobs.length, receivedBeforeCut: stalled.events.length }));

    const lastId = stalled.events.at(-1)!.eventId;
    const resumed = acme.watchEvents({ afterEventId: lastId, types: ["job.queued"] });
    const second = record(resumed);
    try {
      await until("the resumed watch to catch up", () => (stalled.events.length + second.events.length >= jobs.length ? true : undefined));
      // A repeat would arrive before this later event does.
      const more = await createJobs("after", 1);
      await until("the event after the catch-up", () => (second.events.some((e) => e.jobId === more[0]) ? true : undefined));
      expect(second.error).toBeNull();
      expectExactlyOnce([...stalled.events, ...second.events], [...jobs, ...more]);
    } finally {
      resumed.cancel();
    }
  }, 180_000);

  it("does not cut off a watcher far behind that reads normally, also while new events arrive", async () => {
    expect(created.length).toBeGreaterThan(3 * BOUND);
    const behind = acme.watchEvents({ afterEventId: "0", types: ["job.queued"] });
    const rec = record(behind);
    try {
      const live = await createJobs("live", BOUND / 2);
      await until("the far-behind watch to receive every event", () => (rec.events.length >= created.length || rec.error ? true : undefined));
      expect(rec.error).toBeNull();
      expectExactlyOnce(rec.events, created);
      expect(live.every((id) => rec.events.some((e) => e.jobId === id))).toBe(true);
    } finally {
      behind.cancel();
    }
  }, 180_000);
});

/** Redis stream ids `<ms>-<seq>` in stream order. */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am! < bm! ? -1 : am! > bm! ? 1 : as! < bs! ? -1 : as! > bs! ? 1 : 0;
}
