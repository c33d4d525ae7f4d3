import type { BaselineMethod } from "./baseline.js";
import type { MatcherSource } from "./matcher.js";
import type { fieldBreakdown, ExampleScores, SystemOutput } from "./score.js";
import type { ModelRef, SystemSpec } from "./systems.js";

// The report's shape: what evaluate returns and report.ts renders (its own module so that neither imports the other).

export type MetricValues = Record<string, number>;

/** The knowledge store that added passages to the prompts (--rag). */
export interface RetrievalSettings {
  store: string;
  top_k: number;
  mode: string;
}

/** The embedder behind the similarity metrics. */
export interface EmbedderIdentity {
  model: string;
  dtype: string;
  dimension: number;
}

export interface SystemReport {
  name: string;
  role: SystemSpec["role"];
  model?: ModelRef;
  /** What generated this system's answers: node-llama-cpp or the Python worker. */
  engine?: string;
  /** The model's JSON answers were generated under their schema (eval --json-schema). */
  json_schema?: boolean;
  file?: string;
  method?: BaselineMethod;
  /** The TF-IDF baseline's matcher: a trained one, or what it was fitted on. */
  matcher?: MatcherSource;
  /** Examples this system answered (a baseline answers match scores only). */
  answered: number;
  /** Metrics by group: `overall`, then each task. */
  metrics: Record<string, MetricValues>;
  /** 95% bootstrap interval of each metric, by group. */
  intervals: Record<string, Record<string, [number, number]>>;
  /** Precision/recall/F1 per parsed resume field. */
  fields?: ReturnType<typeof fieldBreakdown>;
  /** The run's loss curve and metrics, where the model is a folder train wrote. */
  training?: TrainingLog;
}

export interface TrainingLog {
  loss_curve: Array<{ step: number; loss?: number; eval_loss?: number }>;
  metrics: Record<string, unknown> | null;
}

export interface MetricComparison {
  group: string;
  metric: string;
  /** The evaluated system's value, the other's, and their difference (evaluated − other) with its 95% paired bootstrap interval. */
  value: number;
  other: number;
  delta: number;
  low: number;
  high: number;
  better: "higher" | "lower";
  /** better / worse: the interval excludes zero in that direction; unclear: it does not. */
  outcome: "better" | "worse" | "unclear";
}

export interface Comparison {
  system: string;
  against: string;
  examples: number;
  metrics: MetricComparison[];
  improved: number;
  worsened: number;
  unclear: number;
  verdict: string;
  /** The verdict in plain words: one line per task (and overall) where a counted metric is clearly better or worse. */
  summary: string[];
}

export interface ExampleRecord {
  line: number;
  task: string;
  prompt: string;
  reference: string;
  outputs: Record<string, (SystemOutput & { scores: ExampleScores }) | null>;
}

export interface EvalReport {
  report_version: 1;
  created_at: string;
  test_data: { file: string; examples: number; tasks: Record<string, number> };
  settings: {
    /** The limit of tasks without their own (or --max-new-tokens, which sets every task's). */
    max_new_tokens: number;
    /** The limit each task of the test data was generated with. */
    max_new_tokens_by_task: Record<string, number>;
    /** Whether `+schema` systems generated the JSON tasks under their answer schema. */
    json_schema: boolean;
    temperature: 0;
    seed: number;
    bootstrap_samples: number;
    confidence_level: 0.95;
    rag: RetrievalSettings | null;
  };
  embedder: EmbedderIdentity;
  systems: SystemReport[];
  comparisons: Comparison[];
}
