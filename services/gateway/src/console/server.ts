/**
 * The web console on the gateway's admin HTTP port: batches with progress and ETA, a per-user
 * gallery, evaluation reports (written beside a batch's manifest by `rebeca eval --upload`) and,
 * for the admin, bull-board's queue view. Every route but /login needs a session or a Bearer key.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { objectKeys, redisKeys, type BatchRecord, type UserResult } from "@rebeca/contracts";
import type { Logger } from "@rebeca/platform";
import { BlobNotFoundError, type BlobStore } from "@rebeca/storage";
import { etaSeconds } from "../batch-mapping.js";
import { canSee, cookieValue, createKeyCheck, createSessionStore, type ConsoleKeys, type Principal } from "./auth.js";
import { batchesPage, batchPage, galleryPage, loginPage, layout, type EvalSummary } from "./pages.js";
import { usagePage } from "./usage-page.js";
import { createUsageStore, dayOf, daysBetween } from "@rebeca/userdata";

export interface ConsoleDeps {
  host: string;
  port: number;
  keys: ConsoleKeys;
  redis: Redis;
  prefix: string;
  batches: { get(batchId: string): Promise<BatchRecord | null>; list(tenant: string, pageSize: number): Promise<{ records: BatchRecord[] }> };
  blobs: BlobStore;
  queues: () => Queue[];
  sessionTtlSeconds: number;
  /** Set the cookie's Secure flag (behind TLS). */
  secureCookie: boolean;
  /** Users listed on a batch page; the manifest is read only for batches up to maxManifestUsers. */
  listUsers?: number;
  maxManifestUsers?: number;
  log: Logger;
}

const COOKIE = "rebeca_console";

export async function startConsole(d: ConsoleDeps): Promise<{ port: number; close(): Promise<void> }> {
  const check = createKeyCheck(d.keys);
  const sessions = createSessionStore(d.redis, d.prefix, d.sessionTtlSeconds);
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", false);
  const who = (res: Response) => res.locals.principal as Principal;
  const html = (res: Response, status: number, body: string) => res.status(status).type("html").set("cache-control", "no-store").send(body);

  app.use((_req, res, next) => {
    res.set({ "x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" });
    next();
  });
  app.get("/login", (_req, res) => html(res, 200, loginPage()));
  app.post("/login", express.urlencoded({ extended: false, limit: "4kb" }), async (req, res, next) => {
    try {
      const key = typeof req.body?.key === "string" ? req.body.key.trim() : "";
      const principal = key ? check(key) : null;
      if (!principal) return html(res, 401, loginPage("That key is not valid."));
      const id = await sessions.create(principal);
      res.cookie(COOKIE, id, { httpOnly: true, sameSite: "strict", secure: d.secureCookie, path: "/", maxAge: d.sessionTtlSeconds * 1000 });
      res.redirect(303, "/batches");
    } catch (err) {
      next(err);
    }
  });

  // Everything below needs a principal: a session cookie (browsers) or `Authorization: Bearer <key>` (scripts).
  app.use(async (req: Request, res: Response, next: NextFunction) => {
    try {
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.get("authorization") ?? "")?.[1];
      const sid = cookieValue(req.get("cookie"), COOKIE);
      const principal = bearer ? check(bearer) : sid ? await sessions.get(sid) : null;
      if (!principal) {
        if (req.method === "GET" && req.accepts("html") && !bearer) return res.redirect(303, "/login");
        return res.status(401).type("text").send("unauthenticated\n");
      }
      res.locals.principal = principal;
      next();
    } catch (err) {
      next(err);
    }
  });

  app.post("/logout", async (req, res, next) => {
    try {
      const sid = cookieValue(req.get("cookie"), COOKIE);
      if (sid) await sessions.destroy(sid);
      res.clearCookie(COOKIE, { path: "/" });
      res.redirect(303, "/login");
    } catch (err) {
      next(err);
    }
  });

  app.get("/", (_req, res) => res.redirect(303, "/batches"));

  app.get("/batches", async (_req, res, next) => {
    try {
      const p = who(res);
      const tenants = p.role === "admin" ? (await d.redis.smembers(redisKeys(d.prefix).tenants())).sort() : [p.tenant];
      const lists = await Promise.all(tenants.map((t) => d.batches.list(t, 50)));
      const now = Date.now();
      const all = lists
        .flatMap((l) => l.records)
        .sort((a, b) => b.createTime.localeCompare(a.createTime))
        .slice(0, 100)
        .map((record) => ({ record, eta: etaSeconds(record, now) }));
      html(res, 200, batchesPage(p, all));
    } catch (err) {
      next(err);
    }
  });

  app.get("/usage", async (_req, res, next) => {
    try {
      const p = who(res);
      const tenants = p.role === "admin" ? (await d.redis.smembers(redisKeys(d.prefix).tenants())).sort() : [p.tenant];
      const usage = createUsageStore(d.redis, d.prefix);
      const today = dayOf(new Date());
      const days = daysBetween(dayOf(new Date(Date.now() - 29 * 86_400_000)), today);
      html(res, 200, usagePage(p, await Promise.all(tenants.map(async (tenant) => ({ tenant, days: await usage.read(tenant, days) })))));
    } catch (err) {
      next(err);
    }
  });

  /** The batch if this principal may see it (else a 404 is sent: other tenants' ids are not confirmed). */
  async function visibleBatch(req: Request, res: Response): Promise<BatchRecord | null> {
    const tenant = String(req.params.tenant);
    const b = await d.batches.get(String(req.params.batchId));
    if (!b || b.tenant !== tenant || !canSee(who(res), tenant)) {
      html(res, 404, layout("Not found", "<h1>Not found</h1>", who(res)));
      return null;
    }
    return b;
  }

  const reportKey = (b: BatchRecord, file: string) => objectKeys.evalReport(b.tenant, b.batchId, file);

  app.get("/batches/:tenant/:batchId", async (req, res, next) => {
    try {
      const b = await visibleBatch(req, res);
      if (!b) return;
      const limit = d.listUsers ?? 200;
      let users: { position: number; userId: string; images: number; error?: string }[] = [];
      let more = false;
      if (b.state === "completed" && b.counts.total <= (d.maxManifestUsers ?? 20_000)) {
        const text = new TextDecoder().decode(await d.blobs.get(objectKeys.batchManifest(b.tenant, b.batchId)));
        const lines = text.split("\n").filter((l) => l.trim());
        more = lines.length > limit;
        users = lines.slice(0, limit).map((l) => {
          const r = JSON.parse(l) as UserResult;
          return { position: r.position, userId: r.user_id, images: r.images?.length ?? 0, ...(r.error ? { error: r.error.code } : {}) };
        });
      }
      let evaluation: EvalSummary | undefined;
      try {
        const report = JSON.parse(new TextDecoder().decode(await d.blobs.get(reportKey(b, "report.json")))) as { runs: (EvalSummary & { batchId: string })[] };
        evaluation = report.runs.find((r) => r.batchId === b.batchId);
      } catch (err) {
        if (!(err instanceof BlobNotFoundError)) throw err;
      }
      html(res, 200, batchPage(who(res), b, etaSeconds(b, Date.now()), users, more, evaluation));
    } catch (err) {
      next(err);
    }
  });

  app.get("/batches/:tenant/:batchId/users/:position", async (req, res, next) => {
    try {
      const b = await visibleBatch(req, res);
      if (!b) return;
      const position = Number(req.params.position);
      if (!Number.isInteger(position) || position < 0 || position >= b.counts.total)
        return html(res, 404, layout("Not found", "<h1>No such user position</h1>", who(res)));
      // The user id is in the manifest; a large batch's gallery shows the position instead of reading it.
      let userId = `position ${position}`;
      if (b.state === "completed" && b.counts.total <= (d.maxManifestUsers ?? 20_000)) {
        const text = new TextDecoder().decode(await d.blobs.get(objectKeys.batchManifest(b.tenant, b.batchId)));
        const line = text
          .split("\n")
          .filter((l) => l.trim())
          .map((l) => JSON.parse(l) as UserResult)
          .find((r) => r.position === position);
        if (line) userId = line.user_id;
      }
      html(res, 200, galleryPage(who(res), b, position, userId, b.spec.numImages));
    } catch (err) {
      next(err);
    }
  });

  app.get("/batches/:tenant/:batchId/report", async (req, res, next) => {
    try {
      const b = await visibleBatch(req, res);
      if (!b) return;
      const body = await d.blobs.get(reportKey(b, "report.html")).catch((err: Error) => {
        if (err instanceof BlobNotFoundError) return null;
        throw err;
      });
      if (!body)
        return html(res, 404, layout("No report", `<h1>No evaluation report</h1><p>Run <code>rebeca eval ${b.batchId} --upload</code>.</p>`, who(res)));
      // The report is self-contained: no scripts, inline styles, images as data URIs.
      res
        .status(200)
        .type("html")
        .set({ "content-security-policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'", "cache-control": "no-store" })
        .send(Buffer.from(body));
    } catch (err) {
      next(err);
    }
  });

  app.get("/objects/:tenant/:batchId/:position/:file", async (req, res, next) => {
    try {
      const b = await visibleBatch(req, res);
      if (!b) return;
      const m = /^(\d+)\.png$/.exec(String(req.params.file));
      const position = Number(req.params.position);
      if (!m || !Number.isInteger(position) || position < 0) return res.status(404).end();
      const body = await d.blobs.get(objectKeys.batchImage(b.tenant, b.batchId, position, Number(m[1]))).catch((err: Error) => {
        if (err instanceof BlobNotFoundError) return null;
        throw err;
      });
      if (!body) return res.status(404).end();
      res.status(200).type("png").set("cache-control", "private, max-age=3600").send(Buffer.from(body));
    } catch (err) {
      next(err);
    }
  });

  // bull-board: the queue view, admin only, read-only (retrying or deleting jobs by hand would
  // bypass the job records' state machine).
  const board = new ExpressAdapter();
  board.setBasePath("/queues");
  createBullBoard({ queues: d.queues().map((q) => new BullMQAdapter(q, { readOnlyMode: true })), serverAdapter: board });
  app.use(
    "/queues",
    (_req, res, next) => {
      if (who(res).role !== "admin") return html(res, 403, layout("Forbidden", "<h1>The queue view needs the admin key</h1>", who(res)));
      next();
    },
    board.getRouter(),
  );

  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    d.log.error({ err: err.message }, "console request failed");
    if (!res.headersSent) res.status(500).type("text").send("internal error\n");
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(d.port, d.host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
