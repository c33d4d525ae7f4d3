export * from "./metrics.js";
export * from "./bootstrap.js";
export * from "./test-data.js";
export * from "./score.js";
export * from "./baseline.js";
export * from "./evaluate.js";
export * from "./report.js";
export * from "./run.js";
