export * from "./protocol.js";
export * from "./worker-client.js";
export * from "./model-runner.js";
