/**
 * What every submission (CreateJob, CreateBatch, CreateBatchFromManifest) goes through before
 * anything is written, and the request checks both services share: id shapes, page tokens,
 * label filters, the caller's trace.
 */
import { status, type Metadata } from "@grpc/grpc-js";
import { isId } from "@rebeca/contracts";
import { nextTraceparent } from "@rebeca/platform";
import type { DeadlineIndex, RetentionIndex } from "@rebeca/jobstore";
import { RpcError } from "./errors.js";
import type { AdmissionCheck, CallbackUrlGuard } from "./ports.js";
import type { QuotaCheck } from "./quota.js";
import { checkLabels, ValidationError, type FieldViolation, type ModelInfo, type RequestLimits } from "./validate.js";

export interface IntakeDeps {
  models: ReadonlyMap<string, ModelInfo>;
  /** Used when a request names no model version; must be in `models`. */
  defaultModel: string;
  /**
   * The version for a request that names none, from the tenant's traffic policy (model-routing.ts):
   * per user for a job, the stable version for a batch (`userId` null). Absent: `defaultModel`.
   */
  route?: (tenant: string, userId: string | null) => Promise<string>;
  limits: RequestLimits;
  callbackGuard: CallbackUrlGuard;
  admission: AdmissionCheck;
  /** The tenant's default output lifetime in seconds (0 = keep), for requests that set none. @default keep */
  outputTtlOf?: (tenant: string) => number;
  /** Where work with an output lifetime is registered for the retention sweeper. @default none registered */
  retention?: Pick<RetentionIndex, "register">;
  /** Where work with a deadline is registered for the deadline reaper (the monitor). @default none registered */
  deadlines?: Pick<DeadlineIndex, "register">;
  /** Per-tenant quotas (quota.ts); none when unset. */
  quota?: QuotaCheck;
  /** Records the version accepted work names, so cache pruning keeps it while work may be queued (registry cache-pruner.ts). */
  noteVersion?: (version: string) => void;
}

/** A request's validated spec: whatever it holds, it may name a callback URL and an output lifetime. */
interface WithCallback {
  callbackUrl: string;
  outputTtlSeconds?: number;
}

/** Admission of new work, in the order that describes a bad request best. */
export interface Intake {
  /**
   * Validates a submission against the model it names (or the default), then refuses a model
   * that is not deployed, a callback URL into a private network, and an overloaded tenant.
   * `validate` is the pure field check (`validateCreateJob`, `validateBatchParameters`);
   * `callbackField` names the callback URL in this request's field violations. `userId` (a job's
   * user; null for a batch) picks the version of a request without one by the tenant's policy; the spec carries the version chosen, which the job keeps.
   */
  admit<S extends WithCallback>(
    tenant: string,
    modelVersion: string,
    validate: (model: ModelInfo) => S,
    callbackField: string,
    userId?: string | null,
  ): Promise<S>;
}

export function createIntake(deps: IntakeDeps): Intake {
  const fallback = deps.models.get(deps.defaultModel);
  if (!fallback) throw new Error(`default model version "${deps.defaultModel}" is not among the deployed ones`);
  return {
    async admit(tenant, modelVersion, validate, callbackField, userId = null) {
      const version = modelVersion || (deps.route ? await deps.route(tenant, userId) : deps.defaultModel);
      const model = deps.models.get(version);
      // Field checks first (against the default model's ranges when the named one is missing),
      // so that a bad request is described in full.
      const spec = validate(model ?? fallback);
      if (!model) {
        throw new RpcError(
          status.FAILED_PRECONDITION,
          `model version "${version.slice(0, 64)}" is not deployed; available: ${[...deps.models.keys()].join(", ")}`,
        );
      }
      if (spec.callbackUrl) {
        const refused = await deps.callbackGuard(spec.callbackUrl);
        if (refused) throw new ValidationError([{ field: callbackField, description: refused }]);
      }
      const overloaded = await deps.admission(tenant);
      if (overloaded) throw new RpcError(status.RESOURCE_EXHAUSTED, overloaded.reason, [], overloaded.retryAfterSeconds);
      if (spec.outputTtlSeconds === undefined && deps.outputTtlOf?.(tenant)) spec.outputTtlSeconds = deps.outputTtlOf(tenant);
      // A batch spec has a shard size; a job's images are known up front, a batch's are not.
      const batch = "shardSize" in spec;
      await deps.quota?.(tenant, { images: batch ? 0 : Number((spec as { numImages?: number }).numImages ?? 0), batch });
      return spec;
    },
  };
}

/**
 * Registers accepted work that has an output lifetime with the retention sweeper, due no earlier
 * than creation + lifetime (it re-dates it from the real end). Runs after the record is stored and
 * also on a repeat, so a crash in between is repaired by the client's retry.
 */
export async function registerRetention(
  deps: Pick<IntakeDeps, "retention">,
  kind: "job" | "batch",
  r: { tenant: string; id: string; createTime: string; ttlSeconds?: number },
): Promise<void> {
  if (r.ttlSeconds && deps.retention) await deps.retention.register({ kind, tenant: r.tenant, id: r.id }, Date.parse(r.createTime) + r.ttlSeconds * 1000);
}

/**
 * Registers accepted work that has a deadline with the deadline reaper, due at the deadline: work
 * still waiting in a queue then ends EXPIRED even when no worker runs. Like `registerRetention` it
 * runs after the record is stored and on a repeat.
 */
export async function registerDeadline(
  deps: Pick<IntakeDeps, "deadlines">,
  kind: "job" | "batch",
  r: { tenant: string; id: string; deadline?: string },
): Promise<void> {
  if (r.deadline && deps.deadlines) await deps.deadlines.register({ kind, tenant: r.tenant, id: r.id }, Date.parse(r.deadline));
}

/** The trace new work joins: the caller's W3C `traceparent` metadata as parent, or a new trace. */
export function traceparentOf(metadata: Metadata): string {
  const incoming = metadata.get("traceparent")[0];
  return nextTraceparent(typeof incoming === "string" ? incoming : undefined);
}

/** The kinds of resource ids the API takes (`job_…`, `batch_…`). */
export type IdKind = "job" | "batch";

/** Refuses an id that cannot be one of `kind` before it is looked up. */
export function requireId(kind: IdKind, field: string, value: string): void {
  if (!isId(kind, value)) throw new ValidationError([{ field, description: `not a ${kind} id` }]);
}

/** Most entries one page of a List call returns; 0 asks for the default. */
export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

/**
 * Checks a List request's paging (`page_size`, `page_token`: the last id of the previous page)
 * into `out`; returns the page size to use.
 */
export function checkPage(kind: IdKind, req: { pageSize: number; pageToken: string }, out: FieldViolation[]): number {
  if (!Number.isInteger(req.pageSize) || req.pageSize < 0 || req.pageSize > MAX_PAGE_SIZE)
    out.push({ field: "page_size", description: `must be between 0 and ${MAX_PAGE_SIZE}` });
  if (req.pageToken && !isId(kind, req.pageToken)) out.push({ field: "page_token", description: "not a token from a previous response" });
  return req.pageSize || DEFAULT_PAGE_SIZE;
}

/** Checks a label filter (ListJobs, WatchEvents) with the same rules and limit as the labels a job carries. */
export function checkLabelFilter(labels: Record<string, string>, limits: RequestLimits, out: FieldViolation[]): void {
  checkLabels(labels, "labels", limits.maxLabels, out);
}

/** Throws every collected violation at once, if there are any. */
export function throwViolations(violations: FieldViolation[]): void {
  if (violations.length > 0) throw new ValidationError(violations);
}
