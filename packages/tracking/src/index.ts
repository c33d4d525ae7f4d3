export * from "./mlflow-client.js";
export * from "./tracked-run.js";
