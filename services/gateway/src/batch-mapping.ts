import { outputsExpireTime, type BatchRecord, type BatchStateName } from "@rebeca/contracts";
import { UnknownUserPolicy } from "@rebeca/contracts/grpc";
import { BatchState, type Batch } from "@rebeca/contracts/grpc-batches";
import { toProtoSampler, toProtoSpacing } from "@rebeca/contracts/sampler-enums";

const STATES: Record<BatchStateName, BatchState> = {
  receiving: BatchState.BATCH_STATE_RECEIVING,
  running: BatchState.BATCH_STATE_RUNNING,
  completed: BatchState.BATCH_STATE_COMPLETED,
  cancelled: BatchState.BATCH_STATE_CANCELLED,
  failed: BatchState.BATCH_STATE_FAILED,
  expired: BatchState.BATCH_STATE_EXPIRED,
};

/** Seconds to completion from the rate so far (0 when unknown or finished). */
export function etaSeconds(b: BatchRecord, now: number): number {
  const done = b.counts.succeeded + b.counts.failed + b.counts.cancelled + b.counts.expired;
  if (b.state !== "running" || !b.runningTime || done === 0) return 0;
  const elapsed = (now - Date.parse(b.runningTime)) / 1000;
  return elapsed > 0 ? ((b.counts.total - done) * elapsed) / done : 0;
}

/** The API view of a stored batch. */
export function toProtoBatch(b: BatchRecord, now = Date.now()): Batch {
  const c = b.counts;
  const known = b.state === "receiving" ? c.received : c.total;
  return {
    batchId: b.batchId,
    requestId: b.requestId,
    state: STATES[b.state],
    parameters: {
      requestId: b.requestId,
      numImages: b.spec.numImages,
      guidance: b.spec.guidance,
      steps: b.spec.steps,
      sampler: toProtoSampler(b.spec.sampler),
      spacing: toProtoSpacing(b.spec.spacing),
      seed: b.spec.seed,
      modelVersion: b.spec.modelVersion,
      priority: b.spec.priority,
      labels: b.spec.labels,
      callbackUrl: b.spec.callbackUrl,
      callbackEvents: b.spec.callbackEvents,
      unknownUser: b.spec.unknownUser === "population" ? UnknownUserPolicy.UNKNOWN_USER_POLICY_POPULATION : UnknownUserPolicy.UNKNOWN_USER_POLICY_REJECT,
      startAfter: b.spec.startAfter ?? "",
      deadline: b.spec.deadline ?? "",
      outputTtl: b.spec.outputTtlSeconds ? `${b.spec.outputTtlSeconds}s` : "",
    },
    counts: {
      total: c.total,
      queued: b.state === "receiving" || b.state === "running" ? Math.max(0, known - c.succeeded - c.failed - c.cancelled - c.expired) : 0,
      succeeded: c.succeeded,
      failed: c.failed,
      cancelled: b.state === "cancelled" ? Math.max(c.cancelled, known - c.succeeded - c.failed - c.expired) : c.cancelled,
      expired: c.expired,
    },
    receivedUsers: c.received,
    shardsTotal: c.shardsTotal,
    shardsDone: c.shardsDone,
    etaSeconds: etaSeconds(b, now),
    createTime: b.createTime,
    updateTime: b.endTime || b.runningTime || b.createTime,
    endTime: b.endTime,
    resultManifestUri: b.resultManifestUri,
    error: b.error ?? undefined,
    outputsExpireTime: outputsExpireTime(b.endTime, b.spec.outputTtlSeconds),
    outputsDeleted: !!b.outputsDeletedTime,
    outputsDeleteTime: b.outputsDeletedTime,
    canaryVersion: b.spec.canary?.version ?? "",
    canaryWeight: b.spec.canary?.weight ?? 0,
  };
}
