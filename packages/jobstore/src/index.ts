export * from "./records.js";
export * from "./store.js";
export * from "./batches.js";
export * from "./stores.js";
export * from "./retention.js";
export * from "./deadlines.js";
export * from "./shard-progress.js";
