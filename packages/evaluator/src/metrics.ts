/**
 * Task metrics, each computed from the outputs themselves: text overlap (ROUGE-L, exact match), JSON
 * validity and field-level precision/recall/F1 for resume parsing, and regression and threshold metrics for
 * match scores. Pure functions; the runner feeds them predictions and references.
 */
import { jsonrepair } from "jsonrepair";

/** Lower-cased word tokens (letters and digits of any script). */
export function tokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

function lcsLength(a: readonly string[], b: readonly string[]): number {
  let previous = new Uint32Array(b.length + 1);
  let current = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = a[i - 1] === b[j - 1] ? previous[j - 1]! + 1 : Math.max(previous[j]!, current[j - 1]!);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length]!;
}

/** ROUGE-L F1: the longest common token subsequence against both lengths (1 when both are empty). */
export function rougeL(prediction: string, reference: string): number {
  const p = tokens(prediction);
  const r = tokens(reference);
  if (p.length === 0 && r.length === 0) return 1;
  const lcs = lcsLength(p, r);
  if (lcs === 0) return 0;
  const precision = lcs / p.length;
  const recall = lcs / r.length;
  return (2 * precision * recall) / (precision + recall);
}

/** 1 when the texts are equal after trimming and collapsing whitespace, else 0. */
export function exactMatch(prediction: string, reference: string): number {
  const normalise = (text: string) => text.trim().replace(/\s+/g, " ");
  return normalise(prediction) === normalise(reference) ? 1 : 0;
}

/** The JSON value of a model output: the whole text, or the body of one ```json fence; undefined if neither parses. */
export function parseJsonOutput(text: string): unknown {
  const fenced = /^\s*```(?:json)?\s*\n([\s\S]*?)\n\s*```\s*$/.exec(text);
  try {
    return JSON.parse(fenced ? fenced[1]! : text);
  } catch {
    return undefined;
  }
}

/**
 * The JSON value of a model output, repaired where the strict parse fails: an answer cut at the token limit
 * (unclosed strings, lists and objects), a stray trailing comma, single quotes, or prose before the first `{`
 * are mended by jsonrepair. Undefined when even that fails. The strict parse (`parseJsonOutput`) stays what
 * JSON validity counts; this one lets field F1 credit the fields a nearly right answer did write.
 */
export function parseJsonOutputRepaired(text: string): unknown {
  const strict = parseJsonOutput(text);
  if (strict !== undefined) return strict;
  const fenced = /^\s*```(?:json)?\s*\n([\s\S]*?)(?:\n\s*```\s*)?$/.exec(text);
  const body = fenced ? fenced[1]! : text;
  const brace = body.indexOf("{");
  for (const candidate of brace > 0 ? [body, body.slice(brace)] : [body]) {
    try {
      const repaired: unknown = JSON.parse(jsonrepair(candidate));
      if (repaired !== null && typeof repaired === "object") return repaired;
    } catch {
      // Not mendable as it stands; the next candidate starts at the first brace.
    }
  }
  return undefined;
}

export interface Counts {
  tp: number;
  fp: number;
  fn: number;
}

export interface PrecisionRecallF1 {
  precision: number;
  recall: number;
  f1: number;
}

export function prf(counts: Counts): PrecisionRecallF1 {
  const precision = counts.tp + counts.fp === 0 ? (counts.fn === 0 ? 1 : 0) : counts.tp / (counts.tp + counts.fp);
  const recall = counts.tp + counts.fn === 0 ? (counts.fp === 0 ? 1 : 0) : counts.tp / (counts.tp + counts.fn);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1 };
}

function normaliseValue(value: unknown): string {
  return typeof value === "string" ? normaliseText(value) : JSON.stringify(canonicalValue(value));
}

function normaliseText(text: string): string {
  return text.trim().toLowerCase().replace(/\s+/g, " ");
}

/** Strings normalised and object keys sorted, at every depth, then stringified once: a deeply nested answer (a looping
 * model's `[[[[…`) must not be escaped again at every level. */
function canonicalValue(value: unknown): unknown {
  if (typeof value === "string") return normaliseText(value);
  if (Array.isArray(value)) return value.map(canonicalValue);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, canonicalValue(v)]));
  }
  return value;
}

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0);
}

/**
 * Field-level counts of a parsed resume against the reference, per top-level field. A list field counts
 * its items as a set (each predicted item found in the reference is a true positive); any other field is one
 * item, right when equal after normalising case and whitespace. A missing or empty field predicts nothing.
 */
export function fieldCounts(prediction: unknown, reference: unknown): Record<string, Counts> {
  const asObject = (value: unknown): Record<string, unknown> => (value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {});
  const predicted = asObject(prediction);
  const expected = asObject(reference);
  const counts: Record<string, Counts> = {};
  for (const field of new Set([...Object.keys(expected), ...Object.keys(predicted)])) {
    const items = (value: unknown): string[] => (isEmpty(value) ? [] : Array.isArray(value) ? value.map(normaliseValue) : [normaliseValue(value)]);
    const p = items(predicted[field]);
    const r = items(expected[field]);
    const remaining = new Map<string, number>();
    for (const item of r) remaining.set(item, (remaining.get(item) ?? 0) + 1);
    let tp = 0;
    for (const item of p) {
      const left = remaining.get(item) ?? 0;
      if (left > 0) {
        tp += 1;
        remaining.set(item, left - 1);
      }
    }
    counts[field] = { tp, fp: p.length - tp, fn: r.length - tp };
  }
  return counts;
}

/** How a predicted field or list item stands against the reference. */
export type FieldStatus = "same" | "different" | "missing" | "extra";

export interface FieldDifference {
  field: string;
  reference: unknown;
  predicted: unknown;
  status: FieldStatus;
  /** For a list on both sides: each predicted item (same or extra), then each reference item it lacks (missing). */
  items?: Array<{ value: unknown; status: Exclude<FieldStatus, "different"> }>;
}

/**
 * A parsed answer against the reference, field by field, compared as `fieldCounts` counts them (values
 * normalised for case and whitespace, lists as sets): the reference's fields in order, then extra ones.
 * A field empty on both sides is the same.
 */
export function fieldDifferences(prediction: unknown, reference: unknown): FieldDifference[] {
  const asObject = (value: unknown): Record<string, unknown> => (value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {});
  const predicted = asObject(prediction);
  const expected = asObject(reference);
  return [...new Set([...Object.keys(expected), ...Object.keys(predicted)])].map((field): FieldDifference => {
    const [p, r] = [predicted[field], expected[field]];
    const base = { field, reference: r, predicted: p };
    if (isEmpty(p) && isEmpty(r)) return { ...base, status: "same" };
    if (isEmpty(p)) return { ...base, status: "missing" };
    if (isEmpty(r)) return { ...base, status: "extra" };
    if (Array.isArray(p) && Array.isArray(r)) {
      const remaining = new Map<string, number>();
      for (const item of r) remaining.set(normaliseValue(item), (remaining.get(normaliseValue(item)) ?? 0) + 1);
      const items: NonNullable<FieldDifference["items"]> = p.map((value): NonNullable<FieldDifference["items"]>[number] => {
        const key = normaliseValue(value);
        const left = remaining.get(key) ?? 0;
        if (left === 0) return { value, status: "extra" };
        remaining.set(key, left - 1);
        return { value, status: "same" };
      });
      for (const value of r) {
        const key = normaliseValue(value);
        const left = remaining.get(key) ?? 0;
        if (left > 0) {
          items.push({ value, status: "missing" });
          remaining.set(key, left - 1);
        }
      }
      return { ...base, status: items.every((item) => item.status === "same") ? "same" : "different", items };
    }
    return { ...base, status: normaliseValue(p) === normaliseValue(r) ? "same" : "different" };
  });
}

/** Adds counts field by field (micro-averaging over examples). */
export function addCounts(total: Record<string, Counts>, more: Record<string, Counts>): Record<string, Counts> {
  for (const [field, counts] of Object.entries(more)) {
    const sum = (total[field] ??= { tp: 0, fp: 0, fn: 0 });
    sum.tp += counts.tp;
    sum.fp += counts.fp;
    sum.fn += counts.fn;
  }
  return total;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** The q-quantile (0–1) by linear interpolation between order statistics. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

function pearsonOf(x: readonly number[], y: readonly number[]): number {
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  x.forEach((value, i) => {
    sxy += (value - mx) * (y[i]! - my);
    sxx += (value - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  });
  return sxx === 0 || syy === 0 ? Number.NaN : sxy / Math.sqrt(sxx * syy);
}

/** Ranks from 1, ties sharing their average rank. */
export function ranks(values: readonly number[]): number[] {
  const order = values.map((value, index) => ({ value, index })).sort((a, b) => a.value - b.value);
  const result = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1]!.value === order[start]!.value) end += 1;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k += 1) result[order[k]!.index] = rank;
    start = end + 1;
  }
  return result;
}

export interface ScoreMetrics {
  n: number;
  mae: number;
  rmse: number;
  r2: number;
  pearson: number;
  spearman: number;
  accuracy_within_0_2: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
}

/**
 * Match-score metrics of predicted against reference scores in [0, 1]: errors, fit, rank agreement, the share
 * within ±0.2, and accuracy/precision/recall/F1 of "match" (≥ threshold) decisions. Correlations and R² are NaN
 * where a side is constant (undefined, not zero).
 */
export function scoreMetrics(predicted: readonly number[], reference: readonly number[], threshold = 0.5): ScoreMetrics {
  const n = predicted.length;
  const errors = predicted.map((value, i) => value - reference[i]!);
  const mr = mean(reference);
  const ssRes = errors.reduce((sum, error) => sum + error * error, 0);
  const ssTot = reference.reduce((sum, value) => sum + (value - mr) ** 2, 0);
  const decisions: Counts & { tn: number } = { tp: 0, fp: 0, fn: 0, tn: 0 };
  predicted.forEach((value, i) => {
    const p = value >= threshold;
    const r = reference[i]! >= threshold;
    if (p && r) decisions.tp += 1;
    else if (p) decisions.fp += 1;
    else if (r) decisions.fn += 1;
    else decisions.tn += 1;
  });
  const classification = prf(decisions);
  return {
    n,
    mae: mean(errors.map(Math.abs)),
    rmse: Math.sqrt(ssRes / n),
    r2: ssTot === 0 ? Number.NaN : 1 - ssRes / ssTot,
    pearson: pearsonOf(predicted, reference),
    spearman: pearsonOf(ranks(predicted), ranks(reference)),
    // A hair of tolerance so 0.7 vs 0.5 (0.19999999999999996 in floating point) counts as within 0.2.
    accuracy_within_0_2: mean(errors.map((error) => (Math.abs(error) <= 0.2 + 1e-9 ? 1 : 0))),
    accuracy: (decisions.tp + decisions.tn) / n,
    ...classification,
  };
}

/** The match score of a model output: a number field `match_score` (or `score`) of its JSON, or a bare number. */
export function extractScore(output: string): number | undefined {
  const value = parseJsonOutput(output);
  const candidate =
    typeof value === "number"
      ? value
      : value !== null && typeof value === "object"
        ? ((value as Record<string, unknown>).match_score ?? (value as Record<string, unknown>).score)
        : undefined;
  return typeof candidate === "number" && Number.isFinite(candidate) ? candidate : undefined;
}
