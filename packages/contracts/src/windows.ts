import { JOB_ERROR_CODES } from "./jobs.js";

/**
 * Start windows, deadlines and output lifetimes: how requests write them and how every stage
 * reads them back. Pure: the clock is always passed in.
 */

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
const DURATION = /^(\d{1,9}(?:\.\d{1,9})?)(s|m|h|d)$/;
/** RFC 3339 with a zone (`Z` or `±hh:mm`); fractions of a second allowed. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * Seconds in a duration written as a number and one unit: `90s`, `15m`, `8h`, `7d` (`3600s` is
 * also how protobuf's JSON mapping writes a Duration). Null when `text` is not one.
 */
export function parseDurationSeconds(text: string): number | null {
  const m = DURATION.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
}

/**
 * The moment a request means by `text`: an absolute RFC 3339 time, or a duration counted from
 * `submitted`. Null when `text` is neither.
 */
export function resolveMoment(text: string, submitted: Date): Date | null {
  const seconds = parseDurationSeconds(text);
  if (seconds !== null) return new Date(submitted.getTime() + seconds * 1000);
  if (!RFC3339.test(text.trim())) return null;
  const at = Date.parse(text.trim());
  return Number.isNaN(at) ? null : new Date(at);
}

/**
 * Whether work carrying this deadline must stop: stages call it before starting work and between
 * chunks (a chunk already begun finishes, so nothing is half written).
 */
export function deadlinePassed(work: { deadline?: string }, now: number = Date.now()): boolean {
  return !!work.deadline && Date.parse(work.deadline) <= now;
}

/** Milliseconds until `startAfter` (0 when unset or past): the BullMQ `delay` of work held until then. */
export function delayUntil(startAfter: string | undefined, now: number = Date.now()): number {
  return startAfter ? Math.max(0, Date.parse(startAfter) - now) : 0;
}

/** The error a job ends EXPIRED with. */
export function expiredError(deadline: string): { code: string; message: string } {
  return { code: JOB_ERROR_CODES.DEADLINE_EXCEEDED, message: `the deadline ${deadline} passed before the work finished` };
}

/** When outputs kept `ttlSeconds` after `endTime` are due for deletion (ISO 8601); "" when kept or not ended. */
export function outputsExpireTime(endTime: string, ttlSeconds: number | undefined): string {
  if (!endTime || !ttlSeconds) return "";
  return new Date(Date.parse(endTime) + ttlSeconds * 1000).toISOString();
}
