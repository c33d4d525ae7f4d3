/**
 * From outputs to metrics: what each example contributes (per-example values computed once), and how a group
 * of examples turns those into the reported metrics. Groups are aggregated from example indices so the
 * bootstrap can resample them.
 */
import { parsePrompt, type PromptConfig } from "@ats-lora/core";
import {
  addCounts,
  exactMatch,
  extractScore,
  fieldCounts,
  mean,
  parseJsonOutput,
  parseJsonOutputRepaired,
  prf,
  quantile,
  rougeL,
  scoreMetrics,
  type Counts,
} from "./metrics.js";
import type { EvalExample } from "./held-out-set.js";

/** What a system produced for one example; null where a system does not answer it (a baseline covers match scores only). */
export interface SystemOutput {
  text: string;
  /** Generation time and new tokens, when the system was timed. */
  seconds?: number;
  tokens?: number;
  /** The model's mean token loss on the reference (worker `score`), and the reference's token count. */
  loss?: number | null;
  loss_tokens?: number;
  /** The answer used every new token it was allowed without ending by itself (cut off), where known. */
  hit_token_limit?: boolean;
}

/** What the metrics need to know about an example, whatever system answers it. */
export interface ExampleFeatures {
  task: string;
  reference: string;
  /** The candidate's text a question should be about: the resume (first context passage), or a follow-up's answer. */
  candidate?: string;
  /** Terms of the candidate's text that appear nowhere else in the prompt: the concrete details a specific question names. */
  details: string[];
  /** A follow-up's vague part of the answer (from metadata), when known. */
  vague_part?: string;
  /** The reference's match score and parsed JSON, where the task has them. */
  reference_score?: number;
  reference_json?: unknown;
  follow_up: boolean;
}

/** One system's per-example values. Undefined marks what does not apply. */
export interface ExampleScores {
  semantic_similarity: number;
  rouge_l: number;
  exact_match: number;
  loss?: number | null;
  loss_tokens?: number;
  seconds?: number;
  tokens?: number;
  json_valid?: number;
  /** Fields of the strict parse (an invalid answer predicts none), and of the repaired parse (an answer cut short keeps what it wrote). */
  field_counts?: Record<string, Counts>;
  field_counts_repaired?: Record<string, Counts>;
  /** 1 when the answer was cut at the token limit. */
  hit_token_limit?: number;
  relevance?: number;
  specificity?: number;
  addresses_vague_part?: number;
  predicted_score?: number | null;
}

export const FOLLOW_UP_SIMILARITY = 0.5;

export const STOPWORDS = new Set(
  (
    "a about above after again against all am an and any are as at be because been before being below between both but by can could did do does doing down during each few for from further had has have having he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other our ours ourselves out over own same she should so some such than that the their theirs them themselves then there these they this those through to too under until up very was we were what when where which while who whom why will with would you your yours yourself yourselves " +
    "did does tell describe explain walk give talk example time times lot lots way ways thing things really also much many us one two three work worked working team"
  ).split(" "),
);

/** Word-like terms, keeping the punctuation of names such as C++, Node.js, 40,000 and SAP-FICO inside them. */
const TERM = /[\p{L}\p{N}](?:[\p{L}\p{N}+#]|[.,'’-](?=[\p{L}\p{N}]))*/gu;

function terms(text: string): string[] {
  return text.match(TERM) ?? [];
}

/** Content words reduced to a 5-letter prefix, so "optimisation" meets "optimising". */
function contentStems(text: string): Set<string> {
  return new Set(
    terms(text.toLowerCase())
      .filter((term) => term.length >= 4 && !STOPWORDS.has(term))
      .map((term) => term.slice(0, 5)),
  );
}

/**
 * Concrete details of the candidate's text: names, figures and tools (a term with a capital or a digit), minus
 * every term that also appears in the rest of the prompt (the instruction, the query, the job posting), so
 * naming the role or a skill the job asks for does not count as being specific to this candidate. Ordinary
 * words capitalised only because they start a sentence or bullet, and heading lines (EXPERIENCE), are not details.
 */
export function concreteDetails(candidate: string, rest: string): string[] {
  const elsewhere = new Set(terms(rest.toLowerCase()));
  const details = new Set<string>();
  for (const line of candidate.split("\n")) {
    if (!/\p{Ll}/u.test(line)) continue;
    for (const match of line.matchAll(TERM)) {
      const term = match[0];
      const lower = term.toLowerCase();
      if (!/[\p{Lu}\p{N}]/u.test(term) || STOPWORDS.has(lower) || elsewhere.has(lower) || lower.length < 2) continue;
      const sentenceStart = /(^|[.!?:;]\s*|^\s*[-•*–]\s*)$/u.test(line.slice(0, match.index));
      if (sentenceStart && !/\p{N}|.\p{Lu}/u.test(term)) continue;
      details.add(lower);
    }
  }
  return [...details];
}

/** True when the text names one of the details (as a whole term, ignoring case). */
export function namesDetail(text: string, details: readonly string[]): boolean {
  if (details.length === 0) return false;
  const present = new Set(terms(text.toLowerCase()));
  return details.some((detail) => present.has(detail));
}

/** True when the question shares a content word with the vague part or says the same thing (embedding cosine ≥ 0.5). */
export function addressesVaguePart(question: string, vaguePart: string, similarity: number): boolean {
  const stems = contentStems(vaguePart);
  for (const stem of contentStems(question)) if (stems.has(stem)) return true;
  return similarity >= FOLLOW_UP_SIMILARITY;
}

const EMAIL = /[\w.+-]+@[\w-]+\.[\w.-]+/;

/** The passage that is the resume: the first with an email address, else the first passage. */
export function resumePassageIndex(context: readonly string[]): number {
  const index = context.findIndex((passage) => EMAIL.test(passage));
  return index === -1 ? 0 : index;
}

/** The features of each example under the configured prompt layout. */
export function exampleFeatures(example: EvalExample, prompts: PromptConfig): ExampleFeatures {
  const parsed = parsePrompt(example.prompt, prompts);
  const vague = example.metadata?.vague_part;
  const features: ExampleFeatures = {
    task: example.task,
    reference: example.completion,
    details: [],
    follow_up: typeof vague === "string" || (parsed?.context.some((passage) => /^\s*answer\s*:/i.test(passage)) ?? false),
    ...(typeof vague === "string" && vague.trim() !== "" ? { vague_part: vague } : {}),
  };
  if (example.task === "interview_question" && parsed && parsed.context.length > 0) {
    // A follow-up is about the answer given; a first question about the resume.
    const answer = features.follow_up ? parsed.context.findIndex((passage) => /^\s*answer\s*:/i.test(passage)) : -1;
    const index = answer === -1 ? resumePassageIndex(parsed.context) : answer;
    features.candidate = parsed.context[index]!;
    const rest = [parsed.instruction, parsed.query, ...parsed.context.filter((_, i) => i !== index)].join("\n");
    features.details = concreteDetails(features.candidate, rest);
  }
  if (example.task === "match_score") {
    const score = extractScore(example.completion);
    if (score !== undefined) features.reference_score = score;
  }
  if (example.task === "resume_parse") features.reference_json = parseJsonOutput(example.completion);
  return features;
}

/** The task-independent and task-specific values of one output. Similarities come from the caller's embedder. */
export function scoreExample(
  output: SystemOutput,
  features: ExampleFeatures,
  similarity: { reference: number; candidate?: number; vague_part?: number },
): ExampleScores {
  const scores: ExampleScores = {
    semantic_similarity: similarity.reference,
    rouge_l: rougeL(output.text, features.reference),
    exact_match: exactMatch(output.text, features.reference),
  };
  if (output.loss !== undefined) scores.loss = output.loss;
  if (output.loss_tokens !== undefined) scores.loss_tokens = output.loss_tokens;
  if (output.seconds !== undefined) scores.seconds = output.seconds;
  if (output.tokens !== undefined) scores.tokens = output.tokens;
  if (output.hit_token_limit !== undefined) scores.hit_token_limit = output.hit_token_limit ? 1 : 0;
  if (features.task === "resume_parse") {
    const parsed = parseJsonOutput(output.text);
    const valid = parsed !== undefined && parsed !== null && typeof parsed === "object" && !Array.isArray(parsed);
    scores.json_valid = valid ? 1 : 0;
    // The reference must be a JSON object for fields to be compared; an invalid prediction predicts no field.
    if (features.reference_json !== null && typeof features.reference_json === "object") {
      scores.field_counts = fieldCounts(valid ? parsed : {}, features.reference_json);
      scores.field_counts_repaired = valid ? scores.field_counts : fieldCounts(parseJsonOutputRepaired(output.text) ?? {}, features.reference_json);
    }
  }
  if (features.task === "interview_question" && features.candidate !== undefined) {
    scores.relevance = similarity.candidate ?? Number.NaN;
    if (!features.follow_up) scores.specificity = namesDetail(output.text, features.details) ? 1 : 0;
  }
  if (features.vague_part !== undefined) {
    scores.addresses_vague_part = addressesVaguePart(output.text, features.vague_part, similarity.vague_part ?? 0) ? 1 : 0;
  }
  if (features.task === "match_score") scores.predicted_score = extractScore(output.text) ?? null;
  return scores;
}

/** Counts, not measures: reported, never compared. */
export const COUNT_METRICS = new Set(["n", "n_scored"]);
/** Metrics where higher is worse; every other metric is better higher. */
export const LOWER_IS_BETTER = new Set(["loss", "perplexity", "mae", "rmse", "latency_p50_s", "latency_p95_s", "hit_token_limit"]);
/** Metrics of speed, which depend on the machine: reported and compared, but not counted in a verdict. */
export const SPEED_METRICS = new Set(["latency_p50_s", "latency_p95_s", "tokens_per_second"]);

type Picked = ArrayLike<number>;

function pick<T>(values: readonly T[], indices: Picked): T[] {
  const out: T[] = [];
  for (let i = 0; i < indices.length; i += 1) out.push(values[indices[i]!]!);
  return out;
}

function defined(values: ReadonlyArray<number | null | undefined>): number[] {
  return values.filter((value): value is number => typeof value === "number" && !Number.isNaN(value));
}

/**
 * The metrics of a group of examples (the indices into `scores`/`features`): the common ones for every group,
 * and (unless `taskMetrics` is false, as for the mixed `overall` group) the task's own where its examples have
 * them. NaN where a metric is undefined on the group.
 */
export function groupMetrics(
  scores: readonly ExampleScores[],
  features: readonly ExampleFeatures[],
  indices: Picked,
  options: { taskMetrics: boolean } = { taskMetrics: true },
): Record<string, number> {
  const rows = pick(scores, indices);
  const feats = pick(features, indices);
  const metrics: Record<string, number> = {
    n: rows.length,
    semantic_similarity: mean(rows.map((row) => row.semantic_similarity)),
    rouge_l: mean(rows.map((row) => row.rouge_l)),
    exact_match: mean(rows.map((row) => row.exact_match)),
  };
  const scored = rows.filter((row) => typeof row.loss === "number");
  if (scored.length > 0) {
    metrics.loss = mean(scored.map((row) => row.loss!));
    // Perplexity over all reference tokens: exp of the token-weighted mean loss.
    const tokenCount = scored.reduce((sum, row) => sum + (row.loss_tokens ?? 1), 0);
    metrics.perplexity = Math.exp(scored.reduce((sum, row) => sum + row.loss! * (row.loss_tokens ?? 1), 0) / tokenCount);
  }
  const timed = rows.filter((row) => typeof row.seconds === "number");
  if (timed.length > 0) {
    const seconds = timed.map((row) => row.seconds!);
    metrics.latency_p50_s = quantile(seconds, 0.5);
    metrics.latency_p95_s = quantile(seconds, 0.95);
    const totalSeconds = seconds.reduce((sum, value) => sum + value, 0);
    const totalTokens = timed.reduce((sum, row) => sum + (row.tokens ?? 0), 0);
    if (totalSeconds > 0 && timed.some((row) => row.tokens !== undefined)) metrics.tokens_per_second = totalTokens / totalSeconds;
  }
  const limited = defined(rows.map((row) => row.hit_token_limit));
  if (limited.length > 0) metrics.hit_token_limit = mean(limited);
  if (!options.taskMetrics) return metrics;
  const validity = defined(rows.map((row) => row.json_valid));
  if (validity.length > 0) {
    metrics.json_validity = mean(validity);
    const strict = microPrf(rows.map((row) => row.field_counts));
    if (strict) Object.assign(metrics, { field_precision: strict.precision, field_recall: strict.recall, field_f1: strict.f1 });
    const repaired = microPrf(rows.map((row) => row.field_counts_repaired));
    if (repaired) Object.assign(metrics, { field_precision_repaired: repaired.precision, field_recall_repaired: repaired.recall, field_f1_repaired: repaired.f1 });
  }
  const relevance = defined(rows.map((row) => row.relevance));
  if (relevance.length > 0) metrics.relevance = mean(relevance);
  const specificity = defined(rows.map((row) => row.specificity));
  if (specificity.length > 0) metrics.specificity = mean(specificity);
  const addressed = defined(rows.map((row) => row.addresses_vague_part));
  if (addressed.length > 0) metrics.follow_up_addresses_vague_part = mean(addressed);
  const matchRows = rows.map((row, i) => ({ predicted: row.predicted_score, reference: feats[i]!.reference_score })).filter((pair) => pair.predicted !== undefined);
  if (matchRows.length > 0) {
    metrics.score_validity = mean(matchRows.map((pair) => (typeof pair.predicted === "number" ? 1 : 0)));
    // An answer with no readable score counts as the farthest score from its reference (0 or 1): the ATS cannot rank
    // that candidate, and leaving it out would let a model that rarely answers in the format look accurate.
    const pairs = matchRows
      .filter((pair): pair is { predicted: number | null; reference: number } => typeof pair.reference === "number")
      .map((pair) => ({ predicted: pair.predicted ?? (pair.reference >= 0.5 ? 0 : 1), reference: pair.reference, readable: pair.predicted !== null }));
    if (pairs.length > 0) {
      const { n: _n, ...match } = scoreMetrics(
        pairs.map((pair) => pair.predicted),
        pairs.map((pair) => pair.reference),
      );
      Object.assign(metrics, match, { n_scored: pairs.filter((pair) => pair.readable).length });
    }
  }
  return metrics;
}

/** Precision, recall and F1 over every field of every example (micro-averaged); undefined where no field was compared. */
function microPrf(perExample: ReadonlyArray<Record<string, Counts> | undefined>): ReturnType<typeof prf> | undefined {
  const total: Counts = { tp: 0, fp: 0, fn: 0 };
  let fields = 0;
  for (const counts of perExample) {
    for (const c of Object.values(counts ?? {})) {
      fields += 1;
      total.tp += c.tp;
      total.fp += c.fp;
      total.fn += c.fn;
    }
  }
  return fields > 0 ? prf(total) : undefined;
}

/** Precision, recall and F1 per parsed field over a group (not resampled: a detail for the report). */
export function fieldBreakdown(scores: readonly ExampleScores[], indices: Picked): Record<string, ReturnType<typeof prf> & { support: number }> {
  const counts = pick(scores, indices).reduce<Record<string, Counts>>((total, row) => (row.field_counts ? addCounts(total, row.field_counts) : total), {});
  return Object.fromEntries(
    Object.entries(counts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([field, c]) => [field, { ...prf(c), support: c.tp + c.fn }]),
  );
}
