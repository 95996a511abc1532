export * from "./layout.js";
export * from "./index-file.js";
export * from "./events.js";
export * from "./publish.js";
export * from "./model-source.js";
export * from "./watcher.js";
export * from "./policy.js";
export * from "./policy-store.js";
