import { readFileSync } from "node:fs";
import { credentials, type ChannelCredentials } from "@grpc/grpc-js";

/** TLS to the gateway: PEM contents; no `ca` = the system's roots; `cert` + `key` = a client certificate (mutual TLS). */
export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface ClientOptions {
  /** Connect with TLS; plaintext when unset. */
  tls?: ClientTls;
}

/** Reads the PEM files of a TLS connection (paths as a CLI or config names them). */
export function tlsFromFiles(files: { caFile?: string; certFile?: string; keyFile?: string }): ClientTls {
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) throw new Error("a client certificate needs both its cert and its key file");
  return {
    ...(files.caFile ? { ca: readFileSync(files.caFile) } : {}),
    ...(files.certFile ? { cert: readFileSync(files.certFile) } : {}),
    ...(files.keyFile ? { key: readFileSync(files.keyFile) } : {}),
  };
}

/** Channel credentials for the options: TLS (with a CA and client certificate when given) or plaintext. */
export function channelCredentials(opts: ClientOptions = {}): ChannelCredentials {
  if (!opts.tls) return credentials.createInsecure();
  return credentials.createSsl(opts.tls.ca ?? null, opts.tls.key ?? null, opts.tls.cert ?? null);
}
