import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { Readable } from "node:stream";
import { assertSafeKey, BlobNotFoundError, BlobTooLargeError, capped, DELETE_BATCH, slices, type BlobStore } from "./blob-store.js";
import { regroup } from "./parts.js";

/** S3's smallest part but the last is 5 MiB; 8 MiB keeps the part count low (max 10,000). */
export const DEFAULT_PART_BYTES = 8 * 1024 * 1024;

export interface S3Options {
  bucket: string;
  /** Custom endpoint for S3-compatible servers (e.g. http://127.0.0.1:4568); empty = AWS. */
  endpoint?: string;
  region?: string;
  /** Path-style addressing, needed by most S3-compatible servers. @default true when endpoint is set */
  forcePathStyle?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Milliseconds before a request is abandoned (and retried by its stage). @default 30000 */
  requestTimeoutMs?: number;
}

/**
 * The S3 client with checksums only when the operation requires them: with the SDK's defaults
 * (always) some S3-compatible servers store the aws-chunked framing as the object's bytes.
 */
export function createS3Client(o: S3Options): S3Client {
  return new S3Client({
    region: o.region ?? "us-east-1",
    ...(o.endpoint ? { endpoint: o.endpoint, forcePathStyle: o.forcePathStyle ?? true } : {}),
    ...(o.accessKeyId && o.secretAccessKey ? { credentials: { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey } } : {}),
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // Without timeouts a request on a connection the store dropped hangs until the stage's lock
    // expires; with them it fails and the stage retries with backoff.
    requestHandler: { connectionTimeout: 3_000, requestTimeout: o.requestTimeoutMs ?? 30_000 },
  });
}

export function createS3BlobStore(client: S3Client, bucket: string, opts: { partBytes?: number } = {}): BlobStore {
  const partBytes = opts.partBytes ?? DEFAULT_PART_BYTES;
  const put = async (key: string, body: Uint8Array, contentType: string) => {
    assertSafeKey(key);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.byteLength }));
    return `s3://${bucket}/${key}`;
  };
  return {
    put,
    async putStream(key, chunks, contentType) {
      assertSafeKey(key);
      const parts = regroup(chunks, partBytes)[Symbol.asyncIterator]();
      const first = await parts.next();
      const second = first.done ? first : await parts.next();
      // Up to one part: a plain PUT (also for an empty object, which multipart cannot write).
      if (second.done) return put(key, first.done ? new Uint8Array(0) : first.value, contentType);
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: contentType }));
      try {
        const etags: { ETag: string; PartNumber: number }[] = [];
        const upload = async (body: Uint8Array) => {
          const PartNumber = etags.length + 1;
          const out = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber, Body: body, ContentLength: body.byteLength }));
          etags.push({ ETag: out.ETag!, PartNumber });
        };
        await upload(first.value!);
        await upload(second.value);
        for (let p = await parts.next(); !p.done; p = await parts.next()) await upload(p.value);
        await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: etags } }));
      } catch (err) {
        // Parts of an abandoned upload are billed until aborted (and a bucket lifecycle rule).
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => {});
        throw err;
      }
      return `s3://${bucket}/${key}`;
    },
    async get(key) {
      assertSafeKey(key);
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return await out.Body!.transformToByteArray();
      } catch (err) {
        if (err instanceof NoSuchKey || (err as { name?: string }).name === "NoSuchKey") throw new BlobNotFoundError(key);
        throw err;
      }
    },
    async getStream(key, opts = {}) {
      assertSafeKey(key);
      const maxBytes = opts.maxBytes ?? Infinity;
      let out;
      try {
        out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      } catch (err) {
        if (err instanceof NoSuchKey || (err as { name?: string }).name === "NoSuchKey") throw new BlobNotFoundError(key);
        throw err;
      }
      // In Node the body is the HTTP response itself; nothing of it is buffered until it is read.
      const body = out.Body as Readable;
      const size = out.ContentLength ?? 0;
      if (size > maxBytes) {
        // Destroying the response aborts the download rather than draining hundreds of MB.
        body.destroy();
        throw new BlobTooLargeError(key, size, maxBytes);
      }
      return { size, chunks: capped(key, body as AsyncIterable<Uint8Array>, maxBytes) };
    },
    uri: (key) => `s3://${bucket}/${key}`,
    signedUrl: (key, expiresSeconds) =>
      getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: Math.min(expiresSeconds, 7 * 24 * 3600) }),
    async *list(prefix, opts = {}) {
      let ContinuationToken: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken, ...(ContinuationToken ? {} : { StartAfter: opts.after }) }),
        );
        for (const o of page.Contents ?? []) yield { key: o.Key!, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) };
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },
    async deleteMany(keys) {
      keys.forEach(assertSafeKey);
      const refused: string[] = [];
      for (const batch of slices(keys, DELETE_BATCH)) {
        const out = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
        for (const e of out.Errors ?? []) refused.push(`${e.Key}: ${e.Code ?? "error"}`);
      }
      if (refused.length) throw new Error(`S3 refused to delete ${refused.length} object(s): ${refused.slice(0, 5).join("; ")}`);
      return { deleted: keys.length };
    },
  };
}

/** Creates the bucket if it does not exist (dev and test setups; production buckets are provisioned). */
export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  }
}

/** Splits `s3://bucket/key`. */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: m[1]!, key: m[2]! };
}
