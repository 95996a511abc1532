import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { ValidationError, type FieldViolation } from "./validate.js";

/** An error the gateway answers with a specific gRPC code and a message safe to show clients. */
export class RpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
    readonly violations: FieldViolation[] = [],
    /** For RESOURCE_EXHAUSTED: when to try again (sent as google.rpc.RetryInfo). */
    readonly retryAfterSeconds?: number,
    /** For RESOURCE_EXHAUSTED: the quotas exceeded (sent as google.rpc.QuotaFailure). */
    readonly quotaViolations: QuotaViolation[] = [],
  ) {
    super(message);
    this.name = "RpcError";
  }
}

/** One exceeded quota, as google.rpc.QuotaFailure.Violation carries it. */
export interface QuotaViolation {
  subject: string;
  description: string;
}

const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";
const QUOTA_FAILURE_TYPE = "type.googleapis.com/google.rpc.QuotaFailure";
const RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo";

function any(typeUrl: string, value: Uint8Array): Uint8Array {
  return new BinaryWriter().uint32(10).string(typeUrl).uint32(18).bytes(value).finish();
}

/**
 * google.rpc.Status { code, message, details } in wire format, with a google.rpc.BadRequest (one
 * field violation per problem) and/or a google.rpc.RetryInfo { retry_delay: Duration }.
 */
export function encodeStatusDetails(
  code: status,
  message: string,
  violations: FieldViolation[],
  retryAfterSeconds?: number,
  quotaViolations: QuotaViolation[] = [],
): Uint8Array {
  const statusMsg = new BinaryWriter().uint32(8).int32(code).uint32(18).string(message);
  if (violations.length > 0) {
    const badRequest = new BinaryWriter();
    for (const v of violations) badRequest.uint32(10).fork().uint32(10).string(v.field).uint32(18).string(v.description).join();
    statusMsg.uint32(26).bytes(any(BAD_REQUEST_TYPE, badRequest.finish()));
  }
  if (retryAfterSeconds !== undefined) {
    const seconds = Math.floor(retryAfterSeconds);
    const nanos = Math.round((retryAfterSeconds - seconds) * 1e9);
    const duration = new BinaryWriter().uint32(8).int64(seconds).uint32(16).int32(nanos).finish();
    statusMsg.uint32(26).bytes(any(RETRY_INFO_TYPE, new BinaryWriter().uint32(10).bytes(duration).finish()));
  }
  if (quotaViolations.length > 0) {
    const failure = new BinaryWriter();
    for (const v of quotaViolations) failure.uint32(10).fork().uint32(10).string(v.subject).uint32(18).string(v.description).join();
    statusMsg.uint32(26).bytes(any(QUOTA_FAILURE_TYPE, failure.finish()));
  }
  return statusMsg.finish();
}

/**
 * Maps anything thrown in a handler to a gRPC error at the edge: validation → INVALID_ARGUMENT
 * with BadRequest details; RpcError → its code (RESOURCE_EXHAUSTED with RetryInfo); Redis
 * unreachable → UNAVAILABLE (the one code clients retry); anything else → INTERNAL without
 * internals.
 */
export function toServiceError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  if (err instanceof ValidationError) return withDetails(status.INVALID_ARGUMENT, `invalid request: ${err.message}`, err.violations);
  if (err instanceof RpcError) return withDetails(err.code, err.message, err.violations, err.retryAfterSeconds, err.quotaViolations);
  if (isRedisUnavailable(err)) return withDetails(status.UNAVAILABLE, "job store unavailable, retry with backoff", []);
  return withDetails(status.INTERNAL, "internal error", []);
}

/** Longest status message sent; the rest of a long list of violations is in the details. */
const MAX_DETAILS_CHARS = 1024;

/**
 * Makes a message safe for the `grpc-message` trailer. Messages quote client input, and grpc-js
 * percent-encodes the trailer with encodeURI, which throws on a lone surrogate (e.g. a label key
 * cut in the middle of an emoji): that throw escaped as an uncaught exception and killed the
 * process. Lone surrogates become U+FFFD and the length is bounded.
 */
export function safeText(text: string, max = MAX_DETAILS_CHARS): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

function withDetails(code: status, rawMessage: string, rawViolations: FieldViolation[], retryAfterSeconds?: number, quotaViolations: QuotaViolation[] = []) {
  const message = safeText(rawMessage);
  const violations = rawViolations.map((v) => ({ field: safeText(v.field, 256), description: safeText(v.description, 512) }));
  const metadata = new Metadata();
  if (violations.length > 0 || retryAfterSeconds !== undefined || quotaViolations.length > 0) {
    metadata.set("grpc-status-details-bin", Buffer.from(encodeStatusDetails(code, message, violations, retryAfterSeconds, quotaViolations)));
  }
  return { code, details: message, metadata };
}

function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|enableOfflineQueue|MaxRetriesPerRequest|ETIMEDOUT/i.test(err.message);
}
