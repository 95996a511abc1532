import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { ValidationError, type FieldViolation } from "./validate.js";

/** An error the gateway answers with a specific gRPC code and a message safe to show clients. */
export class RpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
    readonly violations: FieldViolation[] = [],
  ) {
    super(message);
    this.name = "RpcError";
  }
}

const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";

/** google.rpc.Status { code, message, details: [Any(google.rpc.BadRequest)] } in wire format. */
export function encodeStatusDetails(code: status, message: string, violations: FieldViolation[]): Uint8Array {
  const badRequest = new BinaryWriter();
  for (const v of violations) {
    badRequest.uint32(10).fork().uint32(10).string(v.field).uint32(18).string(v.description).join();
  }
  const any = new BinaryWriter().uint32(10).string(BAD_REQUEST_TYPE).uint32(18).bytes(badRequest.finish()).finish();
  const statusMsg = new BinaryWriter().uint32(8).int32(code).uint32(18).string(message);
  if (violations.length > 0) statusMsg.uint32(26).bytes(any);
  return statusMsg.finish();
}

/**
 * Maps anything thrown in a handler to a gRPC error at the edge: validation → INVALID_ARGUMENT
 * with BadRequest details; RpcError → its code; Redis unreachable → UNAVAILABLE (the one code
 * clients retry); anything else → INTERNAL without internals.
 */
export function toServiceError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  if (err instanceof ValidationError) return withDetails(status.INVALID_ARGUMENT, `invalid request: ${err.message}`, err.violations);
  if (err instanceof RpcError) return withDetails(err.code, err.message, err.violations);
  if (isRedisUnavailable(err)) return withDetails(status.UNAVAILABLE, "job store unavailable, retry with backoff", []);
  return withDetails(status.INTERNAL, "internal error", []);
}

function withDetails(code: status, message: string, violations: FieldViolation[]) {
  const metadata = new Metadata();
  if (violations.length > 0) metadata.set("grpc-status-details-bin", Buffer.from(encodeStatusDetails(code, message, violations)));
  return { code, details: message, metadata };
}

function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|enableOfflineQueue|MaxRetriesPerRequest|ETIMEDOUT/i.test(err.message);
}
