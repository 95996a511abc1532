/** The storage role every stage uses: deterministic keys, whole-object reads and writes. */
export interface BlobStore {
  /** Writes (or overwrites) an object; returns its URI (`s3://bucket/key` or `file://...`). */
  put(key: string, body: Uint8Array, contentType: string): Promise<string>;
  /**
   * Writes an object from a stream of chunks without holding it whole (S3: a multipart upload,
   * one part in memory at a time), for objects of any size such as a batch's result manifest.
   * The object appears only once complete; a failure leaves no partial object.
   */
  putStream(key: string, chunks: AsyncIterable<Uint8Array>, contentType: string): Promise<string>;
  /** Reads a whole object; throws BlobNotFoundError when it is missing. */
  get(key: string): Promise<Uint8Array>;
  /**
   * Reads an object as a stream of chunks, so an object of any size (a 10M-user manifest) never
   * sits in memory whole. Throws BlobNotFoundError when it is missing, and BlobTooLargeError
   * (after closing the download) when it is bigger than `maxBytes`, before any byte is read.
   * Stopping the iteration early (break, return, a throw) closes the download.
   */
  getStream(key: string, opts?: { maxBytes?: number }): Promise<BlobStream>;
  /** The URI an object has (whether or not it exists yet). */
  uri(key: string): string;
  /** A time-limited HTTP URL for reading (S3 presigned; file:// for local). */
  signedUrl(key: string, expiresSeconds: number): Promise<string>;
  /**
   * The objects under a key prefix, in key order, page by page (S3: ListObjectsV2, 1,000 per
   * request), so a prefix of any size streams without being held whole. `after` resumes a listing
   * after that key (exclusive), which lets a sweeper continue where it stopped.
   */
  list(prefix: string, opts?: { after?: string }): AsyncIterable<BlobInfo>;
  /**
   * Deletes objects by key, in requests of up to 1,000 (S3: DeleteObjects). Idempotent: a key
   * that does not exist counts as deleted. Throws when the store refuses any key, after trying all.
   */
  deleteMany(keys: readonly string[]): Promise<{ deleted: number }>;
}

/** One listed object. */
export interface BlobInfo {
  key: string;
  size: number;
  lastModified: Date;
}

/** How many keys one S3 DeleteObjects request may carry. */
export const DELETE_BATCH = 1000;

/** Splits a list into consecutive slices of at most `size` (delete requests, listing pages). */
export function slices<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let at = 0; at < items.length; at += size) out.push(items.slice(at, at + size));
  return out;
}

/** An object being read: its size (known up front) and its bytes, chunk by chunk. */
export interface BlobStream {
  size: number;
  chunks: AsyncIterable<Uint8Array>;
}

export class BlobTooLargeError extends Error {
  constructor(
    readonly key: string,
    readonly size: number,
    readonly maxBytes: number,
  ) {
    super(`object ${key} is ${size} bytes, over the ${maxBytes}-byte limit`);
    this.name = "BlobTooLargeError";
  }
}

/**
 * Passes a readable's chunks through, and stops (closing the readable) once more than `maxBytes`
 * arrive: an object can grow, or a store can omit its length, after the size was checked.
 */
export async function* capped(key: string, source: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.byteLength;
    if (seen > maxBytes) throw new BlobTooLargeError(key, seen, maxBytes);
    yield chunk;
  }
}

export class BlobNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`object not found: ${key}`);
    this.name = "BlobNotFoundError";
  }
}

/** Rejects keys that could escape a tenant prefix or a local root. */
export function assertSafeKey(key: string): void {
  if (!key || key.startsWith("/") || key.split("/").some((part) => part === ".." || part === "." || part === "") || /[\0\\]/.test(key)) {
    throw new Error(`unsafe object key: ${JSON.stringify(key.slice(0, 200))}`);
  }
}
