/*
 * Dynamic batching of sample jobs over a fake sampler whose embeddings depend only on each item's
 * seed and user (as the real samplers guarantee): merged calls must give every job exactly what it
 * would have got alone, and aborts and failures must stay per job.
 */
import { describe, expect, it } from "vitest";
import { createFairLanes } from "@rebeca/platform";
import type { SampleJob, SampleOutcome } from "./backend.js";
import { batchKey, createSampleBatcher, mergeJobs, SampleAbortedError, splitOutcome } from "./sample-batcher.js";
import { fakeBackend } from "./testing/fakes.js";

const job = (userIds: string[], seed0: number, over: Partial<SampleJob> = {}): SampleJob => ({
  version: "demo-v1",
  userIds,
  seeds: userIds.map((_, i) => seed0 + i),
  unknownUser: "reject",
  guidance: 2,
  steps: 3,
  sampler: "dpmpp_2m",
  spacing: "trailing",
  ...over,
});

/** A sampler whose calls finish when the test says so. */
function gatedSampler() {
  const fake = fakeBackend(["alice", "bob"]);
  const calls: { job: SampleJob; signal: AbortSignal; finish: (err?: Error) => void }[] = [];
  const run = (j: SampleJob, signal: AbortSignal) =>
    new Promise<SampleOutcome>((resolve, reject) => {
      calls.push({ job: j, signal, finish: (err) => (err ? reject(err) : resolve(fake.sample(j))) });
    });
  return { calls, run, alone: (j: SampleJob) => fake.sample(j) };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("mergeJobs / splitOutcome", () => {
  it("gives each merged job the outcome it gets alone, rejected and population items included", async () => {
    const fake = fakeBackend(["alice", "bob"]);
    for (const unknownUser of ["reject", "population"] as const) {
      const jobs = [job(["alice", "zed", "bob"], 10, { unknownUser }), job(["zed"], 20, { unknownUser }), job(["bob", "alice"], 30, { unknownUser })];
      const parts = splitOutcome(await fake.sample(mergeJobs(jobs)), jobs);
      expect(parts).toEqual(await Promise.all(jobs.map((j) => fake.sample(j))));
    }
  });

  it("refuses to merge jobs of different settings", () => {
    expect(batchKey(job(["a"], 1))).toBe(batchKey(job(["b", "c"], 9)));
    expect(() => mergeJobs([job(["alice"], 1), job(["alice"], 2, { guidance: 3 })])).toThrow(RangeError);
    expect(() => mergeJobs([job(["alice"], 1), job(["alice"], 2, { version: "demo-v2" })])).toThrow(RangeError);
  });
});

describe("createSampleBatcher", () => {
  const setUp = (maxWork = 1000) => {
    const s = gatedSampler();
    const lanes = createFairLanes({ lanes: 1 });
    const observed: [rows: number, jobs: number][] = [];
    const busy: number[] = [];
    const observe = (rows: number, jobs: number) => observed.push([rows, jobs]);
    return { s, lanes, observed, busy, sample: createSampleBatcher({ run: s.run, lanes, maxWork, observe, busy: (seconds) => busy.push(seconds) }) };
  };

  it("runs a job at once on an idle sampler and merges a tenant's jobs that wait for the lane, up to maxWork", async () => {
    const { s, sample, observed, busy } = setUp(9); // 3 evaluations per item: at most 3 items per call
    const jobs = [job(["alice"], 1), job(["bob", "alice"], 2), job(["alice"], 5), job(["bob"], 7)];
    const results = [sample("acme", jobs[0]!)];
    await tick();
    expect(s.calls.map((c) => c.job.seeds)).toEqual([[1]]); // no waiting to fill a batch
    results.push(...jobs.slice(1).map((j) => sample("acme", j)));
    await new Promise((r) => setTimeout(r, 20)); // the first call runs at least 20 ms
    s.calls[0]!.finish();
    await tick();
    expect(s.calls.map((c) => c.job.seeds)).toEqual([[1], [2, 3, 5]]);
    s.calls[1]!.finish();
    await tick();
    expect(s.calls.map((c) => c.job.seeds)).toEqual([[1], [2, 3, 5], [7]]);
    s.calls[2]!.finish();
    expect(await Promise.all(results)).toEqual(await Promise.all(jobs.map((j) => s.alone(j))));
    // One observation per sampler call, not per job: rows (2 per item: CFG) and jobs merged.
    expect(observed).toEqual([
      [2, 1],
      [6, 2],
      [2, 1],
    ]);
    // And each period in which the sampler had a call: here one per call, as each ended before
    // the next began; the first lasted at least its 20 ms.
    expect(busy).toHaveLength(3);
    expect(busy[0]).toBeGreaterThanOrEqual(0.019);
    for (const seconds of busy) expect(seconds).toBeGreaterThanOrEqual(0);
  });

  it("posts the next merged call before it hands on the jobs of the call that returned", async () => {
    const { s, sample } = setUp();
    const first = sample("acme", job(["alice"], 1));
    await tick();
    const rest = [sample("acme", job(["bob"], 2)), sample("acme", job(["alice"], 3))];
    const callsWhenHandedOn: number[] = [];
    void first.then(() => callsWhenHandedOn.push(s.calls.length));
    s.calls[0]!.finish();
    await first;
    // By the time the first job went on, the two waiting ones were already sampling (one call).
    expect(callsWhenHandedOn).toEqual([2]);
    expect(s.calls[1]!.job.seeds).toEqual([2, 3]);
    s.calls[1]!.finish();
    expect(await Promise.all(rest)).toEqual([await s.alone(job(["bob"], 2)), await s.alone(job(["alice"], 3))]);
  });

  it("with two lanes, posts a second call while the first runs, and counts the overlap as one busy period", async () => {
    const s = gatedSampler();
    const busy: number[] = [];
    const sample = createSampleBatcher({ run: s.run, lanes: createFairLanes({ lanes: 2 }), maxWork: 1000, busy: (seconds) => busy.push(seconds) });
    const a = sample("acme", job(["alice"], 1));
    await tick();
    const b = sample("acme", job(["bob"], 2));
    await tick();
    expect(s.calls.map((c) => c.job.seeds)).toEqual([[1], [2]]); // both posted
    s.calls[0]!.finish();
    await a;
    expect(busy).toEqual([]); // the second call is still out
    s.calls[1]!.finish();
    await b;
    expect(busy).toHaveLength(1);
  });

  it("never merges across tenants or settings, and lets a newcomer's call go before a backlogged tenant's next", async () => {
    const { s, sample } = setUp();
    const a = [job(["alice"], 1), job(["alice"], 2), job(["alice"], 3, { guidance: 5 }), job(["alice"], 4)];
    const results = [sample("a", a[0]!)];
    await tick();
    results.push(...a.slice(1).map((j) => sample("a", j)));
    const b = sample("b", job(["bob"], 9));
    s.calls[0]!.finish();
    await tick();
    // a's waiting jobs formed two batches (two settings); b's one job goes first.
    expect(s.calls.map((c) => c.job.seeds)).toEqual([[1], [9]]);
    s.calls[1]!.finish();
    await tick();
    s.calls[2]!.finish();
    await tick();
    s.calls[3]!.finish();
    expect(s.calls.slice(2).map((c) => [c.job.guidance, c.job.seeds])).toEqual([
      [2, [2, 4]],
      [5, [3]],
    ]);
    expect(await Promise.all([...results, b])).toEqual(await Promise.all([...a, job(["bob"], 9)].map((j) => s.alone(j))));
  });

  it("drops a job aborted while waiting, and aborts a running call only when all its jobs are", async () => {
    const { s, sample } = setUp();
    const aborts = [0, 1, 2, 3].map(() => new AbortController());
    const results = [sample("acme", job(["alice"], 0), aborts[0]!.signal)];
    await tick();
    results.push(...[1, 2, 3].map((i) => sample("acme", job(["alice"], i), aborts[i]!.signal)));
    aborts[1]!.abort(); // still waiting: never sampled
    await expect(results[1]).rejects.toBeInstanceOf(SampleAbortedError);
    s.calls[0]!.finish();
    await tick();
    expect(s.calls[1]!.job.seeds).toEqual([2, 3]);
    aborts[2]!.abort(); // in a running call: rejected at once, the call goes on for job 3
    await expect(results[2]).rejects.toBeInstanceOf(SampleAbortedError);
    expect(s.calls[1]!.signal.aborted).toBe(false);
    aborts[3]!.abort();
    expect(s.calls[1]!.signal.aborted).toBe(true);
    await expect(results[3]).rejects.toBeInstanceOf(SampleAbortedError);
    s.calls[1]!.finish(new Error("aborted"));
    expect(await results[0]).toEqual(await s.alone(job(["alice"], 0)));
  });

  it("retries the jobs of a failed merged call one by one, so only the bad job fails", async () => {
    const fake = fakeBackend(["alice"]);
    const calls: number[][] = [];
    const run = async (j: SampleJob) => {
      calls.push(j.seeds);
      if (j.seeds.includes(13)) throw new Error("bad item 13");
      return fake.sample(j);
    };
    const observed: [number, number][] = [];
    const sample = createSampleBatcher({ run, lanes: createFairLanes({ lanes: 1 }), maxWork: 1000, observe: (rows, n) => observed.push([rows, n]) });
    // Jobs that arrive together share one call, even on an idle sampler.
    const jobs = [job(["alice"], 1), job(["alice"], 2), job(["alice"], 13), job(["alice"], 4)];
    const results = jobs.map((j) =>
      sample("acme", j).then(
        (o) => o,
        (e: Error) => e.message,
      ),
    );
    expect(await Promise.all(results)).toEqual([await fake.sample(jobs[0]!), await fake.sample(jobs[1]!), "bad item 13", await fake.sample(jobs[3]!)]);
    expect(calls).toEqual([[1, 2, 13, 4], [1], [2], [13], [4]]);
    // Only calls that returned are observed: the three single retries that succeeded.
    expect(observed).toEqual([
      [2, 1],
      [2, 1],
      [2, 1],
    ]);
  });
});
