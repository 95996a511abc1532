import { checkCallbackUrl, parseAllowList } from "@rebeca/platform";
import type { CallbackUrlGuard } from "./ports.js";

/**
 * Refuses callback URLs that resolve to loopback, private, link-local or metadata addresses
 * unless allowlisted. The notifier checks again at delivery (DNS may change in between).
 */
export function createCallbackGuard(allowEntries: string[]): CallbackUrlGuard {
  const allow = parseAllowList(allowEntries);
  return async (url) => {
    const check = await checkCallbackUrl(url, { allow });
    return check.ok ? null : check.reason;
  };
}
