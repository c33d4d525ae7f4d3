export * from "./embedder.js";
export * from "./cache.js";
export * from "./model-source.js";
export * from "./similarity.js";
