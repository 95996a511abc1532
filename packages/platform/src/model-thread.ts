import { parentPort, Worker, type Transferable } from "node:worker_threads";

/**
 * Young-generation cap for model threads. Their JavaScript is a message loop around onnxruntime
 * calls whose tensors live outside the heap, so a few MB of nursery is plenty. Left to V8, each
 * thread's nursery grows to 16 MB semi-spaces and shrinks again later: in a bare decode loop that
 * moved RSS by 11 MB, by 5.5 MB with this cap. Per-thread memory that stays put is what a pod's
 * memory limit is sized by.
 */
export const MODEL_THREAD_YOUNG_GENERATION_MB = 12;

/** The first message a model thread sends: loaded (`ready`) or not (`fatal`, with why). */
type StartupMessage = { type: "ready" } | { type: "fatal"; message: string };

/**
 * Starts a worker thread that loads models and resolves with it and its `ready` message; rejects
 * with the thread's own message when it reports `fatal` (a sha256 mismatch, REQUIRE_GPU without a
 * GPU) or with the error if it dies first.
 */
export async function startModelThread<Ready extends { type: "ready" }>(entry: URL, workerData: unknown): Promise<{ worker: Worker; ready: Ready }> {
  const worker = new Worker(entry, { workerData, resourceLimits: { maxYoungGenerationSizeMb: MODEL_THREAD_YOUNG_GENERATION_MB } });
  let onError: (err: Error) => void = () => {};
  let onExit: (code: number) => void = () => {};
  let onMessage: (msg: StartupMessage) => void = () => {};
  try {
    const ready = await new Promise<Ready>((resolve, reject) => {
      onError = reject;
      onExit = (code) => reject(new Error(`model thread exited with code ${code} before it was ready`));
      onMessage = (msg) => (msg.type === "ready" ? resolve(msg as Ready) : reject(new Error(msg.message)));
      worker.once("error", onError).once("exit", onExit).once("message", onMessage);
    });
    // Only ours: removeAllListeners would also drop the hooks Node uses to keep the port flowing.
    worker.off("error", onError).off("exit", onExit).off("message", onMessage);
    return { worker, ready };
  } catch (err) {
    await worker.terminate();
    throw err;
  }
}

/** What the pool sends a model thread: run a request, or stop one between model steps. */
export type ToModelThread<Req> = { type: "run"; id: number; request: Req } | { type: "cancel"; id: number };

/** What a model thread sends back: its start-up message, then one answer per request. */
export type FromModelThread<Res, Ready extends { type: "ready" }> =
  Ready | { type: "fatal"; message: string } | { type: "ok"; id: number; result: Res } | { type: "error"; id: number; message: string; aborted: boolean };

/** A request the pool (closing) or its caller (signal) cancelled, and the thread stopped. */
export class ModelRunAbortedError extends Error {
  constructor() {
    super("model run aborted");
    this.name = "ModelRunAbortedError";
  }
}

export interface ModelThreadPoolOptions {
  /** The thread's script; it calls {@link serveModelThread}. */
  entry: URL;
  /** Passed to every thread (model paths, session options). */
  workerData: unknown;
  /** Threads, one model instance each. */
  threads: number;
  /**
   * A thread died after start-up (the GPU failed, the thread ran out of memory). What it held and
   * every later request to it fail; the owner should replace the process.
   */
  onThreadDeath?: (err: Error) => void;
  /** How long close() waits for cancelled runs to stop before it terminates the threads anyway. @default 2000 */
  closeWaitMs?: number;
}

export interface ModelThreadPool<Req, Res, Ready extends { type: "ready" }> {
  /** Thread 0's start-up message (what it loaded); every thread loads the same models. */
  readonly ready: Ready;
  /**
   * Runs `request` on the live thread with the fewest requests in flight. `signal` asks the thread
   * to stop it (between model steps, where the thread's work checks it). `transfer` lists buffers
   * of the request to move instead of copying.
   * @throws ModelRunAbortedError when cancelled; the thread's error message when the work failed.
   */
  run(request: Req, opts?: { signal?: AbortSignal; transfer?: Transferable[] }): Promise<Res>;
  /**
   * Refuses new requests, cancels those in flight, waits until the threads have left their model
   * runs (at most `closeWaitMs`) and then terminates them. Terminating a thread inside an ONNX run
   * aborts the whole process (a native Napi::Error): a drain that handed jobs back leaves their
   * runs going, so they are stopped first. Says how many runs it cancelled and how many had not
   * stopped when the wait ran out.
   */
  close(): Promise<{ cancelled: number; unfinished: number }>;
}

interface Pending<Res> {
  resolve: (r: Res) => void;
  reject: (e: Error) => void;
  slot: Slot;
}

interface Slot {
  worker: Worker;
  inflight: number;
  /** Why the thread is gone, once it is. */
  dead?: Error;
}

/**
 * Model threads that serve requests of one kind (prior samples, decodes): each thread loads the
 * models once (`startModelThread`), and a request goes to the live thread with the fewest in
 * flight. Resolves once every thread has loaded and verified its models; one that fails to load
 * rejects with its message.
 */
export async function createModelThreadPool<Req, Res, Ready extends { type: "ready" } = { type: "ready" }>(
  o: ModelThreadPoolOptions,
): Promise<ModelThreadPool<Req, Res, Ready>> {
  if (o.threads < 1) throw new RangeError(`a model thread pool needs at least one thread, got ${o.threads}`);
  const pending = new Map<number, Pending<Res>>();
  let nextId = 1;
  let closing = false;
  const started = await Promise.all(Array.from({ length: o.threads }, () => startModelThread<Ready>(o.entry, o.workerData)));
  const pool: Slot[] = started.map(({ worker }) => {
    const slot: Slot = { worker, inflight: 0 };
    worker.on("message", (msg: FromModelThread<Res, Ready>) => {
      if (msg.type !== "ok" && msg.type !== "error") return;
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      slot.inflight--;
      if (msg.type === "ok") p.resolve(msg.result);
      else p.reject(msg.aborted ? new ModelRunAbortedError() : new Error(msg.message));
    });
    // A dead thread fails what it held (the stage retries those jobs) and every later request to
    // it, instead of leaving them waiting forever; the owner is told so it can replace the process.
    const died = (err: Error) => {
      if (slot.dead) return;
      slot.dead = err;
      for (const [id, p] of pending) {
        if (p.slot !== slot) continue;
        pending.delete(id);
        p.reject(err);
      }
      slot.inflight = 0;
      if (!closing) o.onThreadDeath?.(err);
    };
    worker.on("error", died);
    worker.on("exit", (code) => died(new Error(`model thread exited with code ${code}`)));
    return slot;
  });

  return {
    ready: started[0]!.ready,
    run(request, opts = {}) {
      if (closing) return Promise.reject(new Error("model threads are closing"));
      const live = pool.filter((s) => !s.dead);
      if (live.length === 0) return Promise.reject(new Error(`every model thread is dead: ${pool[0]!.dead!.message}`));
      if (opts.signal?.aborted) return Promise.reject(new ModelRunAbortedError());
      const slot = live.reduce((a, b) => (b.inflight < a.inflight ? b : a));
      const id = nextId++;
      slot.inflight++;
      return new Promise<Res>((resolve, reject) => {
        pending.set(id, { resolve, reject, slot });
        opts.signal?.addEventListener("abort", () => pending.has(id) && slot.worker.postMessage({ type: "cancel", id } satisfies ToModelThread<Req>), {
          once: true,
        });
        slot.worker.postMessage({ type: "run", id, request } satisfies ToModelThread<Req>, opts.transfer ?? []);
      });
    },
    async close() {
      closing = true;
      const cancelled = pending.size;
      for (const [id, p] of pending) if (!p.slot.dead) p.slot.worker.postMessage({ type: "cancel", id } satisfies ToModelThread<Req>);
      const deadline = Date.now() + (o.closeWaitMs ?? 2000);
      while (pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const unfinished = pending.size;
      await Promise.all(pool.map((s) => s.worker.terminate()));
      return { cancelled, unfinished };
    },
  };
}

/** What a model thread's script gives {@link serveModelThread}: its loaded models' work. */
export interface ModelThreadWork<Req, Res> {
  /** Does one request; checks `signal` between model steps and throws once it is aborted. */
  run(request: Req, signal: AbortSignal): Promise<Res>;
  /** Buffers of a result to move to the main thread instead of copying. */
  transfer?(result: Res): Transferable[];
}

/**
 * The thread side of {@link createModelThreadPool}: loads the models (`load`; a failure is sent
 * as `fatal` with its message), reports `ready` with what `load` returned, then serves requests
 * until the pool terminates the thread.
 */
export function serveModelThread<Req, Res, Ready extends { type: "ready" }>(
  load: () => Promise<{ ready: Omit<Ready, "type">; work: ModelThreadWork<Req, Res> }>,
): void {
  const port = parentPort;
  if (!port) throw new Error("serveModelThread runs inside a worker thread");
  const running = new Map<number, AbortController>();
  const send = (msg: FromModelThread<Res, Ready>, transfer: Transferable[] = []) => port.postMessage(msg, transfer);
  void load().then(
    ({ ready, work }) => {
      port.on("message", (msg: ToModelThread<Req>) => {
        if (msg.type === "cancel") {
          running.get(msg.id)?.abort();
          return;
        }
        const abort = new AbortController();
        running.set(msg.id, abort);
        // Through a promise, so that work throwing before its first await is answered too.
        Promise.resolve()
          .then(() => work.run(msg.request, abort.signal))
          .then(
            (result) => send({ type: "ok", id: msg.id, result }, work.transfer?.(result) ?? []),
            (err: Error) => send({ type: "error", id: msg.id, message: err.message, aborted: abort.signal.aborted }),
          )
          .finally(() => running.delete(msg.id));
      });
      send({ ...ready, type: "ready" } as Ready);
    },
    (err: Error) => send({ type: "fatal", message: err.message }),
  );
}
