import { credentials } from "@grpc/grpc-js";
import type { GatewayConfig } from "../config.js";
import type { Descriptors } from "../descriptors.js";
import { tlsFilesOf } from "../tls.js";
import type { HttpBridgeOptions } from "./bridge.js";
import { OPENAPI_INFO, openapiOf } from "./openapi.js";

/** The HTTP/JSON bridge's settings from the gateway's config (same TLS files as gRPC); it relays to `internalAddress`. */
export function httpBridgeOptions(config: GatewayConfig, descriptors: Descriptors, internalAddress: string): HttpBridgeOptions {
  const tls = tlsFilesOf(config);
  return {
    host: config.HTTP_JSON_HOST,
    port: config.HTTP_JSON_PORT,
    descriptors,
    grpcTarget: internalAddress,
    grpcCredentials: credentials.createInsecure(),
    maxMessageBytes: config.MAX_MESSAGE_BYTES,
    sseKeepAliveMs: config.SSE_KEEPALIVE_SECONDS * 1000,
    openapi: openapiOf(descriptors, OPENAPI_INFO),
    ...(tls ? { tls } : {}),
  };
}
