export * from "./schema.js";
export * from "./store.js";
export * from "./aggregate.js";
export * from "./import.js";
export * from "./export.js";
export * from "./redact.js";
export * from "./add.js";
export { SCHEMA_VERSION } from "./migrations.js";
