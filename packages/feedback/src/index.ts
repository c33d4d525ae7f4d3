export * from "./schema.js";
export * from "./store.js";
export * from "./aggregate.js";
export * from "./import.js";
export * from "./export.js";
export * from "./redact.js";
export * from "./add.js";
export { SCHEMA_VERSION } from "./migrations.js";
// The operations: what `collect` and any other front end call.
export * from "./import-feedback.js";
export * from "./add-feedback.js";
export * from "./review-queue.js";
export * from "./export-feedback.js";
export * from "./feedback-stats.js";
export * from "./interactions.js";
