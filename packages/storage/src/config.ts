import { z } from "zod";
import type { BlobStore } from "./blob-store.js";
import { createLocalBlobStore } from "./local.js";
import { createS3BlobStore, createS3Client, ensureBucket } from "./s3.js";
import { createS3Put } from "./s3-put.js";

/** Storage settings shared by every service that reads or writes outputs. */
export const storageConfigSchema = z.object({
  /** Bucket for outputs; required unless BLOB_DIR is set. */
  S3_BUCKET: z.string().default(""),
  /** S3-compatible endpoint (e.g. http://127.0.0.1:4568); empty = AWS S3. */
  S3_ENDPOINT: z.string().default(""),
  /** S3 region. */
  S3_REGION: z.string().default("us-east-1"),
  /** Create the bucket at start if missing (dev/test only). */
  S3_CREATE_BUCKET: z.enum(["true", "false"]).default("false"),
  /** Write outputs to this local directory instead of S3 (dev only). */
  BLOB_DIR: z.string().default(""),
});
export type StorageConfig = z.infer<typeof storageConfigSchema>;

/**
 * The BlobStore a service's config asks for. Credentials come from the AWS SDK's usual chain.
 * `leanPuts`: whole-object PUTs bypass the SDK (`createS3Put`), for services that write an object
 * or two per image; everything else still goes through the SDK.
 */
export async function createBlobStore(c: StorageConfig, opts: { leanPuts?: boolean } = {}): Promise<BlobStore> {
  if (c.BLOB_DIR) return createLocalBlobStore(c.BLOB_DIR);
  if (!c.S3_BUCKET) throw new Error("set S3_BUCKET (or BLOB_DIR for local files)");
  const client = createS3Client({ bucket: c.S3_BUCKET, endpoint: c.S3_ENDPOINT || undefined, region: c.S3_REGION });
  if (c.S3_CREATE_BUCKET === "true") await ensureBucket(client, c.S3_BUCKET);
  const store = createS3BlobStore(client, c.S3_BUCKET);
  if (!opts.leanPuts) return store;
  const lean = createS3Put({ bucket: c.S3_BUCKET, endpoint: c.S3_ENDPOINT || undefined, region: c.S3_REGION, credentials: () => client.config.credentials() });
  return { ...store, put: lean.put };
}
