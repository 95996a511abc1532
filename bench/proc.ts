import { readdirSync, readFileSync } from "node:fs";

/** User + system CPU seconds from a /proc stat file (USER_HZ = 100); NaN when it cannot be read. */
function statCpuSeconds(path: string): number {
  try {
    const stat = readFileSync(path, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc (USER_HZ = 100); NaN without /proc. */
export function cpuSeconds(pid: number | undefined): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU seconds a process's main thread (the event loop of a Node process) has used so far; NaN without /proc. */
export function mainThreadCpuSeconds(pid: number | undefined): number {
  return statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
}

/** CPU seconds used so far by each thread of a process, by thread id (empty without /proc). */
export function threadCpuSeconds(pid: number | undefined): Map<number, number> {
  const out = new Map<number, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) out.set(Number(tid), statCpuSeconds(`/proc/${pid}/task/${tid}/stat`));
  } catch {
    // no /proc: no figures
  }
  return out;
}

/**
 * CPU seconds a Node process used between two `threadCpuSeconds` readings, split into its main
 * thread (the event loop), its busiest other thread (a service's model thread) and the rest (GC
 * helpers, libuv, onnxruntime's own threads).
 */
export function splitThreadCpu(pid: number | undefined, before: Map<number, number>, after: Map<number, number>) {
  const used = [...after].map(([tid, s]) => ({ tid, s: s - (before.get(tid) ?? 0) }));
  const others = used.filter((t) => t.tid !== pid).map((t) => t.s);
  const busiest = others.length > 0 ? Math.max(...others) : 0;
  return { main: used.find((t) => t.tid === pid)?.s ?? Number.NaN, busiest, rest: others.reduce((a, b) => a + b, 0) - busiest };
}
