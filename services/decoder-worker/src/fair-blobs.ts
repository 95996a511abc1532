import type { FairLanes } from "@rebeca/platform";
import type { BlobStore } from "@rebeca/storage";

/**
 * Uploads through fair lanes: the object store is shared like the model, so one tenant's
 * thousands of batch images cannot queue ahead of another tenant's single job.
 */
export function fairUploads(blobs: BlobStore, lanes: FairLanes): (tenant: string) => BlobStore {
  return (tenant) => ({
    ...blobs,
    async put(key, body, contentType) {
      const release = await lanes.acquire(tenant, 1);
      try {
        return await blobs.put(key, body, contentType);
      } finally {
        release();
      }
    },
  });
}
