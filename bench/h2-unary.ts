/*
 * A minimal gRPC unary caller straight on node:http2, for load generation: the gRPC wire format is
 * a POST with a 5-byte length prefix per message and the status in trailers. grpc-js builds a
 * filter stack, call objects and metadata per call (~15 KB, often promoted before the call ends);
 * in a benchmark on the server's own cores its collections then land in the tail being measured.
 * ghz and h2load generate load this way for the same reason.
 */
import { connect, constants, type ClientHttp2Session } from "node:http2";

export interface UnaryCaller {
  /** Sends one request message; resolves with the response message, rejects on a non-OK status. */
  call(path: string, message: Uint8Array): Promise<Uint8Array>;
  close(): void;
}

export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    details: string,
  ) {
    super(`gRPC status ${code}: ${details}`);
  }
}

export function createUnaryCaller(address: string, metadata: Record<string, string>): UnaryCaller {
  const session: ClientHttp2Session = connect(`http://${address}`);
  session.on("error", () => {}); // each call reports its own failure
  const fixed = { [constants.HTTP2_HEADER_METHOD]: "POST", "content-type": "application/grpc", te: "trailers", ...metadata };
  return {
    call(path, message) {
      const frame = Buffer.allocUnsafe(5 + message.length);
      frame[0] = 0; // not compressed
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      return new Promise((resolve, reject) => {
        const stream = session.request({ ...fixed, [constants.HTTP2_HEADER_PATH]: path });
        const chunks: Buffer[] = [];
        let headerStatus: string | undefined;
        stream.on("response", (h) => (headerStatus = h["grpc-status"] as string | undefined));
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("trailers", (t) => (headerStatus = (t["grpc-status"] as string | undefined) ?? headerStatus));
        stream.on("error", reject);
        stream.on("close", () => {
          const code = Number(headerStatus ?? NaN);
          if (code !== 0) return reject(new GrpcStatusError(code, "call failed"));
          const body = Buffer.concat(chunks);
          if (body.length < 5 || body.readUInt32BE(1) !== body.length - 5) return reject(new Error("malformed gRPC response frame"));
          resolve(body.subarray(5));
        });
        stream.end(frame);
      });
    },
    close: () => session.close(),
  };
}
