import { readFileSync } from "node:fs";
import type { SecureContextOptions } from "node:tls";
import { experimental, ServerCredentials } from "@grpc/grpc-js";

/** The gateway's certificate files; TLS is on when `certFile` is set, mutual TLS when `clientCaFile` is. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA bundle client certificates must chain to; set = every client must present one. */
  clientCaFile?: string;
  /** How often the files are re-read; a changed certificate serves new connections. */
  reloadMs: number;
}

/** TLS settings from the config (undefined = plaintext); a cert without a key is a config error. */
export function tlsFilesOf(config: {
  TLS_CERT_FILE?: string;
  TLS_KEY_FILE?: string;
  TLS_CLIENT_CA_FILE?: string;
  TLS_RELOAD_SECONDS: number;
}): TlsFiles | undefined {
  if (!config.TLS_CERT_FILE && !config.TLS_KEY_FILE) {
    if (config.TLS_CLIENT_CA_FILE) throw new Error("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE");
    return undefined;
  }
  if (!config.TLS_CERT_FILE || !config.TLS_KEY_FILE) throw new Error("set both TLS_CERT_FILE and TLS_KEY_FILE (or neither)");
  return {
    certFile: config.TLS_CERT_FILE,
    keyFile: config.TLS_KEY_FILE,
    ...(config.TLS_CLIENT_CA_FILE ? { clientCaFile: config.TLS_CLIENT_CA_FILE } : {}),
    reloadMs: config.TLS_RELOAD_SECONDS * 1000,
  };
}

/** gRPC server credentials that re-read the files every `reloadMs` (grpc-js's file watcher). */
export function grpcServerCredentials(files: TlsFiles | undefined): ServerCredentials {
  if (!files) return ServerCredentials.createInsecure();
  readContext(files); // unreadable files fail the start, not the first handshake
  const identity = new experimental.FileWatcherCertificateProvider({
    certificateFile: files.certFile,
    privateKeyFile: files.keyFile,
    refreshIntervalMs: files.reloadMs,
  });
  const clientCa = files.clientCaFile
    ? new experimental.FileWatcherCertificateProvider({ caCertificateFile: files.clientCaFile, refreshIntervalMs: files.reloadMs })
    : undefined;
  return experimental.createCertificateProviderServerCredentials(identity, clientCa ?? null, clientCa !== undefined);
}

/** The files' contents as Node TLS options (client certificates required with a client CA). */
export function readContext(files: TlsFiles): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  const clientCa = files.clientCaFile ? readFileSync(files.clientCaFile) : undefined;
  return {
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    ...(clientCa ? { ca: clientCa } : {}),
    requestCert: clientCa !== undefined,
    rejectUnauthorized: clientCa !== undefined,
  };
}

/**
 * Re-reads the files every `reloadMs` and calls `apply` when any changed (e.g. a renewed
 * certificate mounted from a Secret). A read that fails (a half-written file) keeps the current
 * context and is tried again next time. Returns the stop function.
 */
export function watchTls(files: TlsFiles, apply: (context: SecureContextOptions) => void): () => void {
  const fingerprint = (c: SecureContextOptions) => [c.cert, c.key, c.ca].map((b) => (b ? Buffer.from(b as Buffer).toString("base64") : "")).join("|");
  let last = fingerprint(readContext(files));
  const timer = setInterval(() => {
    try {
      const next = readContext(files);
      const print = fingerprint(next);
      if (print === last) return;
      apply(next);
      last = print;
    } catch {
      // Keep serving the current certificate; the next tick reads again.
    }
  }, files.reloadMs);
  timer.unref();
  return () => clearInterval(timer);
}
