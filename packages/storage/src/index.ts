export * from "./blob-store.js";
export * from "./s3.js";
export * from "./local.js";
export * from "./config.js";
export * from "./s3-put.js";
export * from "./sigv4.js";
