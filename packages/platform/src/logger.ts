import { pino, type Logger } from "pino";

export type { Logger };

/** Structured JSON logger bound to a service name. Secrets are redacted by path. */
export function createLogger(service: string, level = "info"): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    redact: { paths: ["apiKey", "secret", "authorization", "*.secret", "*.apiKey", "headers.authorization"], censor: "[redacted]" },
  });
}
