export * from "./chunker.js";
export * from "./faiss.js";
