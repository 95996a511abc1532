/**
 * A decode shard's work in chunks with recorded progress (spot-safe shards): each chunk's outputs
 * are recorded once they are stored, so a worker that dies mid-shard (a preempted spot node) costs
 * its successor at most the one chunk in flight. Pure control flow: decoding, storing and the
 * progress record are the caller's.
 */

/** Where a shard's finished chunks are kept (Redis in production: `createShardProgress`). */
export interface ShardProgress<T> {
  /** Outputs of the chunks finished so far, keyed by the chunk's first image. */
  finished(): Promise<Map<number, T[]>>;
  /** Records a stored chunk's outputs (one per image, in order) starting at image `start`. */
  record(start: number, outputs: T[]): Promise<void>;
}

/** Thrown between chunks when `shouldStop` says so: the job goes back and a successor resumes. */
export class ShardStoppedError extends Error {
  constructor(
    readonly doneImages: number,
    reason: string,
  ) {
    super(`shard stopped after ${doneImages} images: ${reason}`);
    this.name = "ShardStoppedError";
  }
}

export interface ChunkRun<T> {
  /** Images in the shard. */
  total: number;
  /** Images per chunk. */
  chunkImages: number;
  progress: ShardProgress<T>;
  /**
   * Decodes and stores images [start, start + count); one output per image, or `null` when the
   * chunk found it must not start after all (a deadline passed while it waited for its turn).
   */
  run: (start: number, count: number) => Promise<T[] | null>;
  /** Asked before each chunk; a reason stops the shard there and hands it back (drain). */
  shouldStop?: () => string | undefined;
  /** Asked before each chunk; true ends the shard there, keeping what is done (a deadline). */
  endEarly?: () => boolean;
}

/** The shard's outputs in image order, and how many images were taken from the record. */
export interface ChunkResult<T> {
  /** All `total` outputs, or fewer when the shard ended early. */
  outputs: T[];
  resumedImages: number;
  chunksRun: number;
}

/**
 * Runs the shard's chunks in order, starting after the longest recorded prefix. Chunks are keyed
 * by their first image, so a successor with another chunk size still resumes where the record ends.
 */
export async function runChunks<T>(c: ChunkRun<T>): Promise<ChunkResult<T>> {
  if (!(c.chunkImages >= 1)) throw new Error(`chunkImages must be at least 1, got ${c.chunkImages}`);
  const finished = await c.progress.finished();
  const outputs: T[] = [];
  while (outputs.length < c.total) {
    const recorded = finished.get(outputs.length);
    if (!recorded || recorded.length === 0) break;
    outputs.push(...recorded.slice(0, c.total - outputs.length));
  }
  const resumedImages = outputs.length;
  let chunksRun = 0;
  while (outputs.length < c.total) {
    const reason = c.shouldStop?.();
    if (reason) throw new ShardStoppedError(outputs.length, reason);
    if (c.endEarly?.()) break;
    const start = outputs.length;
    const count = Math.min(c.chunkImages, c.total - start);
    const out = await c.run(start, count);
    if (out === null) break;
    if (out.length !== count) throw new Error(`chunk at ${start} gave ${out.length} outputs for ${count} images`);
    await c.progress.record(start, out);
    outputs.push(...out);
    chunksRun++;
  }
  return { outputs, resumedImages, chunksRun };
}
