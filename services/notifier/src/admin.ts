/**
 * Admin routes for the ops server (bearer token, constant-time compare):
 * - `GET  /admin/dead-letters?offset=0&limit=100` → `{ total, items }`, newest first;
 * - `POST /admin/dead-letters/<messageId>/replay` → 202; re-enables the endpoint and re-enqueues
 *   the message with a fresh retry schedule (same `webhook-id`); 404 when unknown;
 * - `GET  /admin/deliveries/<messageId>` → `{ attempts }`.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { CallbackTask } from "@rebeca/contracts";
import type { DeadLetterStore } from "./dead-letters.js";
import type { DeliveryAttempt } from "./deliveries.js";
import type { EndpointStore } from "./endpoints.js";

/** Compares a presented bearer token with the configured one in constant time (hashes equalize length). */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash("sha256").update(presented).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b) && expected.length > 0;
}

export interface AdminDeps {
  /** Unset: every /admin route answers 404. */
  token: string | undefined;
  deadLetters: DeadLetterStore;
  endpoints: EndpointStore;
  replay: (task: CallbackTask) => Promise<void>;
  listDeliveries: (messageId: string) => Promise<DeliveryAttempt[]>;
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** An `extra` route handler for startOpsServer; returns false for paths it does not own. */
export function createAdminRoutes(deps: AdminDeps) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? "/", "http://ops");
    if (!url.pathname.startsWith("/admin/")) return false;
    if (!deps.token) return false;
    const auth = req.headers.authorization ?? "";
    const presented = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    if (!tokenMatches(presented, deps.token)) {
      res.writeHead(401, { "www-authenticate": 'Bearer realm="rebeca-notifier"' });
      res.end();
      return true;
    }
    let parts: string[];
    try {
      parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    } catch {
      // A malformed %-escape is the caller's mistake (400), not a server error.
      json(res, 400, { error: "malformed percent-encoding in path" });
      return true;
    }
    if (req.method === "GET" && parts.length === 2 && parts[1] === "dead-letters") {
      const offset = clampInt(url.searchParams.get("offset"), 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = clampInt(url.searchParams.get("limit"), 100, 1, 1000);
      json(res, 200, await deps.deadLetters.list(offset, limit));
      return true;
    }
    if (req.method === "POST" && parts.length === 4 && parts[1] === "dead-letters" && parts[3] === "replay") {
      const letter = await deps.deadLetters.get(parts[2]!);
      if (!letter) {
        json(res, 404, { error: "no such dead letter" });
        return true;
      }
      await deps.endpoints.enable(letter.task.tenant, letter.task.url);
      // Enqueue before removing: a crash in between leaves the letter to be replayed again, not lost.
      await deps.replay(letter.task);
      await deps.deadLetters.removeIfUnchanged(letter);
      json(res, 202, { replayed: letter.task.messageId });
      return true;
    }
    if (req.method === "GET" && parts.length === 3 && parts[1] === "deliveries") {
      json(res, 200, { attempts: await deps.listDeliveries(parts[2]!) });
      return true;
    }
    json(res, 404, { error: "not found" });
    return true;
  };
}

function clampInt(v: string | null, def: number, min: number, max: number): number {
  const n = v === null ? def : Number(v);
  return Number.isInteger(n) ? Math.min(max, Math.max(min, n)) : def;
}
