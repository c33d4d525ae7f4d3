export * from "./catalogue.js";
export { pullModel, describeSource, type PullModelInput, type PullResult, type PullStatus } from "./pull.js";
export { listModels, type ModelList, type ModelListing } from "./list.js";
export { llamaCppSource, cacheRoot, type LlamaCppSource, type LlamaCppSourceOptions } from "./llama-cpp.js";
export { adapterBase, type AdapterBase } from "./adapter-base.js";
export { exportAdapter, defaultExportPath, type ExportAdapterInput, type ExportAdapterResult, type ExportFormat, type ExportQuant } from "./export.js";
export { resolveLocalModel, runsOnLlamaCpp, type LocalModel } from "./resolve.js";
export { adapterCard, promoteModel, rollbackModel, showModel, stageOf, type PromoteInput, type StageChange } from "./versions.js";
