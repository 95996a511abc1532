/** HTTP adapter: POSTs one callback with the SSRF guard on the address actually connected to. */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { BlockedAddressError, checkCallbackUrlSyntax, createGuardedLookup, type AllowList } from "@rebeca/platform";

export interface SendRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface SendResponse {
  status: number;
  headers: IncomingHttpHeaders;
}

/** Role: sends a request; rejects on transport errors, timeouts and refused addresses. */
export interface CallbackSender {
  send(req: SendRequest): Promise<SendResponse>;
  close(): void;
}

/** The request took longer than the delivery timeout. */
export class DeliveryTimeoutError extends Error {
  readonly code = "ETIMEDOUT";
  constructor(ms: number) {
    super(`no response within ${ms} ms`);
    this.name = "DeliveryTimeoutError";
  }
}

/** The URL cannot be delivered to at all (not http/https, not absolute). */
export class InvalidCallbackUrlError extends Error {
  readonly code = "ERR_INVALID_URL";
  constructor(reason: string) {
    super(reason);
    this.name = "InvalidCallbackUrlError";
  }
}

export interface HttpSenderOptions {
  /** Whole-request deadline (connect + response headers), ms. @default 15000 */
  timeoutMs?: number;
  allow: AllowList;
  /** Replaces the guarded DNS lookup (tests); it still has to do its own checking. */
  lookup?: ReturnType<typeof createGuardedLookup>;
  /** Sockets per origin; a slow receiver can hold at most this many. @default 64 */
  maxSocketsPerOrigin?: number;
}

/**
 * A sender over node:http(s). Redirects are not followed (3xx is a failure); IP-literal hosts are
 * checked up front, host names in the socket's lookup so that the checked address is the one used.
 */
export function createHttpSender(options: HttpSenderOptions): CallbackSender {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const lookup = options.lookup ?? createGuardedLookup(options.allow);
  const agentOptions = { keepAlive: true, maxSockets: options.maxSocketsPerOrigin ?? 64 };
  const agents = { http: new HttpAgent(agentOptions), https: new HttpsAgent(agentOptions) };

  return {
    send(req) {
      const checked = checkCallbackUrlSyntax(req.url, options.allow);
      if (!checked.ok) {
        return Promise.reject(checked.problem === "blocked_address" ? new BlockedAddressError(checked.reason) : new InvalidCallbackUrlError(checked.reason));
      }
      const url = checked.url;
      const isHttps = url.protocol === "https:";
      return new Promise<SendResponse>((resolve, reject) => {
        const request = (isHttps ? httpsRequest : httpRequest)(
          url,
          {
            method: "POST",
            headers: { ...req.headers, "content-length": String(Buffer.byteLength(req.body)), "user-agent": "rebeca-notifier/0.1" },
            agent: isHttps ? agents.https : agents.http,
            lookup,
          },
          (res) => {
            clearTimeout(timer);
            // Drain (and bound) the body so the keep-alive socket can be reused.
            const drain = setTimeout(() => res.destroy(), timeoutMs);
            drain.unref();
            res.on("end", () => clearTimeout(drain)).on("error", () => clearTimeout(drain));
            res.resume();
            resolve({ status: res.statusCode ?? 0, headers: res.headers });
          },
        );
        const timer = setTimeout(() => request.destroy(new DeliveryTimeoutError(timeoutMs)), timeoutMs);
        request.on("error", (err) => {
          clearTimeout(timer);
          reject(err);
        });
        request.end(req.body);
      });
    },
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
