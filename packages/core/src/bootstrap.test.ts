import { describe, expect, it } from "vitest";
import { independentBootstrap, pairedBootstrap, seededRandom } from "./bootstrap.js";

const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

const meanDelta = (a: number[], b: number[]) => (indices: ArrayLike<number>) => {
  let sum = 0;
  for (let i = 0; i < indices.length; i += 1) sum += b[indices[i]!]! - a[indices[i]!]!;
  return sum / indices.length;
};

describe("paired bootstrap", () => {
  it("covers the true difference about 95% of the time on synthetic data", () => {
    const random = seededRandom(11);
    const trueDelta = 0.1;
    let covered = 0;
    const runs = 60;
    for (let run = 0; run < runs; run += 1) {
      // Example difficulty is shared by both systems (that is what pairing exploits); B is better by 0.1.
      const difficulty = Array.from({ length: 150 }, () => normal(random));
      const a = difficulty.map((d) => d + 0.3 * normal(random));
      const b = difficulty.map((d) => d + trueDelta + 0.3 * normal(random));
      const interval = pairedBootstrap(a.length, meanDelta(a, b), { samples: 1000, seed: run });
      if (interval.low <= trueDelta && trueDelta <= interval.high) covered += 1;
      expect(interval.low).toBeLessThanOrEqual(interval.delta);
      expect(interval.high).toBeGreaterThanOrEqual(interval.delta);
    }
    expect(covered / runs).toBeGreaterThanOrEqual(0.88);
    expect(covered / runs).toBeLessThanOrEqual(1);
  });

  it("is a point for a constant difference, reproducible by seed, and skips undefined resamples", () => {
    const a = [0.1, 0.5, 0.9];
    const b = a.map((x) => x + 0.25);
    const interval = pairedBootstrap(3, meanDelta(a, b), { samples: 200, seed: 1 });
    expect(interval.delta).toBeCloseTo(0.25, 12);
    expect(interval.low).toBeCloseTo(0.25, 12);
    expect(interval.high).toBeCloseTo(0.25, 12);
    const noisy = [0.3, -0.2, 0.5, 0.1, 0.0];
    const zero = [0, 0, 0, 0, 0];
    expect(pairedBootstrap(5, meanDelta(zero, noisy), { samples: 500, seed: 3 })).toEqual(pairedBootstrap(5, meanDelta(zero, noisy), { samples: 500, seed: 3 }));
    const nan = pairedBootstrap(4, (indices) => (new Set(Array.from(indices)).size === 1 ? Number.NaN : mean(Array.from(indices))), { samples: 300, seed: 5 });
    expect(nan.samples).toBeLessThanOrEqual(300);
    expect(nan.samples).toBeGreaterThan(280);
  });
});

describe("independent bootstrap", () => {
  it("covers the true difference of two independent groups about 95% of the time", () => {
    const random = seededRandom(5);
    let covered = 0;
    const runs = 60;
    for (let run = 0; run < runs; run += 1) {
      const a = Array.from({ length: 80 }, () => 3 + normal(random));
      const b = Array.from({ length: 60 }, () => 3.5 + normal(random));
      const interval = independentBootstrap(a, b, mean, { samples: 1000, seed: run });
      if (interval.low <= 0.5 && 0.5 <= interval.high) covered += 1;
      expect(interval.delta).toBeCloseTo(mean(b) - mean(a), 12);
    }
    expect(covered / runs).toBeGreaterThanOrEqual(0.88);
  });

  it("has no interval when a group is empty", () => {
    expect(independentBootstrap([], [1, 2], mean, { samples: 10, seed: 0 })).toMatchObject({ samples: 0, low: Number.NaN });
  });
});
