import fs from "node:fs";
import path from "node:path";
import { eng as ENGLISH_STOP_WORDS } from "stopword";
import { z } from "zod";
import {
  InputError,
  readJsonRecord,
  readModelCard,
  reserveModelFolder,
  sha256File,
  writeModelCard,
  type MatcherCard,
  type OperationContext,
  type OperationOptions,
  type PromptConfig,
} from "@ats-lora/core";
import { numericMetrics, registerVersion, TrackedRun, trackingTarget, type RegisteredVersion } from "@ats-lora/tracking";
import { matchPairs, resumeSections, SECTION_WEIGHTS, type MatchPair, type Section } from "./baseline.js";
import { readTestData, type EvalExample } from "./held-out-set.js";
import { extractScore, scoreMetrics } from "./metrics.js";

/**
 * The matching document's baseline as a trained model: a TF-IDF vectorizer (unigrams and bigrams, English stop
 * words, the 5,000 most frequent terms, smoothed idf, l2-normalised counts × idf, as scikit-learn's
 * TfidfVectorizer) fitted on the training rows' resumes and job postings, and the section weights that turn three
 * cosines into one score. Saved as models/tfidf_matcher_vN (matcher.json + model.json), so an eval's baseline is
 * fitted on training data, never on the set it is judged on.
 */

export const MATCHER_FILE = "matcher.json";
export const MATCHER_PREFIX = "tfidf_matcher_v";
const STOP_WORDS = new Set(ENGLISH_STOP_WORDS);

export const MatcherSettingsSchema = z.object({
  weights: z.object({ skills: z.number(), experience: z.number(), education: z.number() }),
  ngram_range: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  stop_words: z.literal("english"),
  max_features: z.number().int().positive(),
});
export type MatcherSettings = z.infer<typeof MatcherSettingsSchema>;

export const DEFAULT_MATCHER_SETTINGS: MatcherSettings = { weights: { ...SECTION_WEIGHTS }, ngram_range: [1, 2], stop_words: "english", max_features: 5000 };

export const TfidfMatcherSchema = z.object({
  format_version: z.literal(1),
  settings: MatcherSettingsSchema,
  /** Terms in column order, and each one's idf. */
  vocabulary: z.array(z.string()),
  idf: z.array(z.number()),
  documents: z.number().int().nonnegative(),
});
export type TfidfMatcher = z.infer<typeof TfidfMatcherSchema>;

/** Lower-cased words of two or more letters or digits (scikit-learn's token pattern), stop words removed, then n-grams of them. */
export function analyze(text: string, ngramRange: readonly [number, number]): string[] {
  const words = (text.toLowerCase().match(/[\p{L}\p{N}_]{2,}/gu) ?? []).filter((word) => !STOP_WORDS.has(word));
  const terms: string[] = [];
  for (let n = ngramRange[0]; n <= ngramRange[1]; n += 1) {
    for (let i = 0; i + n <= words.length; i += 1) terms.push(words.slice(i, i + n).join(" "));
  }
  return terms;
}

/** Fits the vocabulary (the most frequent terms over all documents; ties by term) and the smoothed idf: ln((1+N)/(1+df)) + 1. */
export function fitMatcher(documents: readonly string[], settings: MatcherSettings = DEFAULT_MATCHER_SETTINGS): TfidfMatcher {
  const frequency = new Map<string, number>();
  const documentFrequency = new Map<string, number>();
  for (const document of documents) {
    const terms = analyze(document, settings.ngram_range);
    for (const term of terms) frequency.set(term, (frequency.get(term) ?? 0) + 1);
    for (const term of new Set(terms)) documentFrequency.set(term, (documentFrequency.get(term) ?? 0) + 1);
  }
  const vocabulary = [...frequency]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, settings.max_features)
    .map(([term]) => term)
    .sort();
  const n = documents.length;
  return { format_version: 1, settings, vocabulary, idf: vocabulary.map((term) => Math.log((1 + n) / (1 + documentFrequency.get(term)!)) + 1), documents: n };
}

/** Scores resume–job pairs with a fitted matcher. */
export class MatcherScorer {
  private readonly columns: Map<string, number>;

  constructor(readonly model: TfidfMatcher) {
    this.columns = new Map(model.vocabulary.map((term, i) => [term, i]));
  }

  /** The l2-normalised TF-IDF vector of a text, as column → weight; terms outside the vocabulary do not count. */
  vector(text: string): Map<number, number> {
    const counts = new Map<number, number>();
    for (const term of analyze(text, this.model.settings.ngram_range)) {
      const column = this.columns.get(term);
      if (column !== undefined) counts.set(column, (counts.get(column) ?? 0) + 1);
    }
    let norm = 0;
    for (const [column, count] of counts) {
      const weight = count * this.model.idf[column]!;
      counts.set(column, weight);
      norm += weight * weight;
    }
    norm = Math.sqrt(norm);
    if (norm > 0) for (const [column, weight] of counts) counts.set(column, weight / norm);
    return counts;
  }

  similarity(a: string, b: string): number {
    const va = this.vector(a);
    const vb = this.vector(b);
    let dot = 0;
    for (const [column, weight] of va) dot += weight * (vb.get(column) ?? 0);
    return dot;
  }

  /** The section-weighted score of a resume for a job, and each section's cosine. */
  score(sections: Record<Section, string>, job: string): { score: number; sections: Record<Section, number> } {
    const weights = this.model.settings.weights;
    const bySection = { skills: this.similarity(sections.skills, job), experience: this.similarity(sections.experience, job), education: this.similarity(sections.education, job) };
    return { score: weights.skills * bySection.skills + weights.experience * bySection.experience + weights.education * bySection.education, sections: bySection };
  }
}

/** The texts a matcher learns its terms from: every pair's three resume sections and its job posting, each once. */
function pairDocuments(pairs: readonly MatchPair[]): string[] {
  const documents = new Set<string>();
  for (const pair of pairs) {
    for (const text of Object.values(pair.sections)) documents.add(text);
    documents.add(pair.job);
  }
  return [...documents];
}

/** How well the matcher's scores agree with the reviewers' reference scores of the rows' pairs. */
function agreement(scorer: MatcherScorer, examples: readonly EvalExample[], prompts: PromptConfig) {
  const predicted: number[] = [];
  const reference: number[] = [];
  for (const pair of matchPairs(examples, prompts)) {
    const expected = extractScore(examples[pair.example]!.completion);
    if (expected === undefined) continue;
    predicted.push(scorer.score(pair.sections, pair.job).score);
    reference.push(expected);
  }
  if (predicted.length === 0) return null;
  const metrics = scoreMetrics(predicted, reference);
  return { pairs: predicted.length, spearman: metrics.spearman, pearson: metrics.pearson, mae: metrics.mae };
}

export interface TrainMatcherInput {
  /** A training rows file, or build-db's output folder (its sft/train.jsonl, and sft/val.jsonl to report agreement on). */
  data?: string;
  /** Where the matcher goes; default models/tfidf_matcher_vN with the next free N. */
  outputDir?: string;
  settings?: Partial<MatcherSettings>;
}

export interface TrainMatcherResult {
  name: string;
  path: string;
  card: MatcherCard;
  /** The registered version on MLflow, where tracking is configured and reachable. */
  mlflow?: RegisteredVersion;
}

/** The training rows file (and validation rows beside it) that `match train` and eval's fallback fit on. */
function trainingRowsFile(data: string): { train: string; val: string | null } {
  const candidates = fs.existsSync(data) && fs.statSync(data).isDirectory() ? [path.join(data, "sft", "train.jsonl"), path.join(data, "train.jsonl")] : [data];
  const train = candidates.find((file) => fs.existsSync(file));
  if (train === undefined) throw new InputError(`no training rows at ${data} (looked for ${candidates.join(", ")})`, { hint: "run ats-lora build-db first, or pass --data FILE.jsonl" });
  const val = path.join(path.dirname(train), path.basename(train).replace(/train/, "val"));
  return { train, val: val !== train && fs.existsSync(val) ? val : null };
}

/**
 * `match train`: fits a TF-IDF matcher on the training rows' match-score pairs, measures its agreement with the
 * reference scores (training and validation rows), saves it with its card, and logs and registers it on MLflow
 * where tracking is configured (the registered version gets the alias `current`).
 */
export async function trainMatcher(input: TrainMatcherInput, context: OperationContext, options: OperationOptions = {}): Promise<TrainMatcherResult> {
  const warn = (message: string) => options.onEvent?.({ type: "warning", message });
  const { train, val } = trainingRowsFile(input.data ?? context.paths.trainingPairs);
  const prompts = context.config.prompts;
  const rows = readTestData(train);
  const pairs = matchPairs(rows, prompts);
  if (pairs.length === 0) {
    throw new InputError(`${train}: no match_score rows whose prompt holds a resume and a job posting, so there is nothing to fit a matcher on`, {
      hint: "collect match-score interactions (task match_score, context [resume, job]) and run ats-lora build-db",
    });
  }
  const settings = MatcherSettingsSchema.parse({ ...DEFAULT_MATCHER_SETTINGS, ...input.settings });
  const model = fitMatcher(pairDocuments(pairs), settings);
  const scorer = new MatcherScorer(model);
  const metrics = { train: agreement(scorer, rows, prompts), val: val ? agreement(scorer, readTestData(val), prompts) : null, vocabulary: model.vocabulary.length, documents: model.documents };

  const dir = input.outputDir ?? reserveModelFolder(context.paths.models, MATCHER_PREFIX);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, MATCHER_FILE), `${JSON.stringify(model)}\n`);
  const manifest = path.join(path.dirname(path.dirname(train)), "manifest.json");
  const card: MatcherCard = {
    kind: "matcher",
    method: "tfidf",
    file: MATCHER_FILE,
    created_at: new Date().toISOString(),
    dataset: { path: path.resolve(train), manifest_sha256: fs.existsSync(manifest) ? sha256File(manifest) : null, config_hash: null, rows: { train: rows.length, pairs: pairs.length } },
    data_sha256: sha256File(train),
    settings,
    metrics,
  };
  writeModelCard(dir, card);
  const result: TrainMatcherResult = { name: path.basename(dir), path: dir, card };

  const tracked = await TrackedRun.start(
    context.config,
    { name: path.basename(dir), params: { ...settings, data: path.resolve(train), data_sha256: card.data_sha256, pairs: pairs.length }, tags: { "ats_lora.kind": "matcher" }, localRecord: dir },
    warn,
  );
  if (tracked === undefined) return result;
  tracked.logMetrics(numericMetrics(metrics, 0));
  await tracked.logArtifacts([path.join(dir, MATCHER_FILE), path.join(dir, "model.json")], "matcher");
  const run = await tracked.finish("FINISHED");
  if (run === undefined) return result;
  const target = trackingTarget(context.config).target!;
  const registeredModel = target.matcherRegisteredModel;
  try {
    result.mlflow = await registerVersion(target, { registeredModel, description: "TF-IDF resume–job matchers trained by ats-lora (the match-score baseline)", run, artifactDir: "matcher", alias: "current" });
    result.card = { ...card, mlflow: { run, versions: [{ registered_model: registeredModel, version: result.mlflow.version }] } };
  } catch (error) {
    warn(`registering ${path.basename(dir)} on MLflow failed: ${(error as Error).message}`);
    result.card = { ...card, mlflow: { run, versions: [] } };
  }
  writeModelCard(dir, result.card);
  return result;
}

/** A matcher folder's fitted model, with its card; an error names the folder when it is not one. */
export function loadMatcher(dir: string): { path: string; card: MatcherCard; scorer: MatcherScorer } {
  const card = readModelCard(dir);
  if (card?.kind !== "matcher") {
    throw new InputError(`${dir} is not a trained matcher (its model.json ${card === undefined ? "is missing" : `is a ${card.kind} model's`})`, { hint: "train one with ats-lora match train" });
  }
  const model = readJsonRecord(path.join(dir, card.file), TfidfMatcherSchema, "train the matcher again with ats-lora match train");
  return { path: dir, card, scorer: new MatcherScorer(model) };
}

/** The newest matcher under models/ (by its card's created_at), or undefined. */
export function newestMatcher(modelsDir: string): string | undefined {
  if (!fs.existsSync(modelsDir)) return undefined;
  let newest: { dir: string; at: string } | undefined;
  for (const entry of fs.readdirSync(modelsDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(modelsDir, entry.name);
    let card;
    try {
      card = readModelCard(dir);
    } catch {
      continue;
    }
    if (card?.kind === "matcher" && (newest === undefined || card.created_at > newest.at)) newest = { dir, at: card.created_at };
  }
  return newest?.dir;
}

/** The matcher given (a folder, or a name under models/), else the newest one; undefined when there is none. */
function matcherDir(matcher: string | undefined, modelsDir: string | undefined): string | undefined {
  const chosen = matcher ?? (modelsDir === undefined ? undefined : newestMatcher(modelsDir));
  if (chosen === undefined || modelsDir === undefined || fs.existsSync(chosen)) return chosen;
  return path.join(modelsDir, chosen);
}

/** Where eval's TF-IDF baseline comes from: a trained matcher, or (without one) a fit on the training rows beside the test data. */
export interface MatcherSource {
  kind: "trained" | "fitted on training rows" | "fitted on the evaluated set";
  /** The matcher folder, or the rows it was fitted on. */
  path: string;
}

/**
 * The TF-IDF scorer `eval --baseline tfidf` uses: the matcher given, else the newest trained one under models/, else
 * one fitted now on the training rows beside the test data (build-db's train split), else (said in the report) on
 * the evaluated set itself.
 */
export function matcherForEval(
  matcher: string | undefined,
  modelsDir: string | undefined,
  testFile: string,
  examples: readonly EvalExample[],
  prompts: PromptConfig,
): { scorer: MatcherScorer; source: MatcherSource } {
  const dir = matcherDir(matcher, modelsDir);
  if (dir !== undefined) return { scorer: loadMatcher(dir).scorer, source: { kind: "trained", path: dir } };
  const beside = path.join(path.dirname(testFile), path.basename(testFile).replace(/test/, "train"));
  if (beside !== testFile && fs.existsSync(beside)) {
    const pairs = matchPairs(readTestData(beside), prompts);
    if (pairs.length > 0) return { scorer: new MatcherScorer(fitMatcher(pairDocuments(pairs))), source: { kind: "fitted on training rows", path: beside } };
  }
  return { scorer: new MatcherScorer(fitMatcher(pairDocuments(matchPairs(examples, prompts)))), source: { kind: "fitted on the evaluated set", path: testFile } };
}

/** `match score`: one resume against one job posting, with each section's cosine. */
export function scoreMatch(input: { resume: string; job: string; matcher?: string }, context: OperationContext) {
  const dir = matcherDir(input.matcher, context.paths.models);
  if (dir === undefined) throw new InputError(`no trained matcher in ${context.paths.models}`, { hint: "train one: ats-lora match train" });
  const loaded = loadMatcher(dir);
  const sections = resumeSections(input.resume);
  return { matcher: loaded.path, ...loaded.scorer.score(sections, input.job) };
}
