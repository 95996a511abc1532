import { createServer as createPlainServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer, type Server as TlsServer } from "node:https";
import { StringDecoder } from "node:string_decoder";
import { Client, Metadata, status, type ChannelCredentials, type ClientReadableStream, type ClientWritableStream, type ServiceError } from "@grpc/grpc-js";
import { fromBinary, fromJson, toBinary, toJson, type DescMethod, type JsonValue } from "@bufbuild/protobuf";
import type { Descriptors } from "../descriptors.js";
import { readContext, watchTls, type TlsFiles } from "../tls.js";
import { httpStatusOf, retryAfterSeconds, statusJson, type StatusJson } from "./status-json.js";

/** Request headers passed on to the gRPC call as metadata: auth and trace context. */
const FORWARDED_HEADERS = ["authorization", "traceparent", "tracestate"];

export interface HttpBridgeOptions {
  host: string;
  port: number;
  descriptors: Descriptors;
  /** The gateway's own gRPC listener that calls are relayed to (a loopback address). */
  grpcTarget: string;
  grpcCredentials: ChannelCredentials;
  /** Largest request message (the gRPC server's limit); a JSON body may be up to 4× this. */
  maxMessageBytes: number;
  /** Interval of SSE comment lines on a quiet stream (keeps proxies and clients from timing out). */
  sseKeepAliveMs: number;
  /** Serve HTTPS (mutual TLS with a client CA, certificates re-read on change) instead of plain HTTP. */
  tls?: TlsFiles;
  /** The OpenAPI document, served at GET /openapi.json. */
  openapi: object;
}

export interface HttpBridge {
  port: number;
  server: Server;
  /** Stops taking connections, lets running requests finish up to `graceMs`, then cuts the rest (open event streams). */
  close(graceMs?: number): Promise<void>;
}

/** `POST /<package>.<Service>/<Method>` for every RPC of the API's services (grpc.* excluded). */
export function routesOf(descriptors: Descriptors): Map<string, DescMethod> {
  const routes = new Map<string, DescMethod>();
  for (const service of descriptors.services.values()) {
    if (service.typeName.startsWith("grpc.")) continue;
    for (const method of service.methods) routes.set(`/${service.typeName}/${method.name}`, method);
  }
  return routes;
}

class BridgeError extends Error {
  constructor(
    readonly code: status,
    message: string,
    /** An HTTP status other than the code's own (405 for a wrong method). */
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

/**
 * HTTP/JSON access to every RPC, mapped from the same descriptors as gRPC (the Connect protocol's
 * URL layout): `POST /rebeca.v1.JobService/CreateJob` with the request as proto3 JSON answers the
 * response as JSON. Client-streaming RPCs take their messages as JSON Lines; server-streaming RPCs
 * answer server-sent events (`data: <message JSON>`). Each call is relayed to the gateway's own
 * gRPC listener, so auth, validation, limits and errors are the gRPC ones; errors are answered as
 * google.rpc.Status JSON with the matching HTTP status (and Retry-After from RetryInfo).
 */
export async function startHttpBridge(opts: HttpBridgeOptions): Promise<HttpBridge> {
  const routes = routesOf(opts.descriptors);
  const client = new Client(opts.grpcTarget, opts.grpcCredentials, { "grpc.max_send_message_length": opts.maxMessageBytes * 4 });
  const maxBodyBytes = opts.maxMessageBytes * 4;
  const identity = (b: Buffer) => b;

  function sendJson(res: ServerResponse, httpStatus: number, body: unknown, headers: Record<string, string> = {}) {
    res.writeHead(httpStatus, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  }
  function sendStatus(res: ServerResponse, json: StatusJson) {
    const retry = retryAfterSeconds(json);
    sendJson(res, httpStatusOf(json.code), json, retry === undefined ? {} : { "retry-after": String(retry) });
  }
  const grpcStatus = (err: ServiceError) => {
    const bin = err.metadata?.get("grpc-status-details-bin")[0];
    return statusJson(err.code, err.details, typeof bin === "string" ? Buffer.from(bin, "base64") : bin);
  };

  /** One request message from its JSON text, as bytes for the relay. */
  function encode(method: DescMethod, text: string): Buffer {
    let json: JsonValue;
    try {
      json = JSON.parse(text) as JsonValue;
    } catch (err) {
      throw new BridgeError(status.INVALID_ARGUMENT, `request body is not JSON: ${(err as Error).message}`);
    }
    try {
      return Buffer.from(toBinary(method.input, fromJson(method.input, json, { registry: opts.descriptors.registry })));
    } catch (err) {
      throw new BridgeError(status.INVALID_ARGUMENT, `request is not a valid ${method.input.typeName}: ${(err as Error).message}`);
    }
  }
  const decode = (method: DescMethod, bytes: Buffer) =>
    toJson(method.output, fromBinary(method.output, bytes), { alwaysEmitImplicit: true, registry: opts.descriptors.registry });

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBodyBytes) throw new BridgeError(status.RESOURCE_EXHAUSTED, `request body is larger than ${maxBodyBytes} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString("utf8");
  }

  function metadataOf(req: IncomingMessage): Metadata {
    const metadata = new Metadata();
    for (const name of FORWARDED_HEADERS) {
      const value = req.headers[name];
      if (typeof value === "string") metadata.set(name, value);
    }
    return metadata;
  }

  /** The body's lines; a line longer than the JSON cap is refused before it is buffered whole. */
  async function* linesOf(req: IncomingMessage): AsyncGenerator<string> {
    const decoder = new StringDecoder("utf8");
    let pending = "";
    for await (const chunk of req as AsyncIterable<Buffer>) {
      pending += decoder.write(chunk);
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        yield pending.slice(0, nl);
        pending = pending.slice(nl + 1);
      }
      if (pending.length > maxBodyBytes) throw new BridgeError(status.RESOURCE_EXHAUSTED, `a request line is longer than ${maxBodyBytes} bytes`);
    }
    yield pending + decoder.end();
  }

  /** Writes each JSON line of the body to a client stream (blank lines are skipped). */
  async function pipeLines(req: IncomingMessage, method: DescMethod, call: ClientWritableStream<Buffer>) {
    for await (const line of linesOf(req)) {
      if (line.trim() === "") continue;
      if (!call.write(encode(method, line))) await new Promise((resolve) => call.once("drain", resolve));
    }
    call.end();
  }

  /** Relays a response stream as server-sent events; an error after the first event ends it as `event: error`. */
  function streamEvents(res: ServerResponse, method: DescMethod, call: ClientReadableStream<Buffer>) {
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    };
    const keepAlive = setInterval(() => {
      start();
      res.write(": keep-alive\n\n");
    }, opts.sseKeepAliveMs);
    const stop = () => clearInterval(keepAlive);
    res.on("close", () => {
      stop();
      call.cancel();
    });
    call.on("data", (bytes: Buffer) => {
      start();
      res.write(`data: ${JSON.stringify(decode(method, bytes))}\n\n`);
    });
    call.on("error", (err: ServiceError) => {
      stop();
      if (err.code === status.CANCELLED && res.destroyed) return;
      if (!started) return sendStatus(res, grpcStatus(err));
      res.end(`event: error\ndata: ${JSON.stringify(grpcStatus(err))}\n\n`);
    });
    call.on("end", () => {
      stop();
      start();
      res.end();
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? "/").split("?")[0]!;
    if (req.method === "GET" && path === "/openapi.json") return sendJson(res, 200, opts.openapi);
    const method = routes.get(path);
    if (!method) throw new BridgeError(status.UNIMPLEMENTED, `no RPC at ${path}; see /openapi.json`);
    if (req.method !== "POST") throw new BridgeError(status.UNIMPLEMENTED, `${path} takes POST`, 405);
    const metadata = metadataOf(req);
    const streamsIn = method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming";
    const streamsOut = method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";

    if (!streamsIn && !streamsOut) {
      const request = encode(method, await readBody(req));
      const response = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(path, identity, identity, request, metadata, (err, value) => (err ? reject(err) : resolve(value!))),
      );
      return sendJson(res, 200, decode(method, response));
    }
    if (!streamsIn) {
      const request = encode(method, await readBody(req));
      return streamEvents(res, method, client.makeServerStreamRequest(path, identity, identity, request, metadata));
    }
    if (!streamsOut) {
      let call!: ClientWritableStream<Buffer>;
      const response = new Promise<Buffer>((resolve, reject) => {
        call = client.makeClientStreamRequest(path, identity, identity, metadata, (err, value) => (err ? reject(err) : resolve(value!)));
      });
      // A bad line cancels the call: its BridgeError is the answer, not the CANCELLED that follows.
      // A call the server ends early (e.g. UNAUTHENTICATED) answers at once, without reading the rest.
      const piping = pipeLines(req, method, call).catch((err: unknown) => {
        call.cancel();
        throw err;
      });
      piping.catch(() => undefined);
      response.catch(() => undefined);
      await Promise.race([piping, response]);
      return sendJson(res, 200, decode(method, await response));
    }
    const call = client.makeBidiStreamRequest(path, identity, identity, metadata);
    streamEvents(res, method, call);
    await pipeLines(req, method, call);
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof BridgeError && err.httpStatus) return sendJson(res, err.httpStatus, statusJson(err.code, err.message), { allow: "POST" });
      if (err instanceof BridgeError) return sendStatus(res, statusJson(err.code, err.message));
      if (typeof (err as ServiceError).code === "number" && "metadata" in (err as object)) return sendStatus(res, grpcStatus(err as ServiceError));
      sendStatus(res, statusJson(status.INTERNAL, "internal error"));
    });
  };
  const server = opts.tls ? createTlsServer(readContext(opts.tls), listener) : createPlainServer(listener);
  const stopWatching = opts.tls ? watchTls(opts.tls, (context) => (server as TlsServer).setSecureContext(context)) : () => undefined;
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve((server.address() as { port: number }).port));
  });
  return {
    port,
    server,
    close: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        stopWatching();
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(force);
          client.close();
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
