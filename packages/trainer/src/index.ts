export * from "./protocol.js";
export * from "./worker-client.js";
export * from "./training-data.js";
export * from "./train.js";
export * from "./model-runner.js";
export * from "./tiny.js";
export * from "./output-folder.js";
