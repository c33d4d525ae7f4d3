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
  return pairedBootstrapMany(n, (indices) => ({ delta: delta(indices) }), options).delta ?? { delta: Number.NaN, low: Number.NaN, high: Number.NaN, samples: 0 };
}

/**
 * The same for several statistics at once, all on the same resamples (one resampling per comparison, not per
 * metric): `deltas(indices)` returns each statistic by name; the names of the full-sample call are reported.
 */
export function pairedBootstrapMany(
  n: number,
  deltas: (indices: ArrayLike<number>) => Record<string, number>,
  options: { samples: number; seed: number; level?: number },
): Record<string, BootstrapInterval> {
  const identity = Uint32Array.from({ length: n }, (_, i) => i);
  const observed = deltas(identity);
  const random = seededRandom(options.seed);
  const values = new Map<string, number[]>(Object.keys(observed).map((name) => [name, []]));
  const indices = new Uint32Array(n);
  for (let s = 0; s < options.samples; s += 1) {
    for (let i = 0; i < n; i += 1) indices[i] = Math.floor(random() * n);
    const resampled = deltas(indices);
    for (const [name, list] of values) {
      const value = resampled[name];
      if (value !== undefined && !Number.isNaN(value)) list.push(value);
    }
  }
  const alpha = (1 - (options.level ?? 0.95)) / 2;
  const result: Record<string, BootstrapInterval> = {};
  for (const [name, list] of values) {
    list.sort((a, b) => a - b);
    result[name] = { delta: observed[name]!, low: percentile(list, alpha), high: percentile(list, 1 - alpha), samples: list.length };
  }
  return result;
}

/** The percentile interval of `statistic` over resamples of one group (e.g. a model's mean rating). */
export function bootstrapInterval(
  values: readonly number[],
  statistic: (values: readonly number[]) => number,
  options: { samples: number; seed: number; level?: number },
): BootstrapInterval {
  const resample = resampler(options.seed);
  return percentileInterval(statistic(values), values.length === 0 ? undefined : () => statistic(resample(values)), options);
}

/**
 * Bootstrap of a difference between two independent groups (different examples on each side, as when live
 * traffic is split between two versions): each group is resampled on its own, `statistic(b) − statistic(a)`.
 */
export function independentBootstrap(
  a: readonly number[],
  b: readonly number[],
  statistic: (values: readonly number[]) => number,
  options: { samples: number; seed: number; level?: number },
): BootstrapInterval {
  const resample = resampler(options.seed);
  const draw = a.length === 0 || b.length === 0 ? undefined : () => statistic(resample(b)) - statistic(resample(a));
  return percentileInterval(statistic(b) - statistic(a), draw, options);
}

function resampler(seed: number): (values: readonly number[]) => number[] {
  const random = seededRandom(seed);
  return (values) => Array.from({ length: values.length }, () => values[Math.floor(random() * values.length)]!);
}

/** The observed statistic with the percentile interval of `draw`'s resampled values (none without a draw). */
function percentileInterval(observed: number, draw: (() => number) | undefined, options: { samples: number; level?: number }): BootstrapInterval {
  if (draw === undefined) return { delta: observed, low: Number.NaN, high: Number.NaN, samples: 0 };
  const values: number[] = [];
  for (let s = 0; s < options.samples; s += 1) {
    const value = draw();
    if (!Number.isNaN(value)) values.push(value);
  }
  values.sort((x, y) => x - y);
  const alpha = (1 - (options.level ?? 0.95)) / 2;
  return { delta: observed, low: percentile(values, alpha), high: percentile(values, 1 - alpha), samples: values.length };
}

/** The q-quantile of sorted values, to the nearest one (NaN for none). */
function percentile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!;
}
