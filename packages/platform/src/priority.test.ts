import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { lowerProcessPriority } from "./priority.js";

describe("lowerProcessPriority", () => {
  it("rejects values outside 0–19", () => {
    expect(() => lowerProcessPriority(-1)).toThrow(/0–19/);
    expect(() => lowerProcessPriority(20)).toThrow(/0–19/);
    expect(() => lowerProcessPriority(2.5)).toThrow(/0–19/);
  });

  // In a fresh Node process (vitest's own must keep its priority): lower it, start a worker thread
  // afterwards, then read the nice value of every thread from /proc (field 19 of stat).
  it("sets every thread of the process, and threads started later inherit it", () => {
    const script = `
      import { readdirSync, readFileSync } from "node:fs";
      import { Worker } from "node:worker_threads";
      import { lowerProcessPriority } from ${JSON.stringify(new URL("./priority.ts", import.meta.url).href)};
      const nice = (tid) => { const s = readFileSync("/proc/self/task/" + tid + "/stat", "utf8"); return Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[16]); };
      const set = lowerProcessPriority(7);
      const w = new Worker("setTimeout(() => {}, 500)", { eval: true });
      await new Promise((r) => w.once("online", r));
      const all = readdirSync("/proc/self/task").map(nice);
      await w.terminate();
      console.log(JSON.stringify({ set, all }));
    `;
    const out = JSON.parse(execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" })) as {
      set: number;
      all: number[];
    };
    expect(out.set).toBeGreaterThan(1);
    expect(out.all.length).toBeGreaterThan(out.set); // the worker's threads came later
    expect(new Set(out.all)).toEqual(new Set([7]));
  });
});
