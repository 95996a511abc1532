import { status, type Metadata, type sendUnaryData, type ServerReadableStream, type ServerUnaryCall } from "@grpc/grpc-js";
import { inSpan, type Logger } from "@rebeca/platform";
import { toServiceError } from "./errors.js";
import type { GatewayMetrics } from "./metrics.js";
import { wellFormed } from "./malformed.js";

/** The caller's W3C `traceparent` metadata, if any (the parent of the call's span). */
const traceHeader = (metadata: Metadata): string | undefined => {
  const value = metadata.get("traceparent")[0];
  return typeof value === "string" ? value : undefined;
};

/**
 * The edge every RPC goes through: authenticate, time, count by status code, map errors (and log
 * the ones that are ours). Handlers are plain async functions of (tenant, request, metadata).
 */
export function createRpcEdge(deps: { authenticate: (metadata: Metadata) => string; metrics: GatewayMetrics; log: Logger }) {
  function settle<Res>(method: string, work: Promise<Res>, callback: sendUnaryData<Res>, cancelled: () => boolean = () => false) {
    const stop = deps.metrics.duration.startTimer({ method });
    work.then(
      (res) => {
        stop();
        deps.metrics.requests.inc({ method, code: "OK" });
        callback(null, res);
      },
      (err: unknown) => {
        stop();
        if (cancelled()) {
          // The client went away mid-stream (its reads fail with "Premature close"): not our error.
          deps.metrics.requests.inc({ method, code: "CANCELLED" });
          callback({ code: status.CANCELLED, details: "cancelled by the client" });
          return;
        }
        const mapped = toServiceError(err);
        deps.metrics.requests.inc({ method, code: status[mapped.code] });
        if (mapped.code === status.INTERNAL || mapped.code === status.UNAVAILABLE) deps.log.error({ err, method }, "rpc failed");
        callback(mapped);
      },
    );
  }

  return {
    unary<Req, Res>(method: string, fn: (tenant: string, req: Req, metadata: Metadata) => Promise<Res>) {
      return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) =>
        settle(
          method,
          inSpan(`gateway ${method}`, traceHeader(call.metadata), {}, async () =>
            fn(deps.authenticate(call.metadata), wellFormed(call.request), call.metadata),
          ),
          callback,
        );
    },
    clientStream<Req, Res>(method: string, fn: (tenant: string, call: ServerReadableStream<Req, Res>) => Promise<Res>) {
      return (call: ServerReadableStream<Req, Res>, callback: sendUnaryData<Res>) =>
        settle(method, (async () => fn(deps.authenticate(call.metadata), call))(), callback, () => call.cancelled);
    },
  };
}
export type RpcEdge = ReturnType<typeof createRpcEdge>;
