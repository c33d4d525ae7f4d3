export * from "./errors.js";
export * from "./paths.js";
export * from "./config.js";
export * from "./jsonl.js";
export * from "./progress.js";
export * from "./output.js";
export * from "./context.js";
export * from "./prompt.js";
