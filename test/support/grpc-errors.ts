import type { ServiceError } from "@grpc/grpc-js";
import { BinaryReader } from "@bufbuild/protobuf/wire";

export interface Violation {
  field: string;
  description: string;
}

/** The `Any` details of the google.rpc.Status in the `grpc-status-details-bin` trailer. */
function details(err: ServiceError): { typeUrl: string; value: Uint8Array }[] {
  const raw = err.metadata?.get("grpc-status-details-bin")[0];
  if (!raw || typeof raw === "string") return [];
  const out: { typeUrl: string; value: Uint8Array }[] = [];
  const status = new BinaryReader(raw);
  while (status.pos < status.len) {
    const [field, wire] = status.tag();
    if (field !== 3) {
      status.skip(wire);
      continue;
    }
    const any = new BinaryReader(status.bytes());
    const detail = { typeUrl: "", value: new Uint8Array() };
    while (any.pos < any.len) {
      const [f, w] = any.tag();
      if (f === 1) detail.typeUrl = any.string();
      else if (f === 2) detail.value = any.bytes();
      else any.skip(w);
    }
    out.push(detail);
  }
  return out;
}

/** Field violations of a google.rpc.BadRequest in the `grpc-status-details-bin` trailer. */
export function fieldViolations(err: ServiceError): Violation[] {
  return pairsOf(err, "google.rpc.BadRequest");
}

/** The google.rpc.QuotaFailure violations (subject, description) in the status details. */
export function quotaViolations(err: ServiceError): { subject: string; description: string }[] {
  return pairsOf(err, "google.rpc.QuotaFailure").map((v) => ({ subject: v.field, description: v.description }));
}

/** The repeated (string 1, string 2) messages in field 1 of a detail of type `type`: BadRequest's and QuotaFailure's violations. */
function pairsOf(err: ServiceError, type: string): Violation[] {
  const out: Violation[] = [];
  for (const { typeUrl, value } of details(err)) {
    if (!typeUrl.endsWith(type)) continue;
    const bad = new BinaryReader(value);
    while (bad.pos < bad.len) {
      const [f, w] = bad.tag();
      if (f !== 1) {
        bad.skip(w);
        continue;
      }
      const fv = new BinaryReader(bad.bytes());
      const v: Violation = { field: "", description: "" };
      while (fv.pos < fv.len) {
        const [ff, ww] = fv.tag();
        if (ff === 1) v.field = fv.string();
        else if (ff === 2) v.description = fv.string();
        else fv.skip(ww);
      }
      out.push(v);
    }
  }
  return out;
}

/** Runs `fn` expecting a gRPC error; returns it. */
export async function grpcError(fn: () => Promise<unknown>): Promise<ServiceError> {
  try {
    await fn();
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error("expected a gRPC error, the call succeeded");
}

/** The retry delay (seconds) of a google.rpc.RetryInfo in the `grpc-status-details-bin` trailer. */
export function retryDelaySeconds(err: ServiceError): number | undefined {
  const info = details(err).find((d) => d.typeUrl.endsWith("google.rpc.RetryInfo"));
  if (!info) return undefined;
  const reader = new BinaryReader(info.value);
  reader.tag();
  const duration = new BinaryReader(reader.bytes());
  let seconds = 0;
  let nanos = 0;
  while (duration.pos < duration.len) {
    const [f, w] = duration.tag();
    if (f === 1) seconds = Number(duration.int64());
    else if (f === 2) nanos = duration.int32();
    else duration.skip(w);
  }
  return seconds + nanos / 1e9;
}
