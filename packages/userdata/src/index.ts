export * from "./keys.js";
export * from "./lines.js";
export * from "./user-index.js";
export * from "./eraser.js";
export * from "./erasures.js";
export * from "./runner.js";
export * from "./usage.js";
export * from "./image-reservations.js";
