import { randomInt } from "node:crypto";
import { status, type ServerWritableStream } from "@grpc/grpc-js";
import type { Logger } from "@rebeca/platform";
import { newId, TERMINAL_STATES, type JobEvent, type JobRecord, type PriorTask } from "@rebeca/contracts";
import type { JobServiceServer, WatchEventsRequest, WatchEventsResponse } from "@rebeca/contracts/grpc";
import { newJobRecord } from "@rebeca/jobstore";
import { RpcError, toServiceError } from "./errors.js";
import { createRpcEdge } from "./rpc.js";
import { wellFormed } from "./malformed.js";
import { EVENT_ID } from "./event-ids.js";
import type { EventHub } from "./event-hub.js";
import { createStreamSink } from "./watch-sink.js";
import { fromProtoState, matchesLabels, toProtoEvent, toProtoJob } from "./job-mapping.js";
import {
  checkLabelFilter,
  checkPage,
  createIntake,
  registerDeadline,
  registerRetention,
  requireId,
  throwViolations,
  traceparentOf,
  type IntakeDeps,
} from "./intake.js";
import type { Authenticate, JobRecords, JobSink, Unqueue } from "./ports.js";
import { validateCreateJob, type FieldViolation } from "./validate.js";
import type { GatewayMetrics } from "./metrics.js";
import type { UserIndex } from "@rebeca/userdata";

export interface JobServiceDeps extends IntakeDeps {
  authenticate: Authenticate;
  store: JobRecords;
  /** Where accepted jobs are enqueued (the job catalog's producer side). */
  jobs: JobSink;
  unqueue: Unqueue;
  /** Indexes each job under its user (for erasure) and says whether the user was erased. */
  userIndex?: Pick<UserIndex, "admitJob">;
  hub: Pick<EventHub, "subscribe">;
  metrics: GatewayMetrics;
  log: Logger;
  /** Open WatchEvents streams one tenant may hold; past it RESOURCE_EXHAUSTED. @default 1000 */
  maxWatchersPerTenant?: number;
  /** Unsent events one WatchEvents stream may hold; past it the stream ends RESOURCE_EXHAUSTED. @default 10000 */
  watchBufferEvents?: number;
}

/** The prior stage's task for a stored job; `forgotten`: the user was erased, so no user row (population prior). */
function priorTask(r: JobRecord, forgotten = false): PriorTask {
  return {
    tenant: r.tenant,
    jobId: r.jobId,
    userId: forgotten ? "" : r.userId,
    modelVersion: r.modelVersion,
    numImages: r.numImages,
    guidance: r.guidance,
    steps: r.steps,
    sampler: r.sampler,
    spacing: r.spacing,
    seed: r.seed,
    unknownUser: r.unknownUser,
    priority: r.priority,
    traceparent: r.traceparent,
    startAfter: r.startAfter,
    deadline: r.deadline,
  };
}

/** The rebeca.v1.JobService handlers. Every RPC authenticates first; errors map at this edge. */
export function createJobService(deps: JobServiceDeps): JobServiceServer {
  const { store, metrics } = deps;

  const { unary } = createRpcEdge(deps);
  const intake = createIntake(deps);
  const maxWatchers = deps.maxWatchersPerTenant ?? 1000;
  /** Open WatchEvents streams per tenant: each holds buffers and a hub subscription. */
  const watchers = new Map<string, number>();

  async function ownJob(tenant: string, jobId: string): Promise<JobRecord> {
    requireId("job", "job_id", jobId);
    const record = await store.get(jobId);
    // Another tenant's job is reported exactly like a missing one: ids leak nothing.
    if (!record || record.tenant !== tenant) throw new RpcError(status.NOT_FOUND, `job ${jobId} not found`);
    return record;
  }

  return {
    createJob: unary("CreateJob", async (tenant, req, metadata) => {
      const spec = await intake.admit(
        tenant,
        req.modelVersion,
        (model) => validateCreateJob(req, model, deps.limits, () => randomInt(0, 2 ** 32)),
        "callback_url",
        req.userId,
      );
      const jobId = newId("job");
      const erased = (await deps.userIndex?.admitJob(tenant, spec.userId, jobId)) ?? null;
      if (erased === "reject")
        throw new RpcError(status.FAILED_PRECONDITION, `user ${spec.userId} was erased (DeleteUserData); the tenant refuses requests for them`);
      if (erased === "population") spec.unknownUser = "population";
      const record = newJobRecord({
        jobId,
        tenant,
        requestId: req.requestId,
        spec,
        now: new Date().toISOString(),
        traceparent: traceparentOf(metadata),
      });
      const result = await store.create(record);
      const stored = result.record;
      // Only stored work pins its version against cache pruning: a refused request writes nothing.
      deps.noteVersion?.(stored.modelVersion);
      await registerRetention(deps, "job", { tenant, id: stored.jobId, createTime: stored.createTime, ttlSeconds: stored.outputTtlSeconds });
      await registerDeadline(deps, "job", { tenant, id: stored.jobId, deadline: stored.deadline });
      // Also on a repeat: if the first attempt stored the job but failed before enqueueing, this
      // enqueues it; a repeat add of a queued job id adds nothing.
      if (result.record.state === "queued") await deps.jobs.add("sample", priorTask(result.record, erased === "population"));
      if (result.created) metrics.jobsCreated.inc();
      return { job: toProtoJob(result.record), deduplicated: !result.created };
    }),

    getJob: unary("GetJob", async (tenant, req) => ({ job: toProtoJob(await ownJob(tenant, req.jobId)) })),

    listJobs: unary("ListJobs", async (tenant, req) => {
      const v: FieldViolation[] = [];
      const pageSize = checkPage("job", req, v);
      const state = req.state ? fromProtoState(req.state) : null;
      if (req.state && !state) v.push({ field: "state", description: "unknown state" });
      checkLabelFilter(req.labels, deps.limits, v);
      throwViolations(v);
      const page = await store.list(tenant, {
        pageSize,
        after: req.pageToken || undefined,
        filter: (r) => (!state || r.state === state) && (!req.userId || r.userId === req.userId) && matchesLabels(r.labels, req.labels),
      });
      return { jobs: page.records.map(toProtoJob), nextPageToken: page.next };
    }),

    cancelJob: unary("CancelJob", async (tenant, req) => {
      const record = await ownJob(tenant, req.jobId);
      if (TERMINAL_STATES.has(record.state)) return { job: toProtoJob(record) };
      const result = await store.transition(record.jobId, "cancelled", { error: { code: "CANCELLED", message: "cancelled by the client" } });
      // A job still waiting leaves the queue now; one in progress stops at its next check.
      if (result.applied) await deps.unqueue(tenant, record.jobId).catch(() => false);
      return { job: toProtoJob(result.record) };
    }),

    watchEvents: (call: ServerWritableStream<WatchEventsRequest, WatchEventsResponse>) => {
      const method = "WatchEvents";
      const maxBuffered = deps.watchBufferEvents ?? 10_000;
      let closed = false;
      let subscription: { close(): void } | null = null;
      let counted: string | null = null;
      let lastSent = "";
      // A stream stays counted against its tenant until it is really gone: one that was cut off
      // still holds its unsent events until the client reads them or disconnects.
      const release = () => {
        if (counted === null) return;
        watchers.set(counted, watchers.get(counted)! - 1);
        counted = null;
      };
      const finish = (err?: unknown) => {
        if (closed) return;
        closed = true;
        sink.stop();
        subscription?.close();
        if (err) {
          const mapped = toServiceError(err);
          metrics.requests.inc({ method, code: status[mapped.code] });
          call.emit("error", mapped);
        } else call.end();
      };
      // Set once the request is checked; the hub sends nothing before that.
      let wanted: (event: JobEvent) => boolean = () => false;
      const sink = createStreamSink(call, {
        maxBuffered,
        write: (event) => {
          if (closed || !wanted(event)) return false;
          lastSent = event.eventId;
          call.write({ event: toProtoEvent(event) });
          return true;
        },
        overflow: (unsent) => {
          // The client gets every event queued before this status, so its last received id is
          // exactly where to resume; the events after it stay in the tenant's stream.
          deps.log.warn({ unsent, lastSent }, "WatchEvents client too slow; ending its stream");
          finish(
            new RpcError(
              status.RESOURCE_EXHAUSTED,
              `this stream fell more than ${maxBuffered} events behind the client's reading; call WatchEvents again with after_event_id set to the last event id received to continue without a gap`,
            ),
          );
        },
      });
      call.on("cancelled", () => {
        finish();
        release();
      });
      call.on("close", () => {
        finish();
        release();
      });
      call.on("finish", release);
      void (async () => {
        const tenant = deps.authenticate(call.metadata);
        const req = wellFormed(call.request);
        const v: FieldViolation[] = [];
        if (req.afterEventId && !EVENT_ID.test(req.afterEventId)) v.push({ field: "after_event_id", description: "not an event id" });
        checkLabelFilter(req.labels, deps.limits, v);
        throwViolations(v);
        const open = watchers.get(tenant) ?? 0;
        if (open >= maxWatchers)
          throw new RpcError(status.RESOURCE_EXHAUSTED, `tenant has ${open} open WatchEvents streams (limit ${maxWatchers}); close some first`, [], 1);
        if (closed) return;
        watchers.set(tenant, open + 1);
        counted = tenant;
        metrics.requests.inc({ method, code: "OK" });
        const types = new Set(req.types);
        wanted = (event) =>
          (!req.jobId || event.jobId === req.jobId) &&
          (!req.batchId || event.batchId === req.batchId) &&
          (types.size === 0 || types.has(event.type)) &&
          matchesLabels(event.labels, req.labels);
        subscription = await deps.hub.subscribe(tenant, req.afterEventId, sink);
        if (closed) subscription.close();
      })().catch(finish);
    },
  };
}
