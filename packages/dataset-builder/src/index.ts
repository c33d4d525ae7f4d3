export * from "./schema.js";
export * from "./split.js";
export * from "./drift.js";
export * from "./build.js";
export * from "./build-training-pairs.js";
export { readPreviousBuild, SPLITS_LEDGER_FILE, type PreviousBuild } from "./previous.js";
