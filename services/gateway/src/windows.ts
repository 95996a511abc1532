/**
 * Checks a submission's start window, deadline and output lifetime (CreateJob, and a batch's
 * parameters) and resolves them to what is stored: absolute RFC 3339 times and seconds. Pure.
 */
import { parseDurationSeconds, resolveMoment } from "@rebeca/contracts";

/** A field violation as validate.ts collects them (declared here too: validate.ts imports this module). */
interface FieldViolation {
  field: string;
  description: string;
}

/** Furthest ahead a start window or deadline may be: a month covers any overnight or weekly run. */
export const MAX_WINDOW_SECONDS = 31 * 86_400;
/** Shortest and longest output lifetimes: below a minute nothing could fetch them; ten years is "keep". */
export const MIN_OUTPUT_TTL_SECONDS = 60;
export const MAX_OUTPUT_TTL_SECONDS = 3650 * 86_400;

export interface WindowFields {
  startAfter?: string;
  deadline?: string;
  outputTtl?: string;
}

export interface Windows {
  startAfter?: string;
  deadline?: string;
  outputTtlSeconds?: number;
}

const WHEN = 'an RFC 3339 time ("2026-12-03T06:00:00Z") or a duration from now ("90s", "15m", "8h", "2d")';

/**
 * The stored form of a request's windows, with every problem pushed to `out` (fields named with
 * `prefix`, e.g. "parameters."). Unset fields stay unset.
 */
export function checkWindows(req: WindowFields, submitted: Date, out: FieldViolation[], prefix = ""): Windows {
  const result: Windows = {};
  const now = submitted.getTime();
  const moment = (field: "start_after" | "deadline", text: string | undefined): Date | undefined => {
    if (!text) return undefined;
    const at = text.length <= 64 ? resolveMoment(text, submitted) : null;
    if (!at) out.push({ field: prefix + field, description: `must be ${WHEN}` });
    else if (at.getTime() > now + MAX_WINDOW_SECONDS * 1000)
      out.push({ field: prefix + field, description: `is more than ${MAX_WINDOW_SECONDS / 86_400} days ahead` });
    else return at;
    return undefined;
  };
  const start = moment("start_after", req.startAfter);
  const deadline = moment("deadline", req.deadline);
  if (deadline && deadline.getTime() <= now)
    out.push({ field: prefix + "deadline", description: `is in the past (${deadline.toISOString()}); nothing could run before it` });
  else if (deadline && start && deadline.getTime() <= start.getTime())
    out.push({ field: prefix + "deadline", description: `must be after start_after (${start.toISOString()})` });
  else if (deadline) result.deadline = deadline.toISOString();
  // A start window already open is simply "now": there is nothing to hold.
  if (start && start.getTime() > now) result.startAfter = start.toISOString();
  if (req.outputTtl) {
    const seconds = req.outputTtl.length <= 32 ? parseDurationSeconds(req.outputTtl) : null;
    if (seconds === null) out.push({ field: prefix + "output_ttl", description: 'must be a duration ("1h", "30d")' });
    else if (seconds < MIN_OUTPUT_TTL_SECONDS || seconds > MAX_OUTPUT_TTL_SECONDS)
      out.push({ field: prefix + "output_ttl", description: `must be between ${MIN_OUTPUT_TTL_SECONDS} s and ${MAX_OUTPUT_TTL_SECONDS / 86_400} days` });
    else result.outputTtlSeconds = Math.round(seconds);
  }
  return result;
}

/**
 * Per-tenant default output lifetimes from `tenant=duration` entries (TENANT_OUTPUT_TTL), with
 * `fallback` (OUTPUT_TTL; "" = keep) for the rest. Returns seconds, 0 = keep.
 * @throws Error naming the first bad entry (read at start, so a typo stops the gateway).
 */
export function tenantOutputTtls(entries: readonly string[], fallback: string): (tenant: string) => number {
  const seconds = (text: string, what: string) => {
    const s = parseDurationSeconds(text);
    if (s === null || s < MIN_OUTPUT_TTL_SECONDS || s > MAX_OUTPUT_TTL_SECONDS) throw new Error(`${what}: "${text}" is not a duration between 60 s and 3650 d`);
    return Math.round(s);
  };
  const byTenant = new Map<string, number>();
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new Error(`TENANT_OUTPUT_TTL: "${entry}" is not tenant=duration`);
    byTenant.set(entry.slice(0, eq), seconds(entry.slice(eq + 1), `TENANT_OUTPUT_TTL ${entry.slice(0, eq)}`));
  }
  const rest = fallback ? seconds(fallback, "OUTPUT_TTL") : 0;
  return (tenant) => byTenant.get(tenant) ?? rest;
}
