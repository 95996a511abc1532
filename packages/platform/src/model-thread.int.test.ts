import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createModelThreadPool, ModelRunAbortedError } from "./model-thread.js";

// The threads run plain Node, so they load the built pool (dist/): an integration test, after the build.
const built = new URL("../dist/model-thread.js", import.meta.url).href;
const dir = mkdtempSync(join(tmpdir(), "model-pool-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A model thread whose "model" takes `steps` turns of 5 ms, checking the signal between them as a
 * sampler or latent decoder does between model runs; `fail` throws, `exit` ends the thread.
 */
const entry = (() => {
  const file = join(dir, "thread.mjs");
  writeFileSync(
    file,
    `import { threadId, workerData } from "node:worker_threads";
import { serveModelThread } from ${JSON.stringify(built)};
serveModelThread(async () => ({
  ready: { loaded: workerData.model },
  work: {
    async run(req, signal) {
      if (req.fail) throw new Error("bad input: " + req.fail);
      if (req.exit) process.exit(req.exit);
      for (let i = 0; i < (req.steps ?? 0); i++) {
        signal.throwIfAborted();
        await new Promise((r) => setTimeout(r, 5));
      }
      return { threadId, value: req.x * 2 };
    },
  },
}));
`,
  );
  return pathToFileURL(file);
})();

type Req = { x?: number; steps?: number; fail?: string; exit?: number };
type Res = { threadId: number; value: number };
const start = (threads: number, onThreadDeath?: (err: Error) => void) =>
  createModelThreadPool<Req, Res, { type: "ready"; loaded: string }>({
    entry,
    workerData: { model: "demo" },
    threads,
    ...(onThreadDeath ? { onThreadDeath } : {}),
  });

describe("createModelThreadPool", () => {
  it("starts every thread, spreads requests over them and answers each with its own result or error", async () => {
    const pool = await start(2);
    try {
      expect(pool.ready).toEqual({ type: "ready", loaded: "demo" });
      const results = await Promise.all([1, 2, 3, 4].map((x) => pool.run({ x, steps: 4 })));
      expect(results.map((r) => r.value)).toEqual([2, 4, 6, 8]);
      expect(new Set(results.map((r) => r.threadId)).size).toBe(2);
      await expect(pool.run({ fail: "nan" })).rejects.toThrow("bad input: nan");
    } finally {
      await pool.close();
    }
  });

  it("marks a thread that exits as dead: what it held fails, the owner is told, later requests go to the live thread", async () => {
    const deaths: Error[] = [];
    const pool = await start(2, (err) => deaths.push(err));
    try {
      const held = pool.run({ x: 1, steps: 200 }); // one thread busy
      const crashing = pool.run({ exit: 7 }); // the other one dies
      await expect(crashing).rejects.toThrow("exited with code 7");
      expect(deaths.map((e) => e.message)).toEqual(["model thread exited with code 7"]);
      const after = await Promise.all([pool.run({ x: 5 }), pool.run({ x: 6 })]);
      expect(after.map((r) => r.value)).toEqual([10, 12]);
      expect((await held).value).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it("a caller's signal stops its run between model steps", async () => {
    const pool = await start(1);
    try {
      const abort = new AbortController();
      const run = pool.run({ x: 1, steps: 10_000 }, { signal: abort.signal });
      setTimeout(() => abort.abort(), 30);
      await expect(run).rejects.toBeInstanceOf(ModelRunAbortedError);
      expect((await pool.run({ x: 2 })).value).toBe(4);
    } finally {
      await pool.close();
    }
  });

  it("close() cancels runs in flight and waits until they stopped before it terminates; later runs are refused", async () => {
    const deaths: Error[] = [];
    const pool = await start(2, (err) => deaths.push(err));
    const runs = [pool.run({ x: 1, steps: 10_000 }), pool.run({ x: 2, steps: 10_000 })].map((p) =>
      p.then(
        () => "finished",
        (e: Error) => e,
      ),
    );
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    expect(await pool.close()).toEqual({ cancelled: 2, unfinished: 0 });
    // Both answered (aborted) before the threads were terminated, and well before the 2 s fallback.
    expect(await Promise.all(runs)).toEqual([expect.any(ModelRunAbortedError), expect.any(ModelRunAbortedError)]);
    expect(Date.now() - t0).toBeLessThan(1000);
    await expect(pool.run({ x: 3 })).rejects.toThrow("closing");
    expect(deaths).toEqual([]); // a closing pool's threads exiting is no death
  });
});
