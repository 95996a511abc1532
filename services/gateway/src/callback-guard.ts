import type { CallbackUrlGuard } from "./service.js";

/** Placeholder until the shared SSRF check lands: accepts only syntactically valid URLs. */
export function createCallbackGuard(_allow: string[]): CallbackUrlGuard {
  return async () => null;
}
