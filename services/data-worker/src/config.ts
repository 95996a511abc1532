/** The data worker's configuration, parsed in main with loadConfig. */
import { baseConfigSchema, env } from "@rebeca/platform";
import { storageConfigSchema } from "@rebeca/storage";
import { z } from "zod";

export const dataWorkerConfigSchema = baseConfigSchema.merge(storageConfigSchema).extend({
  /** Users erased per step: one index lookup and one scan of the tenant's event stream each. */
  ERASE_CHUNK_USERS: env.int(1000).pipe(z.number().int().min(1).max(100_000)),
  /** Erasures run at once by this process. */
  ERASE_CONCURRENCY: env.int(2).pipe(z.number().int().min(1).max(64)),
  /** Object-key prefix of the model registry in S3_BUCKET (as the other services' REGISTRY_PREFIX): erasure blanks users in its versions. */
  REGISTRY_PREFIX: env.str("registry"),
  /** BullMQ lock of a running erasure, ms; a killed worker's erasure resumes elsewhere within about twice this. */
  ERASE_LOCK_MS: env.int(30_000).pipe(z.number().int().min(1000)),
});
export type DataWorkerConfig = z.infer<typeof dataWorkerConfigSchema>;
