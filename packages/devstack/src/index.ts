export * from "./process.js";
export * from "./ports.js";
export * from "./redis.js";
export * from "./redis-sentinel.js";
export * from "./s3.js";
export * from "./services.js";
export * from "./webhook-receiver.js";
export * from "@rebeca/client";
export * from "./stack.js";
export { parseNpy, type NpyArray } from "@rebeca/eval";

export * from "./gallery.js";
export * from "./latent.js";
