/** Public API of the notifier for other services (the gateway) and tests. */
export { checkCallbackUrl, checkCallbackUrlSyntax, classifyAddress, parseAllowList, createGuardedLookup, BlockedAddressError } from "@rebeca/platform";
export { listDeliveries, recordDelivery, type DeliveryAttempt } from "./deliveries.js";
export { parseSecret, signatureHeader, signV1, webhookHeaders } from "./signing.js";
export { RETRY_SCHEDULE_MS, MAX_ATTEMPTS, scheduleDelayMs, nextRetryDelayMs, parseRetryAfter, classifyStatus } from "./schedule.js";
export { messageIdOf, buildCallbackBody, outboxEntryToTask } from "./payload.js";
export { createDeadLetterStore, type DeadLetter, type DeadLetterReason, type DeadLetterStore } from "./dead-letters.js";
export { createEndpointStore, type EndpointStore } from "./endpoints.js";
export { notifierConfigSchema, type NotifierConfig } from "./config.js";
export { createNotifier, type Notifier, type NotifierDeps, type NotifierSettings } from "./notifier.js";
