export * from "./metrics.js";
export * from "./bootstrap.js";
