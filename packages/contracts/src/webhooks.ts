/**
 * The Standard Webhooks body every Rebeca callback carries, `{type, timestamp, data}`: built by the
 * notifier for job and batch events and by the decode stage for per-user batch events.
 */
export interface WebhookEnvelope<D> {
  /** The event type (`job.succeeded`, `batch.completed`, `user.failed`, ...). */
  type: string;
  /** When the event happened (ISO 8601). */
  timestamp: string;
  /** Ids, state and links; never image bytes (thin payloads). */
  data: D;
}

/** The `webhook-id` of an event's callback: stable, so every retry and replay carries the same id. */
export function messageIdOf(tenant: string, eventId: string): string {
  return `msg_${tenant}_${eventId}`;
}

/** The JSON body of a callback; built once so every retry sends the same bytes. */
export function webhookBody<D>(type: string, timestamp: string, data: D): string {
  return JSON.stringify({ type, timestamp, data } satisfies WebhookEnvelope<D>);
}
