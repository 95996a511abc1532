import { describe, expect, it } from "vitest";
import { runChunks, ShardStoppedError, type ShardProgress } from "./shard-chunks.js";

/** An in-memory record (the Redis one is tested in the spot-shard fault test). */
function memoryProgress(initial: [number, number[]][] = []): ShardProgress<number> & { records: Map<number, number[]> } {
  const records = new Map(initial);
  return {
    records,
    finished: async () => new Map(records),
    record: async (start, outputs) => void records.set(start, outputs),
  };
}

/** A chunk runner whose output for image i is i * 10, counting the images it decoded. */
function decoder() {
  const ran: number[] = [];
  return {
    ran,
    run: async (start: number, count: number) => {
      const out = Array.from({ length: count }, (_, i) => (start + i) * 10);
      ran.push(...out.map((o) => o / 10));
      return out;
    },
  };
}

describe("runChunks", () => {
  it("runs every chunk in order and records each one", async () => {
    const progress = memoryProgress();
    const d = decoder();
    const r = await runChunks({ total: 10, chunkImages: 4, progress, run: d.run });
    expect(r.outputs).toEqual(Array.from({ length: 10 }, (_, i) => i * 10));
    expect([...progress.records.keys()]).toEqual([0, 4, 8]);
    expect(r).toMatchObject({ resumedImages: 0, chunksRun: 3 });
  });

  it("resumes after the recorded chunks and decodes only the rest", async () => {
    const progress = memoryProgress([
      [0, [0, 10, 20, 30]],
      [4, [40, 50, 60, 70]],
    ]);
    const d = decoder();
    const r = await runChunks({ total: 10, chunkImages: 4, progress, run: d.run });
    expect(d.ran).toEqual([8, 9]);
    expect(r.outputs).toEqual(Array.from({ length: 10 }, (_, i) => i * 10));
    expect(r).toMatchObject({ resumedImages: 8, chunksRun: 1 });
  });

  it("resumes at the end of the record when the chunk size changed", async () => {
    const progress = memoryProgress([[0, [0, 10, 20]]]);
    const d = decoder();
    const r = await runChunks({ total: 7, chunkImages: 2, progress, run: d.run });
    expect(d.ran).toEqual([3, 4, 5, 6]);
    expect([...progress.records.keys()]).toEqual([0, 3, 5]);
    expect(r.outputs).toHaveLength(7);
  });

  it("ignores records past a gap (only a prefix is trusted)", async () => {
    const progress = memoryProgress([[4, [40, 50]]]);
    const d = decoder();
    await runChunks({ total: 6, chunkImages: 4, progress, run: d.run });
    expect(d.ran).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("stops between chunks when asked, leaving the finished chunks recorded", async () => {
    const progress = memoryProgress();
    const d = decoder();
    let asked = 0;
    const err = await runChunks({ total: 12, chunkImages: 4, progress, run: d.run, shouldStop: () => (++asked > 2 ? "draining" : undefined) }).catch((e) => e);
    expect(err).toBeInstanceOf(ShardStoppedError);
    expect((err as ShardStoppedError).doneImages).toBe(8);
    expect([...progress.records.keys()]).toEqual([0, 4]);
    const next = decoder();
    await runChunks({ total: 12, chunkImages: 4, progress, run: next.run });
    expect(next.ran).toEqual([8, 9, 10, 11]);
  });

  it("ends early when told before a chunk or by a chunk that declines, keeping what is done", async () => {
    const progress = memoryProgress();
    const d = decoder();
    let chunks = 0;
    const early = await runChunks({ total: 10, chunkImages: 4, progress, run: d.run, endEarly: () => chunks++ >= 1 });
    expect(early).toMatchObject({ outputs: [0, 10, 20, 30], chunksRun: 1 });
    const declined = await runChunks({
      total: 10,
      chunkImages: 4,
      progress: memoryProgress(),
      run: async (start, count) => (start >= 4 ? null : d.run(start, count)),
    });
    expect(declined.outputs).toEqual([0, 10, 20, 30]);
    expect(declined.chunksRun).toBe(1);
  });

  it("does not record a chunk whose decode failed", async () => {
    const progress = memoryProgress();
    const run = async (start: number, count: number) => {
      if (start === 4) throw new Error("decoder died");
      return Array.from({ length: count }, () => 1);
    };
    await expect(runChunks({ total: 8, chunkImages: 4, progress, run })).rejects.toThrow("decoder died");
    expect([...progress.records.keys()]).toEqual([0]);
  });

  it("refuses a chunk that returns the wrong number of outputs", async () => {
    await expect(runChunks({ total: 4, chunkImages: 4, progress: memoryProgress(), run: async () => [1] })).rejects.toThrow("gave 1 outputs for 4 images");
  });
});
