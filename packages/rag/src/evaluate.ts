import { z } from "zod";
import { InputError, readRecords } from "@ats-lora/core";
import type { KnowledgeStore, RetrievalMode } from "./retrieve.js";

/** One labelled query of a `rag eval --queries` file. */
export const LabelledQuerySchema = z.strictObject({
  query: z.string().trim().min(1),
  /** Source paths (as the store names them, relative to --docs) that answer the query. */
  relevant: z.array(z.string().min(1)).min(1),
  /** Optional group for a breakdown, e.g. exact_term / semantic. */
  kind: z.string().min(1).optional(),
});
export type LabelledQuery = z.infer<typeof LabelledQuerySchema>;

export const RETRIEVAL_MODES: readonly RetrievalMode[] = ["dense", "lexical", "hybrid"];

/** MRR is read over the first 10 passages, whatever k is. */
const MRR_DEPTH = 10;

export interface RetrievalScores {
  queries: number;
  /** Mean share of a query's relevant sources found among the sources of its top-k passages. */
  recall_at_k: number;
  /** Mean of 1 / rank of the first passage from a relevant source within the top 10 (0 when none). */
  mrr_at_10: number;
}

export interface ModeReport extends RetrievalScores {
  by_kind: Record<string, RetrievalScores>;
}

export interface QueryOutcome {
  line: number;
  query: string;
  kind?: string;
  relevant: string[];
  /** Per mode: the sources of the top passages (best first) and the query's recall@k and reciprocal rank. */
  modes: Record<string, { sources: string[]; recall_at_k: number; reciprocal_rank: number }>;
}

export interface RetrievalEvaluation {
  store: string;
  queries_file: string;
  k: number;
  modes: Record<string, ModeReport>;
  per_query: QueryOutcome[];
}

/** Reads and checks a labelled query file against the store's sources (a label naming no stored file is a typo). */
export function readLabelledQueries(file: string, knownSources: ReadonlySet<string>): Array<{ line: number; value: LabelledQuery }> {
  const records = readRecords(file, LabelledQuerySchema, { what: "labelled query" });
  const unknown = records.flatMap((record) =>
    record.value.relevant.filter((source) => !knownSources.has(source)).map((source) => `${file}:${record.lineNumber}: relevant: no source ${source} in the store`),
  );
  if (unknown.length > 0) {
    throw new InputError(`${file} names ${unknown.length} source(s) the store does not hold`, {
      hint: "relevant paths are relative to the folder given to rag build --docs (see rag query's source field)",
      details: unknown.slice(0, 20),
    });
  }
  return records.map((record) => ({ line: record.lineNumber, value: record.value }));
}

/** recall@k and MRR@10 for one ranking of passage sources against a query's relevant sources. */
export function scoreRanking(sources: readonly string[], relevant: readonly string[], k: number): { recall_at_k: number; reciprocal_rank: number } {
  const wanted = new Set(relevant);
  const found = new Set(sources.slice(0, k).filter((source) => wanted.has(source)));
  const first = sources.slice(0, MRR_DEPTH).findIndex((source) => wanted.has(source));
  return { recall_at_k: found.size / wanted.size, reciprocal_rank: first === -1 ? 0 : 1 / (first + 1) };
}

function mean(values: number[]): number {
  return values.length === 0 ? 0 : Math.round((values.reduce((sum, value) => sum + value, 0) / values.length) * 1e4) / 1e4;
}

function summarise(outcomes: QueryOutcome[], mode: string): RetrievalScores {
  return {
    queries: outcomes.length,
    recall_at_k: mean(outcomes.map((outcome) => outcome.modes[mode]!.recall_at_k)),
    mrr_at_10: mean(outcomes.map((outcome) => outcome.modes[mode]!.reciprocal_rank)),
  };
}

/** Runs every labelled query through every mode and scores the rankings. */
export async function evaluateRetrieval(
  store: KnowledgeStore,
  queries: Array<{ line: number; value: LabelledQuery }>,
  options: { k: number; modes?: readonly RetrievalMode[]; queriesFile: string; onQuery?: (done: number) => void },
): Promise<RetrievalEvaluation> {
  const modes = options.modes ?? RETRIEVAL_MODES;
  const depth = Math.max(options.k, MRR_DEPTH);
  const perQuery: QueryOutcome[] = [];
  for (const [position, { line, value }] of queries.entries()) {
    const outcome: QueryOutcome = { line, query: value.query, ...(value.kind ? { kind: value.kind } : {}), relevant: value.relevant, modes: {} };
    for (const mode of modes) {
      const sources = (await store.retrieve(value.query, { k: depth, mode })).map((hit) => hit.source);
      outcome.modes[mode] = { sources: sources.slice(0, options.k), ...scoreRanking(sources, value.relevant, options.k) };
    }
    perQuery.push(outcome);
    options.onQuery?.(position + 1);
  }
  const kinds = [...new Set(perQuery.flatMap((outcome) => (outcome.kind ? [outcome.kind] : [])))].sort();
  const report: Record<string, ModeReport> = {};
  for (const mode of modes) {
    report[mode] = {
      ...summarise(perQuery, mode),
      by_kind: Object.fromEntries(kinds.map((kind) => [kind, summarise(perQuery.filter((outcome) => outcome.kind === kind), mode)])),
    };
  }
  return { store: store.dir, queries_file: options.queriesFile, k: options.k, modes: report, per_query: perQuery };
}
