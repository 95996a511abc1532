import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client, CreateBucketCommand, HeadBucketCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { assertSafeKey, BlobNotFoundError, type BlobStore } from "./blob-store.js";

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

export function createS3BlobStore(client: S3Client, bucket: string): BlobStore {
  return {
    async put(key, body, contentType) {
      assertSafeKey(key);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.byteLength }));
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
    uri: (key) => `s3://${bucket}/${key}`,
    signedUrl: (key, expiresSeconds) => getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: Math.min(expiresSeconds, 7 * 24 * 3600) }),
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
