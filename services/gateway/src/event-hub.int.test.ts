import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId, type JobEvent, type JobSpec } from "@rebeca/contracts";
import { startRedis, type RedisServer } from "@rebeca/devstack";
import { createJobStore, newJobRecord, type JobStore } from "@rebeca/jobstore";
import { createLogger } from "@rebeca/platform";
import { createEventHub, type WatchSink } from "./event-hub.js";

const spec: JobSpec = {
  userId: "u1",
  numImages: 1,
  guidance: 3,
  steps: 50,
  sampler: "ddim",
  seed: 1,
  modelVersion: "demo-v1",
  priority: 0,
  labels: {},
  callbackUrl: "",
  callbackEvents: [],
  unknownUser: "reject",
};

async function until(what: string, check: () => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The hub's replay on a real Redis stream, with a sink whose drain the test controls: the replay
 * must stop at a full sink, and live events that pile up meanwhile (past the bound, so dropped)
 * must still arrive once each, re-read from the stream.
 */
describe("event hub replay honours the sink and bounds what it holds", () => {
  let server: RedisServer;
  let redis: Redis;
  let store: JobStore;
  const blocking: Redis[] = [];
  const created = async (n: number) => {
    for (let i = 0; i < n; i++)
      await store.create(newJobRecord({ jobId: newId("job"), tenant: "acme", requestId: newId("job"), spec, now: new Date().toISOString() }));
  };

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    store = createJobStore(redis, { prefix: "{hub}", retentionSeconds: 60 });
  });
  afterAll(async () => {
    for (const r of blocking) r.disconnect();
    redis?.disconnect();
    await server?.stop();
  });

  it("waits for drain between pages, and delivers every event once although the live buffer overflowed", async () => {
    const MAX = 10; // replay pages of 5
    const hub = createEventHub({
      store,
      log: createLogger("test", "silent"),
      maxBuffered: MAX,
      blockMs: 200,
      blockingRedis: () => blocking[blocking.push(new Redis(server.url)) - 1]!,
    });
    await created(40);

    // A watcher of live events only: once it has them, the tailer has offered them to everyone.
    const liveSeen: JobEvent[] = [];
    const liveSub = await hub.subscribe("acme", "", { send: (e) => (liveSeen.push(e), true), ready: async () => {}, gone: false });

    let full = true;
    let drained!: () => void;
    let readyCalls = 0;
    const seen: JobEvent[] = [];
    const slow: WatchSink = {
      send: (e) => (seen.push(e), !full),
      ready: () => {
        readyCalls++;
        return new Promise<void>((r) => (drained = r));
      },
      gone: false,
    };
    const subscribing = hub.subscribe("acme", "0", slow);
    await until("the first replay page", () => readyCalls === 1);
    // Stopped after one page, waiting for the sink instead of pushing the whole history.
    expect(seen.length).toBe(5);

    await created(3 * MAX); // more live events than the replaying watcher may hold
    await until("the live events to be tailed", () => liveSeen.length === 3 * MAX);
    expect(seen.length).toBe(5);

    full = false;
    drained();
    const sub = await subscribing;
    await until("every event", () => seen.length >= 40 + 3 * MAX);
    await created(2);
    await until("events after the seam", () => seen.length >= 40 + 3 * MAX + 2);
    const ids = seen.map((e) => e.eventId);
    expect(new Set(ids).size).toBe(ids.length);
    const all = (await store.readEvents("acme", "0", 1000)).map((e) => e.eventId);
    expect(ids).toEqual(all);
    sub.close();
    liveSub.close();
    hub.close();
  }, 60_000);
});
