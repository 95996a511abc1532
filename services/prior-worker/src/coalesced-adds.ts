import type { JobKind, JobPayload, JobSink } from "@rebeca/contracts";

/*
 * The jobs of a merged sampler call finish together and each hands its job to the decode queue.
 * One `add` is one Redis round trip and one socket write on the worker's main thread; adds of one
 * kind made in the same turn of the event loop go as one `addBulk` instead.
 */

interface Pending {
  payload: unknown;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * A sink whose `add`s (without overrides) are gathered until the event loop's next check phase and
 * sent as one `addBulk` per kind. If the bulk fails, each job is added alone, so one bad payload
 * fails only its own `add`. Adds with overrides go straight through.
 */
export function coalesceAdds(sink: JobSink): Pick<JobSink, "add"> {
  const pending = new Map<JobKind, Pending[]>();
  let scheduled = false;

  async function flush(kind: JobKind, batch: Pending[]) {
    try {
      if (batch.length === 1) await sink.add(kind, batch[0]!.payload as JobPayload<typeof kind>);
      else await sink.addBulk(kind, batch.map((p) => p.payload) as JobPayload<typeof kind>[]);
      for (const p of batch) p.resolve();
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err as Error);
      // Added alone, each succeeds or fails on its own (a repeat add of a job id is ignored).
      await Promise.all(batch.map((p) => sink.add(kind, p.payload as JobPayload<typeof kind>).then(p.resolve, p.reject)));
    }
  }

  return {
    add(kind, payload, overrides) {
      if (overrides) return sink.add(kind, payload, overrides);
      return new Promise<void>((resolve, reject) => {
        const list = pending.get(kind);
        if (list) list.push({ payload, resolve, reject });
        else pending.set(kind, [{ payload, resolve, reject }]);
        if (scheduled) return;
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          const batches = [...pending];
          pending.clear();
          for (const [k, batch] of batches) void flush(k, batch);
        });
      });
    },
  };
}
