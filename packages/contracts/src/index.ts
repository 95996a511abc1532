export * from "./jobs.js";
export * from "./queues.js";
export * from "./payloads.js";
export * from "./keys.js";
export * from "./ids.js";
export * from "./batches.js";
export * from "./catalog.js";
