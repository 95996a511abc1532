/**
 * Usage writes coalesced per tenant: the decoder records usage twice per job (its images, bytes
 * and embeddings when it succeeds; its stage seconds when its stage job ends), and each record is
 * a Redis pipeline whose construction alone costs the event loop more than the write. Deltas of
 * one tenant that arrive within `windowMs` are summed and written once. Usage stays best-effort
 * and off the job's path as before; a graceful shutdown writes what is pending (`flush`), a crash
 * loses at most the last window's counts.
 */
import type { UsageCounter } from "./usage.js";

type Delta = Partial<Record<UsageCounter, number>>;

export interface UsageSink {
  add(tenant: string, delta: Delta): Promise<void>;
}

export interface CoalescedUsage extends UsageSink {
  /** Writes every pending delta now (shutdown); resolves when the writes have settled. */
  flush(): Promise<void>;
}

interface Pending {
  delta: Delta;
  waiters: { resolve: () => void; reject: (err: unknown) => void }[];
}

export function coalesceUsage(
  sink: UsageSink,
  opts: { windowMs: number; setTimeout?: (fn: () => void, ms: number) => unknown; clearTimeout?: (h: unknown) => void },
): CoalescedUsage {
  const schedule = opts.setTimeout ?? ((fn, ms) => setTimeout(fn, ms).unref());
  const cancel = opts.clearTimeout ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  let pending = new Map<string, Pending>();
  let timer: unknown;

  async function flush(): Promise<void> {
    if (timer !== undefined) cancel(timer);
    timer = undefined;
    const due = pending;
    pending = new Map();
    await Promise.all(
      [...due].map(([tenant, p]) =>
        sink.add(tenant, p.delta).then(
          () => p.waiters.forEach((w) => w.resolve()),
          (err: unknown) => p.waiters.forEach((w) => w.reject(err)),
        ),
      ),
    );
  }

  return {
    add(tenant, delta) {
      return new Promise<void>((resolve, reject) => {
        let p = pending.get(tenant);
        if (!p) pending.set(tenant, (p = { delta: {}, waiters: [] }));
        for (const [c, v] of Object.entries(delta) as [UsageCounter, number][]) if (v) p.delta[c] = (p.delta[c] ?? 0) + v;
        p.waiters.push({ resolve, reject });
        timer ??= schedule(() => void flush(), opts.windowMs);
      });
    },
    flush,
  };
}
