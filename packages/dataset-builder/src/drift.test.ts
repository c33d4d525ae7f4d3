import { describe, expect, it } from "vitest";
import { driftStats } from "./drift.js";
import { splitOf } from "./split.js";

describe("driftStats", () => {
  it("summarises drift as computed by hand", () => {
    const stats = driftStats([0.05, 0.1, 0.3, 0.32, 0.95], 0.75);
    expect(stats).toMatchObject({ corrections: 5, mean: 0.344, median: 0.3, max: 0.95, substantial: 3, refinements: 2 });
    // Similarities 0.95, 0.9, 0.7, 0.68, 0.05: three fall below 0.75.
    // p90 interpolates between 0.32 and 0.95 at position 3.6.
    expect(stats.p90).toBeCloseTo(0.32 + 0.6 * 0.63, 4);
    expect(stats.histogram.map((bin) => bin.count)).toEqual([1, 1, 0, 2, 0, 0, 0, 0, 0, 1]);
  });

  it("is empty without corrections", () => {
    expect(driftStats([], 0.75)).toMatchObject({ corrections: 0, mean: null, median: null, p90: null, max: null, substantial: 0 });
  });
});

describe("splitOf", () => {
  it("splits by the configured fractions, deterministically", () => {
    const fractions = { train: 0.7, val: 0.15, test: 0.15 };
    const counts = { train: 0, val: 0, test: 0 };
    for (let i = 0; i < 20_000; i += 1) counts[splitOf(`id-${i}`, 42, fractions)] += 1;
    expect(counts.train / 20_000).toBeCloseTo(0.7, 1);
    expect(counts.val / 20_000).toBeCloseTo(0.15, 1);
    expect(splitOf("abc", 42, fractions)).toBe(splitOf("abc", 42, fractions));
    // Another seed reshuffles.
    const moved = Array.from({ length: 200 }, (_, i) => splitOf(`id-${i}`, 42, fractions) !== splitOf(`id-${i}`, 7, fractions));
    expect(moved.filter(Boolean).length).toBeGreaterThan(40);
  });
});
