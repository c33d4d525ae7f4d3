export * from "./chunker.js";
export * from "./faiss.js";
export * from "./store.js";
export * from "./retrieve.js";
export * from "./build-knowledge-store.js";
export * from "./query-knowledge-store.js";
export * from "./evaluate-knowledge-store.js";
export type { ModeReport, QueryOutcome, RetrievalEvaluation, RetrievalScores } from "./evaluate.js";
