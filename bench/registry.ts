import type { Redis } from "ioredis";
import type { Stack } from "@rebeca/devstack";
import type { RegistryDeps } from "@rebeca/registry";
import { createS3BlobStore, createS3Client } from "@rebeca/storage";

/** Publishing into a bench stack's model registry (its s3rver bucket and Redis, the services' default prefix). */
export function registryOf(stack: Stack, redis: Redis): RegistryDeps {
  return {
    blobs: createS3BlobStore(
      createS3Client({ bucket: stack.s3.bucket, endpoint: stack.s3.endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }),
      stack.s3.bucket,
    ),
    redis,
    objectPrefix: "registry",
    redisPrefix: stack.prefix,
  };
}
