import type { BatchSpec, JobSpec, SamplerName, SpacingName } from "@rebeca/contracts";
import { Sampler, TimestepSpacing, UnknownUserPolicy, type CreateJobRequest } from "@rebeca/contracts/grpc";
import { fromProtoSampler, fromProtoSpacing } from "@rebeca/contracts/sampler-enums";
import type { BatchParameters } from "@rebeca/contracts/grpc-batches";
import { checkWindows } from "./windows.js";

/** One problem with one request field, as google.rpc.BadRequest.FieldViolation carries it. */
export interface FieldViolation {
  field: string;
  description: string;
}

export class ValidationError extends Error {
  constructor(readonly violations: FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.description}`).join("; "));
    this.name = "ValidationError";
  }
}

/** What a model version offers; the gateway validates against it. */
export interface ModelInfo {
  version: string;
  timesteps: number;
  /** From the manifest; `spacing` is absent in manifests older than the option ("linspace"). */
  defaults: { guidance: number; steps: number; sampler: SamplerName; spacing?: SpacingName };
}

export interface RequestLimits {
  /** @default 16 */
  maxImagesPerJob: number;
  /** @default 50 */
  maxGuidance: number;
  /** @default 16 */
  maxLabels: number;
}

const REQUEST_ID = /^[\x21-\x7e]{1,36}$/;
const USER_ID = /^[\x21-\x7e]{1,128}$/;
const LABEL_KEY = /^[a-z0-9]([a-z0-9_.\-/]{0,61}[a-z0-9])?$/;
const JOB_EVENT_TYPES = new Set(["job.queued", "job.sampling", "job.decoding", "job.succeeded", "job.failed", "job.cancelled", "job.expired"]);
const BATCH_EVENT_TYPES = new Set([
  "batch.running",
  "batch.progress",
  "batch.completed",
  "batch.cancelled",
  "batch.failed",
  "batch.expired",
  "user.succeeded",
  "user.failed",
]);

/** Checks labels (shared by CreateJob and the list/watch filters). */
export function checkLabels(labels: Record<string, string>, field: string, max: number, out: FieldViolation[]): void {
  const entries = Object.entries(labels);
  if (entries.length > max) out.push({ field, description: `at most ${max} labels` });
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key))
      out.push({ field: `${field}[${key.slice(0, 64)}]`, description: "key must be 1-63 of [a-z0-9_.-/], starting and ending alphanumeric" });
    if (value.length > 256) out.push({ field: `${field}[${key.slice(0, 64)}]`, description: "value longer than 256 characters" });
  }
}

/**
 * Turns a CreateJob request into a job spec with the model's defaults filled in, or throws a
 * ValidationError listing every bad field. Pure: the model is looked up by the caller.
 */
export function validateCreateJob(
  req: CreateJobRequest,
  model: ModelInfo,
  limits: RequestLimits,
  randomSeed: () => number,
  eventTypes: ReadonlySet<string> = JOB_EVENT_TYPES,
  submitted: Date = new Date(),
): JobSpec {
  const v: FieldViolation[] = [];
  if (!REQUEST_ID.test(req.requestId)) v.push({ field: "request_id", description: "required: 1-36 printable ASCII characters (a UUID is recommended)" });
  if (!USER_ID.test(req.userId)) v.push({ field: "user_id", description: "required: 1-128 printable ASCII characters" });
  if (!Number.isInteger(req.numImages) || req.numImages < 1 || req.numImages > limits.maxImagesPerJob)
    v.push({ field: "num_images", description: `must be between 1 and ${limits.maxImagesPerJob}` });
  if (req.guidance !== undefined && !(Number.isFinite(req.guidance) && req.guidance >= 0 && req.guidance <= limits.maxGuidance))
    v.push({ field: "guidance", description: `must be a finite number between 0 and ${limits.maxGuidance}` });
  if (req.steps !== undefined && !(Number.isInteger(req.steps) && req.steps >= 1 && req.steps <= model.timesteps))
    v.push({ field: "steps", description: `must be between 1 and ${model.timesteps}` });
  if (req.sampler !== Sampler.SAMPLER_UNSPECIFIED && fromProtoSampler(req.sampler) === null) v.push({ field: "sampler", description: "unknown sampler" });
  if (req.spacing !== undefined && req.spacing !== TimestepSpacing.TIMESTEP_SPACING_UNSPECIFIED && fromProtoSpacing(req.spacing) === null)
    v.push({ field: "spacing", description: "unknown timestep spacing" });
  if (!Number.isInteger(req.priority) || req.priority < 0 || req.priority > 1000) v.push({ field: "priority", description: "must be between 0 and 1000" });
  if (!(req.unknownUser in UnknownUserPolicy) || req.unknownUser === UnknownUserPolicy.UNRECOGNIZED)
    v.push({ field: "unknown_user", description: "unknown policy" });
  checkLabels(req.labels, "labels", limits.maxLabels, v);
  if (req.callbackUrl) {
    if (req.callbackUrl.length > 2048) v.push({ field: "callback_url", description: "longer than 2048 characters" });
    else if (!isHttpUrl(req.callbackUrl)) v.push({ field: "callback_url", description: "must be an http or https URL" });
  }
  if (req.callbackEvents.length > eventTypes.size) v.push({ field: "callback_events", description: "too many event types" });
  for (const type of req.callbackEvents) {
    if (!eventTypes.has(type)) v.push({ field: "callback_events", description: `unknown event type "${type.slice(0, 64)}"` });
  }
  const windows = checkWindows(req, submitted, v);
  if (v.length > 0) throw new ValidationError(v);

  const sampler: SamplerName = fromProtoSampler(req.sampler) ?? model.defaults.sampler;
  return {
    userId: req.userId,
    numImages: req.numImages,
    guidance: req.guidance ?? model.defaults.guidance,
    // The paper's DDPM visits every timestep; `steps` and `spacing` shape the other samplers.
    steps: sampler === "ddpm" ? model.timesteps : (req.steps ?? model.defaults.steps),
    sampler,
    spacing: sampler === "ddpm" ? "linspace" : ((req.spacing === undefined ? null : fromProtoSpacing(req.spacing)) ?? model.defaults.spacing ?? "linspace"),
    seed: req.seed ?? randomSeed(),
    modelVersion: model.version,
    priority: req.priority,
    labels: { ...req.labels },
    callbackUrl: req.callbackUrl,
    callbackEvents: [...new Set(req.callbackEvents)],
    unknownUser: req.unknownUser === UnknownUserPolicy.UNKNOWN_USER_POLICY_POPULATION ? "population" : "reject",
    ...windows,
  };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname.length > 0 && !url.username && !url.password;
  } catch {
    return false;
  }
}

/** The shared parameters of a batch: validated like CreateJob's (same rules, batch event types). */
export function validateBatchParameters(
  p: BatchParameters,
  model: ModelInfo,
  limits: RequestLimits,
  shardSize: number,
  randomSeed: () => number,
  submitted: Date = new Date(),
): BatchSpec {
  try {
    const { userId: _placeholder, ...spec } = validateCreateJob({ ...p, userId: "batch" }, model, limits, randomSeed, BATCH_EVENT_TYPES, submitted);
    return { ...spec, shardSize };
  } catch (err) {
    // Field paths name where the field is in the batch request (`parameters.num_images`).
    if (err instanceof ValidationError) throw new ValidationError(err.violations.map((v) => ({ ...v, field: `parameters.${v.field}` })));
    throw err;
  }
}

const USER_ID_IN_BATCH = USER_ID;
/** A batch's user ids: the same rule as CreateJob's user_id; reports the first bad one by position. */
export function checkUserIds(ids: string[], firstPosition: number): void {
  for (let i = 0; i < ids.length; i++) {
    if (!USER_ID_IN_BATCH.test(ids[i]!))
      throw new ValidationError([
        { field: `users.user_ids[${i}]`, description: `user at position ${firstPosition + i}: 1-128 printable ASCII characters required` },
      ]);
  }
}
