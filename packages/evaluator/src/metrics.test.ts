import { describe, expect, it } from "vitest";
import { addCounts, exactMatch, extractScore, fieldCounts, fieldDifferences, parseJsonOutput, parseJsonOutputRepaired, prf, quantile, ranks, rougeL, scoreMetrics } from "./metrics.js";

describe("text metrics", () => {
  it("ROUGE-L F1 from the longest common token subsequence", () => {
    // LCS "the cat on the mat" = 5 of 6 tokens each way: P = R = F = 5/6.
    expect(rougeL("The cat sat on the mat.", "the cat is on the mat")).toBeCloseTo(5 / 6, 12);
    // LCS 2 ("b d"): P = 2/3, R = 2/4, F = 2·(2/3)(1/2)/(2/3 + 1/2) = 4/7.
    expect(rougeL("a b d", "b c d e")).toBeCloseTo(4 / 7, 12);
    expect(rougeL("a b c", "x y")).toBe(0);
    expect(rougeL("", "")).toBe(1);
    expect(rougeL("", "x")).toBe(0);
  });

  it("exact match after trimming and collapsing whitespace, case kept", () => {
    expect(exactMatch(" Hello  world\n", "Hello world")).toBe(1);
    expect(exactMatch("hello world", "Hello world")).toBe(0);
  });
});

describe("resume parsing metrics", () => {
  it("parses whole-text JSON or one fenced block, nothing else", () => {
    expect(parseJsonOutput('{"a": 1}')).toEqual({ a: 1 });
    expect(parseJsonOutput('```json\n{"a": [1, 2]}\n```')).toEqual({ a: [1, 2] });
    expect(parseJsonOutput('Here it is: {"a": 1}')).toBeUndefined();
    expect(parseJsonOutput('{"a": 1')).toBeUndefined();
  });

  it("repairs an answer cut at the token limit, a fence left open and prose before the object, but not prose alone", () => {
    // The tuned SmolLM2 of the issue: a right start, then a loop until the limit, so the answer never closes.
    const cut = '{"name": "Shawana Spinka", "email": "s.spinka@example.com", "skills": ["System Engineering", "System Engineering", "Sys';
    expect(parseJsonOutput(cut)).toBeUndefined();
    expect(parseJsonOutputRepaired(cut)).toEqual({ name: "Shawana Spinka", email: "s.spinka@example.com", skills: ["System Engineering", "System Engineering", "Sys"] });
    expect(parseJsonOutputRepaired('{"name": "Ana", "ema')).toEqual({ name: "Ana", ema: null });
    expect(parseJsonOutputRepaired('```json\n{"a": [1, 2')).toEqual({ a: [1, 2] });
    expect(parseJsonOutputRepaired('Here it is: {"a": 1,}')).toEqual({ a: 1 });
    // A valid answer is the strict parse itself.
    expect(parseJsonOutputRepaired('{"a": 1}')).toEqual({ a: 1 });
    expect(parseJsonOutputRepaired("no JSON here")).toBeUndefined();
    expect(parseJsonOutputRepaired("")).toBeUndefined();
  });

  it("marks each field and list item of an answer against the reference: same, different, missing, extra", () => {
    const differences = fieldDifferences(
      { name: "ana  RUIZ", email: "ana@x.es", skills: ["Go", "Rust", "go"], phone: "+34 600", education: [] },
      { name: "Ana Ruiz", email: "a@x.es", skills: ["go", "Kafka"], location: "Madrid", education: [] },
    );
    expect(differences.map(({ field, status }) => [field, status])).toEqual([
      ["name", "same"],
      ["email", "different"],
      ["skills", "different"],
      ["location", "missing"],
      ["education", "same"],
      ["phone", "extra"],
    ]);
    expect(differences[2]!.items).toEqual([
      { value: "Go", status: "same" },
      { value: "Rust", status: "extra" },
      { value: "go", status: "extra" },
      { value: "Kafka", status: "missing" },
    ]);
    expect(fieldDifferences(undefined, { name: "x" })).toEqual([{ field: "name", reference: "x", predicted: undefined, status: "missing" }]);
  });

  it("counts fields: scalars as one item, lists as sets, empty as nothing predicted", () => {
    const predicted = { name: "Ana Ruiz", skills: ["Go", "Kafka", "Rust"], email: null, phone: "+34 600" };
    const reference = { name: "ana  ruiz", skills: ["go", "kafka", "PostgreSQL"], email: "a@x.es" };
    const counts = fieldCounts(predicted, reference);
    expect(counts).toEqual({
      name: { tp: 1, fp: 0, fn: 0 },
      skills: { tp: 2, fp: 1, fn: 1 },
      email: { tp: 0, fp: 0, fn: 1 },
      phone: { tp: 0, fp: 1, fn: 0 },
    });
    expect(prf(counts.skills!)).toEqual({ precision: 2 / 3, recall: 2 / 3, f1: 2 / 3 });
    const overall = Object.values(counts).reduce((sum, c) => ({ tp: sum.tp + c.tp, fp: sum.fp + c.fp, fn: sum.fn + c.fn }), { tp: 0, fp: 0, fn: 0 });
    // tp 3, fp 2, fn 2: P = R = F = 3/5.
    expect(prf(overall).f1).toBeCloseTo(0.6, 12);
    // Nested objects compare whole, keys in any order.
    expect(fieldCounts({ education: [{ school: "UPM", year: 2017 }] }, { education: [{ year: 2017, school: "upm" }] }).education).toEqual({ tp: 1, fp: 0, fn: 0 });
    // A non-object prediction predicts no field.
    expect(fieldCounts("oops", { name: "x" })).toEqual({ name: { tp: 0, fp: 0, fn: 1 } });
    expect(addCounts({ a: { tp: 1, fp: 0, fn: 0 } }, { a: { tp: 1, fp: 1, fn: 0 }, b: { tp: 0, fp: 0, fn: 2 } })).toEqual({ a: { tp: 2, fp: 1, fn: 0 }, b: { tp: 0, fp: 0, fn: 2 } });
  });
});

describe("match-score metrics", () => {
  it("match hand-computed values", () => {
    const m = scoreMetrics([0.9, 0.4, 0.6, 0.1], [1.0, 0.5, 0.3, 0.0]);
    // errors −0.1, −0.1, 0.3, 0.1
    expect(m.n).toBe(4);
    expect(m.mae).toBeCloseTo(0.15, 12);
    expect(m.rmse).toBeCloseTo(Math.sqrt(0.12 / 4), 12);
    expect(m.r2).toBeCloseTo(1 - 0.12 / 0.53, 12);
    expect(m.pearson).toBeCloseTo(0.38 / Math.sqrt(0.34 * 0.53), 12);
    // ranks [4, 2, 3, 1] vs [4, 3, 2, 1]: 1 − 6·2 / (4·15) = 0.8
    expect(m.spearman).toBeCloseTo(0.8, 12);
    expect(m.accuracy_within_0_2).toBe(0.75);
    // at 0.5: tp 1, fp 1, fn 1, tn 1
    expect([m.accuracy, m.precision, m.recall, m.f1]).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(scoreMetrics([0.7], [0.5]).accuracy_within_0_2).toBe(1);
  });

  it("is perfect for an oracle and undefined where a side is constant", () => {
    const reference = [0.2, 0.9, 0.5, 0.7];
    expect(scoreMetrics(reference, reference)).toMatchObject({ mae: 0, rmse: 0, r2: 1, accuracy_within_0_2: 1, accuracy: 1, f1: 1 });
    expect(scoreMetrics(reference, reference).pearson).toBeCloseTo(1, 12);
    const constant = scoreMetrics([0.5, 0.5, 0.5, 0.5], reference);
    expect(constant.pearson).toBeNaN();
    expect(constant.mae).toBeCloseTo((0.3 + 0.4 + 0 + 0.2) / 4, 12);
    // Everything predicted a match: tp 3 (0.9, 0.5, 0.7), fp 1 (0.2).
    expect([constant.precision, constant.recall, constant.accuracy]).toEqual([0.75, 1, 0.75]);
  });

  it("ranks ties by their average rank, interpolates quantiles, and reads scores from outputs", () => {
    expect(ranks([3, 1, 3, 2])).toEqual([3.5, 1, 3.5, 2]);
    expect(quantile([10, 20, 30, 40], 0.5)).toBe(25);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0.95)).toBeCloseTo(10.5, 12);
    expect(extractScore('{"match_score": 0.85, "reasoning": "x"}')).toBe(0.85);
    expect(extractScore("0.4")).toBe(0.4);
    expect(extractScore('{"match_score": "high"}')).toBeUndefined();
    expect(extractScore("about 0.8")).toBeUndefined();
  });
});

describe("field counts of deeply nested answers", () => {
  it("compares a looping model's nested lists without blowing up the string (each level escaped once)", () => {
    const deep = JSON.parse("[".repeat(60) + '"x"' + "]".repeat(60)) as unknown;
    const counts = fieldCounts({ skills: deep }, { skills: ["x"] });
    expect(counts.skills).toEqual({ tp: 0, fp: 1, fn: 1 });
    expect(fieldCounts({ skills: [["A "]] }, { skills: [["a"]] }).skills).toEqual({ tp: 1, fp: 0, fn: 0 });
  });
});
