/** A seeded 32-bit generator (mulberry32): resamples are reproducible run to run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface BootstrapInterval {
  /** The statistic on the examples as they are. */
  delta: number;
  /** 2.5th and 97.5th percentiles over resamples (a 95% interval). */
  low: number;
  high: number;
  samples: number;
}

/**
 * Paired bootstrap of a difference between two systems on the same examples: resample example indices with
 * replacement, recompute `delta(indices)` (e.g. metric of B minus metric of A on those examples), and take the
 * percentile interval. Pairing keeps each example's difficulty on both sides, so the interval is narrow
 * when B is consistently better. Resamples where the statistic is undefined (NaN) are left out.
 */
export function pairedBootstrap(
  n: number,
  delta: (indices: ArrayLike<number>) => number,
  options: { samples: number; seed: number; level?: number },
): BootstrapInterval {
  const identity = Uint32Array.from({ length: n }, (_, i) => i);
  const observed = delta(identity);
  const random = seededRandom(options.seed);
  const values: number[] = [];
  const indices = new Uint32Array(n);
  for (let s = 0; s < options.samples; s += 1) {
    for (let i = 0; i < n; i += 1) indices[i] = Math.floor(random() * n);
    const value = delta(indices);
    if (!Number.isNaN(value)) values.push(value);
  }
  values.sort((a, b) => a - b);
  const alpha = (1 - (options.level ?? 0.95)) / 2;
  const pick = (q: number) => (values.length === 0 ? Number.NaN : values[Math.min(values.length - 1, Math.max(0, Math.round(q * (values.length - 1))))]!);
  return { delta: observed, low: pick(alpha), high: pick(1 - alpha), samples: values.length };
}
