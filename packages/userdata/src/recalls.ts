/**
 * "Delete your copies": what Rebeca delivered (callbacks, images a receiver fetched) cannot be
 * recalled, so an erasure tells every endpoint that was given callbacks of the erased users' jobs
 * and batches which of them to delete copies of, in `user_data.erased` callbacks (pure part).
 */
import { USER_DATA_ERASED, webhookBody } from "@rebeca/contracts";

/** An erased job or batch that had a callback URL: its endpoint received its events and outputs' links. */
export interface Recall {
  url: string;
  kind: "job" | "batch";
  id: string;
}

/** Ids per `user_data.erased` message: keeps each under ~20 KB (thin payloads). */
const IDS_PER_MESSAGE = 400;

export const recallMember = (r: Recall): string => JSON.stringify([r.url, r.kind, r.id]);
export function parseRecall(member: string): Recall {
  const [url, kind, id] = JSON.parse(member) as [string, Recall["kind"], string];
  return { url, kind, id };
}

/**
 * The `user_data.erased` messages of an erasure: per endpoint, pages of the job and batch ids it
 * must delete copies of, each with a stable id (`<erasure>-erased-<n>`) so a repeat is deduplicated
 * by the notifier. No user ids: the tenant knows whom it erased, the receiver needs only the ids.
 */
export function recallMessages(erasureId: string, time: string, recalls: readonly Recall[]): { eventId: string; url: string; body: string }[] {
  const byUrl = new Map<string, Recall[]>();
  for (const r of [...recalls].sort((a, b) => (a.url + a.id < b.url + b.id ? -1 : 1))) byUrl.set(r.url, [...(byUrl.get(r.url) ?? []), r]);
  const out: { eventId: string; url: string; body: string }[] = [];
  for (const [url, list] of byUrl) {
    for (let i = 0; i < list.length; i += IDS_PER_MESSAGE) {
      const page = list.slice(i, i + IDS_PER_MESSAGE);
      const data = {
        deletion_id: erasureId,
        job_ids: page.filter((r) => r.kind === "job").map((r) => r.id),
        batch_ids: page.filter((r) => r.kind === "batch").map((r) => r.id),
        action:
          "delete every copy you keep of these jobs' and batches' outputs for the erased users (images, embeddings, manifest lines); Rebeca has deleted its own",
      };
      out.push({ eventId: `${erasureId}-erased-${out.length}`, url, body: webhookBody(USER_DATA_ERASED, time, data) });
    }
  }
  return out;
}
