/**
 * Redis keys of user data management. They carry the queue prefix (and its hash tag), like every
 * other Rebeca key, so a script touching several stays in one Redis Cluster slot.
 */
export function userDataKeys(prefix: string) {
  return {
    /** Set of a user's job ids (added at CreateJob, before the job is stored). */
    userJobs: (tenant: string, userId: string) => `${prefix}:ujobs:${tenant}:${userId}`,
    /** Set of a user's batch outputs, `batchId/position/shard` (added where a shard's outputs are recorded). */
    userBatchOutputs: (tenant: string, userId: string) => `${prefix}:ubatch:${tenant}:${userId}`,
    /** Hash of a tenant's erased users: user id → what their later requests get (reject | population). */
    erased: (tenant: string) => `${prefix}:erased:${tenant}`,
    /** Hash of one erasure: state, counts, cursor. */
    erasure: (erasureId: string) => `${prefix}:erasure:${erasureId}`,
    /** List of the user ids one erasure covers, in order (the cursor indexes it). */
    erasureUsers: (erasureId: string) => `${prefix}:erasure-users:${erasureId}`,
    /** Set of the endpoints one erasure must tell to delete their copies: JSON `[url, kind, id]` per erased job or batch with a callback URL. */
    erasureRecalls: (erasureId: string) => `${prefix}:erasure-recalls:${erasureId}`,
    /** DeleteUserData idempotency: request id → erasure id. */
    erasureRequest: (tenant: string, requestId: string) => `${prefix}:ereq:${tenant}:${requestId}`,
    /** Hash of one tenant's usage on one day (UTC): counter → value. */
    usage: (tenant: string, day: string) => `${prefix}:usage:${tenant}:${day}`,
    /** Hash of a tenant's batch image reservations made on one day (UTC): batch id → "images:imagesPerUser". */
    imageReservations: (tenant: string, day: string) => `${prefix}:quota-images:${tenant}:${day}`,
  };
}
export type UserDataKeys = ReturnType<typeof userDataKeys>;

/** One batch output of a user, as the index stores it (batch ids hold no "/"). */
export interface BatchOutputRef {
  batchId: string;
  position: number;
  shard: number;
}

export const batchOutputRef = (r: BatchOutputRef): string => `${r.batchId}/${r.position}/${r.shard}`;

/** @throws Error on an entry the index never writes. */
export function parseBatchOutputRef(entry: string): BatchOutputRef {
  const [batchId, position, shard] = entry.split("/");
  if (!batchId || position === undefined || shard === undefined || !/^\d+$/.test(position) || !/^\d+$/.test(shard))
    throw new Error(`malformed batch output index entry ${JSON.stringify(entry)}`);
  return { batchId, position: Number(position), shard: Number(shard) };
}
