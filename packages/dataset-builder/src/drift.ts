import type { DriftStats } from "./schema.js";

/** Four decimals: the precision of the drift figures written out. */
export const round4 = (value: number): number => Math.round(value * 10_000) / 10_000;

/** Distribution of semantic drift (1 − cosine between the model's response and the ideal response). */
export function driftStats(drifts: readonly number[], similarityThreshold: number): DriftStats {
  const sorted = [...drifts].sort((a, b) => a - b);
  const quantile = (q: number): number | null => {
    if (sorted.length === 0) return null;
    const position = (sorted.length - 1) * q;
    const low = Math.floor(position);
    const high = Math.ceil(position);
    return round4(sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low));
  };
  const histogram = Array.from({ length: 10 }, (_, bin) => ({ from: round4(bin / 10), to: round4((bin + 1) / 10), count: 0 }));
  for (const drift of sorted) histogram[Math.min(9, Math.max(0, Math.floor(drift * 10)))]!.count += 1;
  // Drift d means similarity 1 − d; below the threshold is a substantial error.
  const substantial = sorted.filter((drift) => 1 - drift < similarityThreshold).length;
  return {
    corrections: sorted.length,
    mean: sorted.length === 0 ? null : round4(sorted.reduce((sum, drift) => sum + drift, 0) / sorted.length),
    median: quantile(0.5),
    p90: quantile(0.9),
    max: sorted.length === 0 ? null : round4(sorted[sorted.length - 1]!),
    histogram,
    similarity_threshold: similarityThreshold,
    substantial,
    refinements: sorted.length - substantial,
  };
}
