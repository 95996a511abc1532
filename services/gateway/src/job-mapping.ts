import { outputsExpireTime, type JobEvent, type JobRecord, type JobStateName } from "@rebeca/contracts";
import { JobState, UnknownUserPolicy, type Event, type Job } from "@rebeca/contracts/grpc";
import { toProtoSampler, toProtoSpacing } from "@rebeca/contracts/sampler-enums";

const STATES: Record<JobStateName, JobState> = {
  queued: JobState.JOB_STATE_QUEUED,
  sampling: JobState.JOB_STATE_SAMPLING,
  decoding: JobState.JOB_STATE_DECODING,
  succeeded: JobState.JOB_STATE_SUCCEEDED,
  failed: JobState.JOB_STATE_FAILED,
  cancelled: JobState.JOB_STATE_CANCELLED,
  expired: JobState.JOB_STATE_EXPIRED,
};

export const toProtoState = (s: JobStateName): JobState => STATES[s];

export function fromProtoState(s: JobState): JobStateName | null {
  const found = Object.entries(STATES).find(([, v]) => v === s);
  return found ? (found[0] as JobStateName) : null;
}

/** The API view of a stored job. */
export function toProtoJob(r: JobRecord): Job {
  return {
    jobId: r.jobId,
    requestId: r.requestId,
    userId: r.userId,
    numImages: r.numImages,
    guidance: r.guidance,
    steps: r.steps,
    sampler: toProtoSampler(r.sampler),
    spacing: toProtoSpacing(r.spacing),
    seed: r.seed,
    modelVersion: r.modelVersion,
    priority: r.priority,
    labels: r.labels,
    callbackUrl: r.callbackUrl,
    callbackEvents: r.callbackEvents,
    unknownUser: r.unknownUser === "population" ? UnknownUserPolicy.UNKNOWN_USER_POLICY_POPULATION : UnknownUserPolicy.UNKNOWN_USER_POLICY_REJECT,
    state: toProtoState(r.state),
    createTime: r.createTime,
    updateTime: r.updateTime,
    startTime: r.startTime,
    endTime: r.endTime,
    error: r.error ?? undefined,
    outputs: r.outputs.map((o) => ({ ...o })),
    populationPrior: r.populationPrior,
    batchId: r.batchId,
    startAfter: r.startAfter ?? "",
    deadline: r.deadline ?? "",
    outputsExpireTime: outputsExpireTime(r.endTime, r.outputTtlSeconds),
    outputsDeleted: !!r.outputsDeletedTime,
    outputsDeleteTime: r.outputsDeletedTime ?? "",
  };
}

export function toProtoEvent(e: JobEvent): Event {
  const c = e.batch?.counts;
  return {
    eventId: e.eventId,
    type: e.type,
    time: e.time,
    jobId: e.jobId,
    batchId: e.batchId,
    state: e.job ? toProtoState(e.job.state) : JobState.JOB_STATE_UNSPECIFIED,
    labels: e.labels,
    job: e.job ? toProtoJob(e.job) : undefined,
    batch:
      e.batch && c
        ? {
            state: e.batch.state,
            total: c.total,
            received: c.received,
            succeeded: c.succeeded,
            failed: c.failed,
            cancelled: c.cancelled,
            expired: c.expired,
            shardsTotal: c.shardsTotal,
            shardsDone: c.shardsDone,
            resultManifestUri: e.batch.resultManifestUri,
          }
        : undefined,
  };
}

/** Whether a record carries every label of `selector`. */
export function matchesLabels(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
