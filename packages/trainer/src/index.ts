export * from "./training-data.js";
export * from "./train.js";
export * from "./tiny.js";
export * from "./output-folder.js";
export * from "./scale.js";
