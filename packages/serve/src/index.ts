export { buildServeApp, INTERACTION_ID_HEADER, TASK_HEADER, type ServeAppOptions } from "./app.js";
export { ServedModels, type ServedModel, type ServedModelsOptions } from "./served-models.js";
export { startServer, type RunningServer, type ServeInput } from "./serve.js";
export * from "./schemas.js";
export { FineTuningJobs, JobRequestSchema, JobSchema, type Job, type JobRequest } from "./jobs.js";
export { resolveServedModels, resolveAdapter } from "./resolve.js";
