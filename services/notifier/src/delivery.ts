/**
 * One delivery attempt of a callback task and what follows from it: record the attempt, plan the
 * retry, disable a gone endpoint, dead-letter what cannot be delivered. No HTTP or Redis here: the
 * roles are injected.
 */
import type { CallbackTask } from "@rebeca/contracts";
import type { DeadLetter, DeadLetterReason, DeadLetterStore } from "./dead-letters.js";
import type { DeliveryAttempt } from "./deliveries.js";
import type { EndpointStore } from "./endpoints.js";
import { classifyStatus, MAX_ATTEMPTS, nextRetryDelayMs, parseRetryAfter, RETRY_AFTER_STATUSES, type RetryPolicy } from "./schedule.js";
import type { CallbackSender } from "./sender.js";
import { webhookHeaders } from "./signing.js";

/** Outcome label of `rebeca_callback_deliveries_total`. */
export type DeliveryOutcome = "delivered" | "retry" | DeadLetterReason;

/** Thrown to make the queue retry after `delayMs` (read by the worker's backoff strategy). */
export class RetryLaterError extends Error {
  constructor(
    readonly delayMs: number,
    message: string,
  ) {
    super(message);
    this.name = "RetryLaterError";
  }
}

/** Role: signing keys of a tenant (several during rotation), or undefined when it has none. */
export type SecretLookup = (tenant: string) => readonly Buffer[] | undefined;

export interface DeliveryEvent {
  task: CallbackTask;
  attempt: DeliveryAttempt;
}

export interface DeliveryProcessorDeps {
  sender: CallbackSender;
  secrets: SecretLookup;
  endpoints: EndpointStore;
  deadLetters: DeadLetterStore;
  recordAttempt: (messageId: string, attempt: DeliveryAttempt) => Promise<void>;
  retry: RetryPolicy;
  /** Attempts per run before dead-lettering. @default MAX_ATTEMPTS (10) */
  maxAttempts?: number;
  /** Called after every attempt or skip (metrics, logs, tests). */
  onAttempt?: (event: DeliveryEvent) => void;
  now?: () => number;
  random?: () => number;
}

/**
 * Creates the processor. `deliver(task, attempt)` resolves when the message is finished (delivered
 * or dead-lettered) and throws {@link RetryLaterError} when it must be tried again.
 */
export function createDeliveryProcessor(deps: DeliveryProcessorDeps) {
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const maxAttempts = deps.maxAttempts ?? MAX_ATTEMPTS;

  async function finish(task: CallbackTask, attempt: DeliveryAttempt, dead?: { reason: DeadLetterReason; detail: string }) {
    await deps.recordAttempt(task.messageId, attempt);
    if (dead) {
      const letter: DeadLetter = { task, reason: dead.reason, detail: dead.detail, attempts: attempt.attempt, time: new Date(now()).toISOString() };
      await deps.deadLetters.add(letter);
    }
    deps.onAttempt?.({ task, attempt });
  }

  async function deliver(task: CallbackTask, attemptNo: number): Promise<DeliveryOutcome> {
    const started = now();
    const base = { attempt: attemptNo, time: new Date(started).toISOString(), status: null, error: null, durationMs: 0, nextAttemptTime: null };

    const endpoint = await deps.endpoints.get(task.tenant, task.url);
    if (endpoint.disabled) {
      const error = `endpoint disabled (${endpoint.reason ?? "unknown"} at ${endpoint.time ?? "?"})`;
      await finish(task, { ...base, error, outcome: "endpoint_disabled" }, { reason: "endpoint_disabled", detail: error });
      return "endpoint_disabled";
    }
    const keys = deps.secrets(task.tenant);
    if (!keys || keys.length === 0) {
      const error = `no webhook secret for tenant ${task.tenant}`;
      await finish(task, { ...base, error, outcome: "no_signing_secret" }, { reason: "no_signing_secret", detail: error });
      return "no_signing_secret";
    }

    const headers = webhookHeaders(keys, task.messageId, Math.floor(started / 1000), task.body);
    // The job's trace continues into the receiver (W3C Trace Context).
    if (task.traceparent) headers.traceparent = task.traceparent;
    let status: number | null = null;
    let retryAfterMs: number | null = null;
    let error: string | null = null;
    try {
      const res = await deps.sender.send({ url: task.url, headers, body: task.body });
      status = res.status;
      if (RETRY_AFTER_STATUSES.has(status)) retryAfterMs = parseRetryAfter(res.headers["retry-after"], now());
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      error = e.code ? `${e.code}: ${e.message}` : e.message;
      if (e.code === "ERR_CALLBACK_ADDRESS_BLOCKED" || e.code === "ERR_INVALID_URL") {
        const reason: DeadLetterReason = e.code === "ERR_INVALID_URL" ? "invalid_url" : "blocked_address";
        await finish(task, { ...base, error, durationMs: now() - started, outcome: reason }, { reason, detail: error });
        return reason;
      }
    }
    const durationMs = now() - started;
    const attempt = { ...base, status, error, durationMs };

    if (status !== null) {
      const verdict = classifyStatus(status);
      if (verdict === "delivered") {
        await finish(task, { ...attempt, outcome: "delivered" });
        return "delivered";
      }
      if (verdict === "gone") {
        await deps.endpoints.disable(task.tenant, task.url, `HTTP 410 for ${task.messageId}`);
        await finish(task, { ...attempt, outcome: "gone" }, { reason: "gone", detail: "HTTP 410 Gone: endpoint disabled" });
        return "gone";
      }
    }
    const delay = attemptNo >= maxAttempts ? null : nextRetryDelayMs(attemptNo, retryAfterMs, deps.retry, random);
    const detail = status !== null ? `HTTP ${status}` : (error ?? "unknown error");
    if (delay === null) {
      await finish(task, { ...attempt, outcome: "exhausted" }, { reason: "exhausted", detail: `${attemptNo} attempts; last: ${detail}` });
      return "exhausted";
    }
    await finish(task, { ...attempt, outcome: "retry", nextAttemptTime: new Date(now() + delay).toISOString() });
    throw new RetryLaterError(delay, `attempt ${attemptNo} failed (${detail}); retry in ${delay} ms`);
  }

  return { deliver };
}

export type DeliveryProcessor = ReturnType<typeof createDeliveryProcessor>;
