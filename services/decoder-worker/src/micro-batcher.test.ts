import { describe, expect, it } from "vitest";
import type { DecodedImages, ImageDecoder } from "@rebeca/inference";
import { createMicroBatcher, type BatchClock, type ExecutionStats } from "./micro-batcher.js";
import { createBatchingDecoder, splitDecoded } from "./batching-decoder.js";

/** A clock that moves only when told to; timers fire in due order. */
function fakeClock() {
  let t = 0;
  let seq = 0;
  const timers = new Map<number, { due: number; fn: () => void }>();
  const clock: BatchClock = {
    now: () => t,
    setTimeout: (fn, ms) => (timers.set(++seq, { due: t + ms, fn }), seq),
    clearTimeout: (h) => void timers.delete(h as number),
  };
  async function advance(ms: number) {
    const end = t + ms;
    for (;;) {
      const next = [...timers.entries()].filter(([, v]) => v.due <= end).sort((a, b) => a[1].due - b[1].due)[0];
      if (!next) break;
      timers.delete(next[0]);
      t = next[1].due;
      next[1].fn();
      await settle();
    }
    t = end;
    await settle();
  }
  return { clock, advance, pendingTimers: () => timers.size };
}

/** Lets every already-resolved promise chain run (no time passes on the fake clock). */
const settle = () => new Promise<void>((r) => setImmediate(r));

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject };
}

/** An executor whose batches the test releases by hand; results are `req × 10`. */
function manualExecutor() {
  const calls: { reqs: number[]; done: ReturnType<typeof deferred<void>> }[] = [];
  const execute = async (reqs: readonly number[]) => {
    const done = deferred<void>();
    calls.push({ reqs: [...reqs], done });
    await done.promise;
    return reqs.map((r) => r * 10);
  };
  return { calls, execute };
}

describe("createMicroBatcher", () => {
  it("a partial batch waits maxWaitMs for company, then runs once and settles each request", async () => {
    const { clock, advance } = fakeClock();
    const ex = manualExecutor();
    const b = createMicroBatcher<number, number>({ maxBatch: 8, maxWaitMs: 10, execute: ex.execute, clock });
    const results = [1, 2, 3].map((r) => b.submit(r));
    await advance(9);
    expect(ex.calls).toHaveLength(0);
    await advance(1);
    expect(ex.calls.map((c) => c.reqs)).toEqual([[1, 2, 3]]);
    ex.calls[0]!.done.resolve();
    expect(await Promise.all(results)).toEqual([10, 20, 30]);
  });

  it("a full batch runs at once, counted in items, not requests", async () => {
    const { clock } = fakeClock();
    const ex = manualExecutor();
    const b = createMicroBatcher<number, number>({ maxBatch: 8, maxWaitMs: 1000, size: () => 2, execute: ex.execute, clock });
    const all = [1, 2, 3, 4].map((r) => b.submit(r));
    await settle();
    expect(ex.calls.map((c) => c.reqs)).toEqual([[1, 2, 3, 4]]);
    ex.calls[0]!.done.resolve();
    await Promise.all(all);
  });

  it("never exceeds maxBatch items; the rest forms the next batch; an oversized request runs alone", async () => {
    const { clock, advance } = fakeClock();
    const ex = manualExecutor();
    const b = createMicroBatcher<number, number>({ maxBatch: 8, maxWaitMs: 5, size: (r) => r, execute: ex.execute, clock });
    const all = [3, 3, 3, 20].map((r) => b.submit(r));
    await settle();
    expect(ex.calls.map((c) => c.reqs)).toEqual([[3, 3]]);
    ex.calls[0]!.done.resolve();
    await settle();
    // 3 + 20 > 8 items queued: no reason to wait, the head goes alone and 20 after it
    expect(ex.calls.map((c) => c.reqs)).toEqual([[3, 3], [3]]);
    ex.calls[1]!.done.resolve();
    await settle();
    expect(ex.calls.map((c) => c.reqs)).toEqual([[3, 3], [3], [20]]);
    ex.calls[2]!.done.resolve();
    await advance(0);
    expect(await Promise.all(all)).toEqual([30, 30, 30, 200]);
  });

  it("while the executor is busy the queue grows into the next batch (Triton's behaviour under load)", async () => {
    const { clock } = fakeClock();
    const ex = manualExecutor();
    const stats: ExecutionStats[] = [];
    const b = createMicroBatcher<number, number>({ maxBatch: 8, maxWaitMs: 0, execute: ex.execute, clock, onExecution: (s) => stats.push(s) });
    const first = b.submit(0);
    await settle();
    const more = [1, 2, 3, 4, 5].map((r) => b.submit(r));
    await settle();
    expect(ex.calls).toHaveLength(1);
    expect(b.queued).toBe(5);
    ex.calls[0]!.done.resolve();
    await settle();
    expect(ex.calls.map((c) => c.reqs)).toEqual([[0], [1, 2, 3, 4, 5]]);
    ex.calls[1]!.done.resolve();
    await Promise.all([first, ...more]);
    // inferences / executions = 6 / 2: the average batch Triton reports
    expect(stats.reduce((n, s) => n + s.items, 0) / stats.length).toBe(3);
  });

  it("the next batch is handed to the model before the finished batch's requests resume", async () => {
    const { clock } = fakeClock();
    const started: number[][] = [];
    const gates: (() => void)[] = [];
    const b = createMicroBatcher<number, number>({
      maxBatch: 2,
      maxWaitMs: 0,
      clock,
      execute: async (reqs) => {
        await Promise.resolve(); // like acquiring the model's lane before the call
        started.push([...reqs]);
        await new Promise<void>((r) => gates.push(r));
        return reqs;
      },
    });
    const startedWhenFirstResumed: number[] = [];
    const first = b.submit(1).then((v) => (startedWhenFirstResumed.push(started.length), v));
    await settle();
    void b.submit(2);
    void b.submit(3);
    gates[0]!();
    await first;
    expect(startedWhenFirstResumed).toEqual([2]);
  });

  it("a request queued during a busy period waits at most what is left of its maxWait", async () => {
    const { clock, advance } = fakeClock();
    const ex = manualExecutor();
    const b = createMicroBatcher<number, number>({ maxBatch: 8, maxWaitMs: 10, execute: ex.execute, clock });
    void b.submit(1);
    await advance(10);
    expect(ex.calls).toHaveLength(1);
    void b.submit(2);
    await advance(4);
    ex.calls[0]!.done.resolve();
    await settle();
    expect(ex.calls).toHaveLength(1); // waited 4 of 10 ms
    await advance(5);
    expect(ex.calls).toHaveLength(1);
    await advance(1);
    expect(ex.calls.map((c) => c.reqs)).toEqual([[1], [2]]);
  });

  it("runs up to `concurrency` executions at once", async () => {
    const { clock } = fakeClock();
    const ex = manualExecutor();
    const b = createMicroBatcher<number, number>({ maxBatch: 2, maxWaitMs: 100, concurrency: 2, execute: ex.execute, clock });
    [1, 2, 3, 4, 5, 6].forEach((r) => void b.submit(r));
    await settle();
    expect(ex.calls.map((c) => c.reqs)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(b.running).toBe(2);
  });

  it("hands `ahead` full batches over while the instance is busy; a partial one waits for a free instance", async () => {
    const { clock, advance } = fakeClock();
    const ex = manualExecutor();
    const b = createMicroBatcher<number, number>({ maxBatch: 2, maxWaitMs: 5, concurrency: 1, ahead: 1, execute: ex.execute, clock });
    const results = [1, 2, 3, 4, 5, 6, 7].map((r) => b.submit(r));
    await settle();
    // One running, one full batch waiting at the instance; the third full one stays queued.
    expect(ex.calls.map((c) => c.reqs)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    ex.calls[0]!.done.resolve();
    await settle();
    expect(ex.calls.map((c) => c.reqs)).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(await Promise.all(results.slice(0, 2))).toEqual([10, 20]);
    // [7] alone is partial: past its wait it still does not go ahead of a busy instance...
    await advance(50);
    expect(ex.calls).toHaveLength(3);
    ex.calls[1]!.done.resolve();
    await settle();
    expect(ex.calls).toHaveLength(3);
    // ...and runs once nothing is running.
    ex.calls[2]!.done.resolve();
    await settle();
    expect(ex.calls.map((c) => c.reqs)).toEqual([[1, 2], [3, 4], [5, 6], [7]]);
    ex.calls[3]!.done.resolve();
    expect(await Promise.all(results)).toEqual([10, 20, 30, 40, 50, 60, 70]);
  });

  it("a failing batch is rerun one request at a time, so only the bad request fails", async () => {
    const { clock, advance } = fakeClock();
    const seen: number[][] = [];
    const stats: ExecutionStats[] = [];
    const b = createMicroBatcher<number, number>({
      maxBatch: 8,
      maxWaitMs: 1,
      clock,
      onExecution: (s) => stats.push(s),
      execute: async (reqs) => {
        seen.push([...reqs]);
        if (reqs.includes(-1)) throw new Error("bad embedding");
        return reqs.map((r) => r + 100);
      },
    });
    const all = [1, -1, 3].map((r) =>
      b.submit(r).then(
        (v) => ({ v }),
        (e: Error) => ({ e: e.message }),
      ),
    );
    await advance(1);
    expect(await Promise.all(all)).toEqual([{ v: 101 }, { e: "bad embedding" }, { v: 103 }]);
    expect(seen).toEqual([[1, -1, 3], [1], [-1], [3]]);
    expect(stats.map((s) => s.split)).toEqual([true, false, false, false]);
  });

  it("a single failing request is rejected as is", async () => {
    const { clock, advance } = fakeClock();
    const b = createMicroBatcher<number, number>({ maxBatch: 8, maxWaitMs: 1, clock, execute: () => Promise.reject(new Error("oom")) });
    const r = b.submit(1);
    const caught = r.catch((e: Error) => e.message);
    await advance(1);
    expect(await caught).toBe("oom");
  });

  it("an executor returning the wrong number of results fails its requests", async () => {
    const { clock, advance } = fakeClock();
    const b = createMicroBatcher<number, number>({ maxBatch: 8, maxWaitMs: 1, clock, execute: async () => [] });
    const caught = b.submit(1).catch((e: Error) => e.message);
    await advance(1);
    expect(await caught).toMatch(/returned 0 results for 1 requests/);
  });

  it("refuses bad options and bad sizes", async () => {
    const execute = async (r: readonly number[]) => r;
    expect(() => createMicroBatcher({ maxBatch: 0, maxWaitMs: 1, execute })).toThrow(/maxBatch/);
    expect(() => createMicroBatcher({ maxBatch: 1, maxWaitMs: -1, execute })).toThrow(/maxWaitMs/);
    expect(() => createMicroBatcher({ maxBatch: 1, maxWaitMs: 1, concurrency: 0, execute })).toThrow(/concurrency/);
    expect(() => createMicroBatcher({ maxBatch: 1, maxWaitMs: 1, ahead: 0.5, execute })).toThrow(/ahead/);
    await expect(createMicroBatcher({ maxBatch: 1, maxWaitMs: 1, size: () => 0, execute }).submit(1)).rejects.toThrow(/size/);
  });
});

describe("createBatchingDecoder", () => {
  const D = 2;
  /** A decoder whose pixel values encode (embedding[0], seed), so the split can be checked. */
  function recordingDecoder() {
    const calls: { count: number; seeds: readonly number[] }[] = [];
    const decoder: ImageDecoder = {
      async decode(e, count, seeds) {
        calls.push({ count, seeds: seeds ?? [] });
        const pixels = new Float32Array(count * 2);
        for (let i = 0; i < count; i++) pixels.set([e[i * D]!, seeds![i]!], i * 2);
        return { pixels, count, channels: 1, height: 1, width: 2 };
      },
    };
    return { decoder, calls };
  }

  it("decodes concurrent jobs in one call and gives each its own images and seeds", async () => {
    const { clock, advance } = fakeClock();
    const { decoder, calls } = recordingDecoder();
    const held: string[] = [];
    const d = createBatchingDecoder(decoder, D, {
      maxBatch: 8,
      maxWaitMs: 2,
      concurrency: 1,
      clock,
      acquire: async (tenant, n) => (held.push(`${tenant}:${n}`), () => held.push("release")),
    });
    const a = d.decode({ tenant: "acme", embeddings: Float32Array.of(1, 0, 2, 0), count: 2, seeds: [11, 12] });
    const b = d.decode({ tenant: "zeta", embeddings: Float32Array.of(3, 0), count: 1, seeds: [13] });
    await advance(2);
    const [ra, rb] = await Promise.all([a, b]);
    expect(calls).toEqual([{ count: 3, seeds: [11, 12, 13] }]);
    expect(Array.from(ra.pixels)).toEqual([1, 11, 2, 12]);
    expect(ra.count).toBe(2);
    expect(Array.from(rb.pixels)).toEqual([3, 13]);
    expect(held).toEqual(["acme:3", "release"]);
  });

  it("rejects malformed requests before they can spoil a batch", async () => {
    const { decoder } = recordingDecoder();
    const d = createBatchingDecoder(decoder, D, { maxBatch: 8, maxWaitMs: 0, concurrency: 1 });
    await expect(d.decode({ tenant: "t", embeddings: new Float32Array(3), count: 1, seeds: [1] })).rejects.toThrow(/expected 1×2/);
    await expect(d.decode({ tenant: "t", embeddings: new Float32Array(2), count: 1, seeds: [] })).rejects.toThrow(/0 seeds for 1/);
  });

  it("splitDecoded hands out views in order", () => {
    const images: DecodedImages = { pixels: Float32Array.of(1, 2, 3, 4, 5, 6), count: 3, channels: 1, height: 1, width: 2 };
    expect(splitDecoded(images, [1, 2]).map((p) => [p.count, Array.from(p.pixels)])).toEqual([
      [1, [1, 2]],
      [2, [3, 4, 5, 6]],
    ]);
  });
});
