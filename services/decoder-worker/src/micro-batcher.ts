/**
 * A dynamic batcher in the manner of Triton's: requests queue; a batch runs when it holds
 * `maxBatch` items or when its oldest request has waited `maxWaitMs`, and while every executor is
 * busy the queue keeps filling, so load itself grows the batches. Each request keeps its own
 * promise: one batch execution settles many requests, each resolved or rejected on its own.
 *
 * Pure: no model, no Redis, time only through the injected clock, so every path is unit-tested
 * with a fake clock.
 */

export interface BatchClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: BatchClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** What one execution did, for metrics (Triton: inferences vs executions). */
export interface ExecutionStats {
  /** Requests in the batch. */
  readonly requests: number;
  /** Items (images) in the batch: the "inferences" of the average-batch metric. */
  readonly items: number;
  /** How long each request waited in the queue (ms). */
  readonly queueMs: readonly number[];
  /** True when the batch failed and its requests are being run one by one. */
  readonly split: boolean;
}

export interface MicroBatcherOptions<Req, Res> {
  /** Most items in one execution; a single larger request still runs (alone). */
  readonly maxBatch: number;
  /** Longest a request waits for company once an executor is free (Triton's max queue delay). */
  readonly maxWaitMs: number;
  /** Executions in flight at once (model instances). @default 1 */
  readonly concurrency?: number;
  /**
   * Full batches handed over beyond `concurrency` while every instance is busy: they wait at the
   * instance (a decoder thread runs its calls in turn) and start the moment the running one ends,
   * instead of after the event loop has settled that batch and formed the next. Partial batches
   * never go ahead: they keep gathering company until an instance is free. @default 0
   */
  readonly ahead?: number;
  /** Items a request holds. @default 1 */
  readonly size?: (req: Req) => number;
  /** Runs one batch; must return one result per request, in order. */
  readonly execute: (reqs: readonly Req[]) => Promise<readonly Res[]>;
  readonly onExecution?: (stats: ExecutionStats) => void;
  readonly clock?: BatchClock;
}

export interface MicroBatcher<Req, Res> {
  submit(req: Req): Promise<Res>;
  /** Requests waiting for an execution. */
  readonly queued: number;
  /** Executions running now. */
  readonly running: number;
}

interface Pending<Req, Res> {
  readonly req: Req;
  readonly size: number;
  readonly at: number;
  readonly resolve: (r: Res) => void;
  readonly reject: (e: unknown) => void;
}

export function createMicroBatcher<Req, Res>(opts: MicroBatcherOptions<Req, Res>): MicroBatcher<Req, Res> {
  const { maxBatch, maxWaitMs } = opts;
  const concurrency = opts.concurrency ?? 1;
  const ahead = opts.ahead ?? 0;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  if (!(maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be ≥ 0, got ${maxWaitMs}`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  if (!Number.isInteger(ahead) || ahead < 0) throw new RangeError(`ahead must be a non-negative integer, got ${ahead}`);
  const clock = opts.clock ?? realClock;
  const sizeOf = opts.size ?? (() => 1);
  const queue: Pending<Req, Res>[] = [];
  let queuedItems = 0;
  let running = 0;
  let timer: unknown;

  /** Takes requests in arrival order while they fit; the first one always goes. */
  function take(): Pending<Req, Res>[] {
    const batch: Pending<Req, Res>[] = [];
    let items = 0;
    while (queue.length > 0 && (batch.length === 0 || items + queue[0]!.size <= maxBatch)) {
      const p = queue.shift()!;
      items += p.size;
      queuedItems -= p.size;
      batch.push(p);
    }
    return batch;
  }

  function pump(): void {
    if (timer !== undefined) {
      clock.clearTimeout(timer);
      timer = undefined;
    }
    while (running < concurrency && queue.length > 0) {
      const waited = clock.now() - queue[0]!.at;
      if (queuedItems < maxBatch && waited < maxWaitMs) {
        // Not full and the oldest may still wait: come back when its delay runs out.
        timer = clock.setTimeout(() => {
          timer = undefined;
          pump();
        }, maxWaitMs - waited);
        return;
      }
      void run(take());
    }
    // Every instance busy: only full batches go ahead; a partial one waits for a free instance.
    while (running < concurrency + ahead && queuedItems >= maxBatch) void run(take());
  }

  async function run(batch: Pending<Req, Res>[]): Promise<void> {
    running++;
    const now = clock.now();
    const stats = { requests: batch.length, items: batch.reduce((n, p) => n + p.size, 0), queueMs: batch.map((p) => now - p.at) };
    let results: readonly Res[];
    try {
      results = await execute(batch.map((p) => p.req));
    } catch (err) {
      opts.onExecution?.({ ...stats, split: batch.length > 1 });
      try {
        if (batch.length === 1) batch[0]!.reject(err);
        // One bad request must not fail its neighbours: rerun each alone, so each is settled by
        // its own outcome (and retried or failed by its own queue job).
        else await settleOneByOne(batch);
      } finally {
        running--;
        pump();
      }
      return;
    }
    // Start the next batch before settling this one: the requests' continuations (PNG encoding,
    // uploads) would otherwise run first and leave the model idle meanwhile.
    running--;
    pump();
    opts.onExecution?.({ ...stats, split: false });
    batch.forEach((p, i) => p.resolve(results[i]!));
  }

  async function settleOneByOne(batch: Pending<Req, Res>[]): Promise<void> {
    for (const p of batch) {
      try {
        const [r] = await execute([p.req]);
        opts.onExecution?.({ requests: 1, items: p.size, queueMs: [0], split: false });
        p.resolve(r!);
      } catch (err) {
        opts.onExecution?.({ requests: 1, items: p.size, queueMs: [0], split: false });
        p.reject(err);
      }
    }
  }

  async function execute(reqs: Req[]): Promise<readonly Res[]> {
    const results = await opts.execute(reqs);
    if (results.length !== reqs.length) throw new Error(`batch execution returned ${results.length} results for ${reqs.length} requests`);
    return results;
  }

  return {
    submit(req) {
      const size = sizeOf(req);
      if (!Number.isInteger(size) || size < 1) return Promise.reject(new RangeError(`request size must be a positive integer, got ${size}`));
      return new Promise<Res>((resolve, reject) => {
        queue.push({ req, size, at: clock.now(), resolve, reject });
        queuedItems += size;
        pump();
      });
    },
    get queued() {
      return queue.length;
    },
    get running() {
      return running;
    },
  };
}
