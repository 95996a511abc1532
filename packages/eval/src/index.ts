export * from "./oracle.js";
export * from "./permutation.js";
export * from "./retrieval.js";
export * from "./report.js";
export * from "./html.js";
export * from "./npy.js";
export * from "./frontier.js";
export * from "./frontier-report.js";
