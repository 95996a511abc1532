import type { ServiceError } from "@grpc/grpc-js";
import { BinaryReader } from "@bufbuild/protobuf/wire";

export interface Violation {
  field: string;
  description: string;
}

/** Field violations of a google.rpc.BadRequest in the `grpc-status-details-bin` trailer. */
export function fieldViolations(err: ServiceError): Violation[] {
  const raw = err.metadata?.get("grpc-status-details-bin")[0];
  if (!raw || typeof raw === "string") return [];
  const out: Violation[] = [];
  const status = new BinaryReader(raw);
  while (status.pos < status.len) {
    const [field, wire] = status.tag();
    if (field !== 3) {
      status.skip(wire);
      continue;
    }
    const any = new BinaryReader(status.bytes());
    let typeUrl = "";
    let value = new Uint8Array();
    while (any.pos < any.len) {
      const [f, w] = any.tag();
      if (f === 1) typeUrl = any.string();
      else if (f === 2) value = any.bytes();
      else any.skip(w);
    }
    if (!typeUrl.endsWith("google.rpc.BadRequest")) continue;
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
  const raw = err.metadata?.get("grpc-status-details-bin")[0];
  if (!raw || typeof raw === "string") return undefined;
  const status = new BinaryReader(raw);
  while (status.pos < status.len) {
    const [field, wire] = status.tag();
    if (field !== 3) {
      status.skip(wire);
      continue;
    }
    const any = new BinaryReader(status.bytes());
    let typeUrl = "";
    let value = new Uint8Array();
    while (any.pos < any.len) {
      const [f, w] = any.tag();
      if (f === 1) typeUrl = any.string();
      else if (f === 2) value = any.bytes();
      else any.skip(w);
    }
    if (!typeUrl.endsWith("google.rpc.RetryInfo")) continue;
    const info = new BinaryReader(value);
    info.tag();
    const duration = new BinaryReader(info.bytes());
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
  return undefined;
}
