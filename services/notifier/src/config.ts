/** The notifier's configuration, parsed in main with loadConfig. */
import { baseConfigSchema, env } from "@rebeca/platform";
import { z } from "zod";
import { parseWebhookSecrets } from "./secrets.js";

export const notifierConfigSchema = baseConfigSchema
  .extend({
    /** Deliveries in flight per process; a slow endpoint holds at most this many slots. */
    CALLBACK_CONCURRENCY: env.int(32).pipe(z.number().int().min(1).max(1000)),
    /** Whole-request timeout of one delivery (connect to response headers), ms; spec says 15–30 s. */
    CALLBACK_TIMEOUT_MS: env.int(15000).pipe(z.number().int().min(1)),
    /** Multiplies the retry schedule (5 s … 24 h); tests set 0.001 or less so 5 s becomes 5 ms. */
    CALLBACK_RETRY_SCALE: env.num(1).pipe(z.number().positive().max(10)),
    /** Relative jitter on each retry delay (0.1 = ±10 %). */
    CALLBACK_RETRY_JITTER: env.num(0.1).pipe(z.number().min(0).max(0.5)),
    /** Largest Retry-After honoured (seconds, not scaled); longer values are cut to this. */
    CALLBACK_RETRY_AFTER_MAX_S: env.int(86400).pipe(z.number().int().min(0)),
    /** Hosts or CIDRs exempt from the SSRF guard, comma-separated (e.g. `127.0.0.1,localhost`). */
    CALLBACK_ALLOW_HOSTS: env.list(""),
    /** How long delivery attempts stay readable in `deliveries:<messageId>`, seconds. */
    CALLBACK_DELIVERIES_TTL_S: env.int(7 * 86400).pipe(z.number().int().min(60)),
    /** Tenant secrets as JSON: `{"tenantA": ["whsec_new", "whsec_old"], "*": "whsec_fallback"}`. */
    WEBHOOK_SECRETS: z.string().optional(),
    /** Path of a file holding the same JSON (a mounted Kubernetes Secret); used when WEBHOOK_SECRETS is unset. */
    WEBHOOK_SECRETS_FILE: z.string().optional(),
    /** Bearer token of the admin routes (/admin/...); unset disables them. At least 16 characters. */
    ADMIN_TOKEN: z.string().min(16).optional(),
    /** Consumer group reading the outbox; every notifier replica joins the same group. */
    OUTBOX_GROUP: env.str("notifier"),
    /** This replica's consumer name; empty means `<hostname>-<pid>`. */
    OUTBOX_CONSUMER: env.str(""),
    /** Outbox entries read per XREADGROUP. */
    OUTBOX_BATCH: env.int(100).pipe(z.number().int().min(1)),
    /** XREADGROUP block time, ms; also bounds how long stopping the dispatcher takes. */
    OUTBOX_BLOCK_MS: env.int(1000).pipe(z.number().int().min(1)),
    /** Outbox entries pending this long (their dispatcher crashed) are claimed by another, ms. */
    OUTBOX_CLAIM_IDLE_MS: env.int(60000).pipe(z.number().int().min(1)),
  })
  .superRefine((c, ctx) => {
    if (c.WEBHOOK_SECRETS === undefined && c.WEBHOOK_SECRETS_FILE === undefined) {
      ctx.addIssue({ code: "custom", path: ["WEBHOOK_SECRETS"], message: "set WEBHOOK_SECRETS or WEBHOOK_SECRETS_FILE" });
    }
    if (c.WEBHOOK_SECRETS !== undefined) {
      try {
        parseWebhookSecrets(c.WEBHOOK_SECRETS);
      } catch (err) {
        ctx.addIssue({ code: "custom", path: ["WEBHOOK_SECRETS"], message: (err as Error).message });
      }
    }
  });

export type NotifierConfig = z.infer<typeof notifierConfigSchema>;
