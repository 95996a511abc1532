export * from "./config.js";
export * from "./logger.js";
export * from "./redis.js";
export * from "./metrics.js";
export * from "./http.js";
export * from "./shutdown.js";
export * from "./queues.js";
export * from "./stage-worker.js";
