import { connect, constants } from "node:http2";
import { WatchEventsRequest, WatchEventsResponse, type Event } from "@rebeca/contracts/grpc";

/**
 * A WatchEvents call over bare HTTP/2 whose reading the test controls. grpc-js clients keep
 * accepting (and buffering) messages while their stream is paused, so they cannot model a client
 * that stops reading; this one really stops: no read, no flow-control window for the server.
 */
export function rawWatch(address: string, apiKey: string, req: Partial<WatchEventsRequest>) {
  const session = connect(`http://${address}`);
  const stream = session.request({
    [constants.HTTP2_HEADER_METHOD]: "POST",
    [constants.HTTP2_HEADER_PATH]: "/rebeca.v1.JobService/WatchEvents",
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${apiKey}`,
  });
  const body = WatchEventsRequest.encode({ afterEventId: "", jobId: "", batchId: "", labels: {}, types: [], ...req }).finish();
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  stream.end(frame);

  const out = { events: [] as Event[], status: null as { code: number; message: string } | null };
  let pending = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    // gRPC length-prefixed messages: 1 byte compressed flag, 4 bytes length, the message.
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const len = pending.readUInt32BE(1);
      const msg = WatchEventsResponse.decode(pending.subarray(5, 5 + len));
      if (msg.event) out.events.push(msg.event);
      pending = pending.subarray(5 + len);
    }
  };
  const onStatus = (headers: Record<string, unknown>) => {
    if (headers["grpc-status"] !== undefined)
      out.status = { code: Number(headers["grpc-status"]), message: decodeURIComponent(String(headers["grpc-message"] ?? "")) };
  };
  stream.on("trailers", onStatus);
  // A status with no messages comes as the response headers (trailers-only).
  stream.on("response", onStatus);
  let reading = false;
  return {
    ...out,
    get events() {
      return out.events;
    },
    get status() {
      return out.status;
    },
    /** Starts (or restarts) reading; until then the server's writes pile up on its side. */
    read() {
      if (reading) return;
      reading = true;
      stream.on("data", onData);
    },
    close() {
      stream.close(constants.NGHTTP2_CANCEL);
      session.close();
    },
  };
}
