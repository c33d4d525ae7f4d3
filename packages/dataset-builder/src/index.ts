export * from "./schema.js";
export * from "./split.js";
export * from "./drift.js";
export * from "./build.js";
