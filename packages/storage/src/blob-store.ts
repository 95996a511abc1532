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
  /** The URI an object has (whether or not it exists yet). */
  uri(key: string): string;
  /** A time-limited HTTP URL for reading (S3 presigned; file:// for local). */
  signedUrl(key: string, expiresSeconds: number): Promise<string>;
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
