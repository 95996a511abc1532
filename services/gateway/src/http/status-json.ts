import { status } from "@grpc/grpc-js";
import { BinaryReader } from "@bufbuild/protobuf/wire";

/** google.rpc.Status in its JSON form, as the HTTP/JSON bridge answers errors. */
export interface StatusJson {
  code: number;
  message: string;
  details: Record<string, unknown>[];
}

/** HTTP status of each gRPC code (the mapping of google.rpc.Code and grpc-gateway). */
const HTTP_STATUS: Record<number, number> = {
  [status.OK]: 200,
  [status.CANCELLED]: 499,
  [status.UNKNOWN]: 500,
  [status.INVALID_ARGUMENT]: 400,
  [status.DEADLINE_EXCEEDED]: 504,
  [status.NOT_FOUND]: 404,
  [status.ALREADY_EXISTS]: 409,
  [status.PERMISSION_DENIED]: 403,
  [status.RESOURCE_EXHAUSTED]: 429,
  [status.FAILED_PRECONDITION]: 400,
  [status.ABORTED]: 409,
  [status.OUT_OF_RANGE]: 400,
  [status.UNIMPLEMENTED]: 501,
  [status.INTERNAL]: 500,
  [status.UNAVAILABLE]: 503,
  [status.DATA_LOSS]: 500,
  [status.UNAUTHENTICATED]: 401,
};

export const httpStatusOf = (code: number): number => HTTP_STATUS[code] ?? 500;

const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";
const RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo";

/** Reads the length-delimited or varint fields of one message: field number → values. */
function fieldsOf(bytes: Uint8Array): Map<number, (Uint8Array | number)[]> {
  const reader = new BinaryReader(bytes);
  const out = new Map<number, (Uint8Array | number)[]>();
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    const value = wireType === 2 ? reader.bytes() : wireType === 0 ? Number(reader.int64()) : (reader.skip(wireType), undefined);
    if (value !== undefined) out.set(no, [...(out.get(no) ?? []), value]);
  }
  return out;
}
const text = (v: Uint8Array | number | undefined) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : "");
const num = (v: Uint8Array | number | undefined) => (typeof v === "number" ? v : 0);

/** One google.protobuf.Any of the details in JSON: the types the gateway sends are spelled out. */
function detailJson(any: Uint8Array): Record<string, unknown> {
  const fields = fieldsOf(any);
  const type = text(fields.get(1)?.[0]);
  const value = (fields.get(2)?.[0] as Uint8Array | undefined) ?? new Uint8Array();
  if (type === BAD_REQUEST) {
    const fieldViolations = (fieldsOf(value).get(1) ?? []).map((v) => {
      const f = fieldsOf(v as Uint8Array);
      return { field: text(f.get(1)?.[0]), description: text(f.get(2)?.[0]) };
    });
    return { "@type": type, fieldViolations };
  }
  if (type === RETRY_INFO) {
    const delay = fieldsOf((fieldsOf(value).get(1)?.[0] as Uint8Array | undefined) ?? new Uint8Array());
    const seconds = num(delay.get(1)?.[0]) + num(delay.get(2)?.[0]) / 1e9;
    return { "@type": type, retryDelay: `${seconds}s` };
  }
  return { "@type": type, value: Buffer.from(value).toString("base64") };
}

/**
 * The google.rpc.Status JSON of a gRPC error: its code and message, and the details the server
 * sent in `grpc-status-details-bin` (BadRequest field violations, RetryInfo), when any.
 */
export function statusJson(code: number, message: string, detailsBin?: Uint8Array): StatusJson {
  const details = detailsBin ? (fieldsOf(detailsBin).get(3) ?? []).map((d) => detailJson(d as Uint8Array)) : [];
  return { code, message, details };
}

/** Seconds of a RetryInfo among the details (sent as the HTTP Retry-After header). */
export function retryAfterSeconds(json: StatusJson): number | undefined {
  const info = json.details.find((d) => d["@type"] === RETRY_INFO);
  return info ? Math.ceil(Number.parseFloat(String(info.retryDelay))) : undefined;
}
