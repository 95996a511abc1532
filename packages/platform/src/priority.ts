import { readdirSync } from "node:fs";
import { setPriority } from "node:os";

/**
 * Lowers the CPU priority of this whole process to `nice` (0–19). On Linux the nice value belongs
 * to each thread, not the process, so every thread already running (V8's and libuv's helpers) is
 * set, and threads started later (worker threads, onnxruntime's pools) inherit it from their
 * creator. Lowering needs no privilege. Returns the threads set; 0 where /proc is missing (then
 * only the calling thread changes).
 */
export function lowerProcessPriority(nice: number): number {
  if (!Number.isInteger(nice) || nice < 0 || nice > 19) throw new RangeError(`nice must be an integer 0–19, got ${nice}`);
  let tids: number[];
  try {
    tids = readdirSync("/proc/self/task").map(Number);
  } catch {
    setPriority(nice);
    return 0;
  }
  for (const tid of tids) {
    try {
      setPriority(tid, nice);
    } catch {
      // A thread that exited since the listing.
    }
  }
  return tids.length;
}
