export * from "./chunker.js";
export * from "./faiss.js";
export * from "./store.js";
export * from "./retrieve.js";
