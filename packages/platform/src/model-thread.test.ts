import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { MODEL_THREAD_YOUNG_GENERATION_MB, startModelThread } from "./model-thread.js";

const dir = mkdtempSync(join(tmpdir(), "model-thread-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A thread script from its body (it has `port` and `data` in scope). */
function script(name: string, body: string): URL {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, `import { parentPort as port, workerData as data } from "node:worker_threads";\n${body}\n`);
  return pathToFileURL(file);
}

describe("startModelThread", () => {
  it("resolves with the thread's ready message, the thread running under the young-generation cap", async () => {
    const entry = script("ready", `port.postMessage({ type: "ready", echo: data.name }); port.on("message", (m) => port.postMessage(m * 2));`);
    const { worker, ready } = await startModelThread<{ type: "ready"; echo: string }>(entry, { name: "demo" });
    expect(ready).toEqual({ type: "ready", echo: "demo" });
    expect(worker.resourceLimits?.maxYoungGenerationSizeMb).toBe(MODEL_THREAD_YOUNG_GENERATION_MB);
    // The start-up listeners are gone: later messages reach only the caller's own.
    const reply = new Promise((resolve) => worker.on("message", resolve));
    worker.postMessage(21);
    expect(await reply).toBe(42);
    await worker.terminate();
  });

  it("rejects with the thread's own message when it reports fatal", async () => {
    const entry = script("fatal", `port.postMessage({ type: "fatal", message: "sha256 mismatch for prior.onnx" }); setInterval(() => {}, 1000);`);
    await expect(startModelThread(entry, {})).rejects.toThrow("sha256 mismatch for prior.onnx");
  });

  it("rejects when the thread throws or exits before it is ready", async () => {
    await expect(startModelThread(script("throws", `throw new Error("no GPU here");`), {})).rejects.toThrow("no GPU here");
    await expect(startModelThread(script("exits", `process.exit(3);`), {})).rejects.toThrow("exited with code 3");
  });
});
