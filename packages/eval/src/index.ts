export * from "./oracle.js";
export * from "./permutation.js";
