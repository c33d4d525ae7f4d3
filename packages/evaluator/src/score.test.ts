import { describe, expect, it } from "vitest";
import { loadConfig } from "@ats-lora/core";
import { rougeL } from "./metrics.js";
import { addressesVaguePart, concreteDetails, exampleFeatures, groupMetrics, LOWER_IS_BETTER, namesDetail, scoreExample } from "./score.js";
import { sampleExamples } from "./test-support.js";

const config = loadConfig({ env: {} });
const examples = sampleExamples(config);
const features = examples.map((example) => exampleFeatures(example, config.prompts));
const all = Uint32Array.from(examples.keys());

describe("features of an example", () => {
  it("finds the resume's concrete details that the rest of the prompt does not name", () => {
    const details = concreteDetails("Built a LightGBM model for 40,000 SKUs in Python at Kaufhaus Online", "Must-have: Python and SQL. Generate 1 interview question.");
    expect(details.sort()).toEqual(["40,000", "kaufhaus", "lightgbm", "online", "skus"]);
    expect(namesDetail("Tell me about your Python work", details)).toBe(false);
    expect(namesDetail("How did the LightGBM model handle promotions?", details)).toBe(true);
  });

  it("reads the candidate's text, the follow-up's vague part and the references' scores and JSON", () => {
    const question = features[5]!;
    expect(question.candidate).toContain("Lena Hoffmann");
    expect(question.details).toContain("wape");
    expect(question.details).not.toContain("python"); // the job asks for it: not specific to Lena
    const followUp = features[6]!;
    expect(followUp.follow_up).toBe(true);
    expect(followUp.candidate).toMatch(/^Answer: I launched/);
    expect(followUp.vague_part).toBe("we grew engagement significantly");
    expect(features.filter((feature) => feature.task === "match_score").map((feature) => feature.reference_score)).toEqual([0.9, 0.3, 0.6]);
    expect(features[0]!.reference_json).toMatchObject({ name: "Lena Hoffmann" });
  });

  it("judges a follow-up by shared content words, or by meaning", () => {
    expect(addressesVaguePart("Which engagement metric moved, and by how much?", "we grew engagement significantly", 0.1)).toBe(true);
    expect(addressesVaguePart("What did you study at university?", "we grew engagement significantly", 0.1)).toBe(false);
    expect(addressesVaguePart("What did you study at university?", "we grew engagement significantly", 0.6)).toBe(true);
  });
});

describe("group metrics", () => {
  it("scores an oracle run (the references as predictions) perfectly", () => {
    const scores = examples.map((example, i) =>
      scoreExample({ text: example.completion, loss: 0.5, loss_tokens: 10, seconds: 0.5, tokens: 20 }, features[i]!, { reference: 1, candidate: 0.7, vague_part: 0.8 }),
    );
    const overall = groupMetrics(scores, features, all, { taskMetrics: false });
    expect(overall).toMatchObject({ n: 8, semantic_similarity: 1, rouge_l: 1, exact_match: 1, loss: 0.5, latency_p50_s: 0.5, tokens_per_second: 40 });
    expect(overall.perplexity).toBeCloseTo(Math.exp(0.5), 12);
    expect(overall).not.toHaveProperty("json_validity");
    const parse = groupMetrics(scores, features, Uint32Array.of(0, 1));
    expect(parse).toMatchObject({ json_validity: 1, field_precision: 1, field_recall: 1, field_f1: 1 });
    const match = groupMetrics(scores, features, Uint32Array.of(2, 3, 4));
    expect(match).toMatchObject({ score_validity: 1, mae: 0, rmse: 0, r2: 1, accuracy_within_0_2: 1, accuracy: 1, precision: 1, recall: 1, f1: 1 });
    expect(match.pearson).toBeCloseTo(1, 12);
    expect(match.spearman).toBeCloseTo(1, 12);
    const questions = groupMetrics(scores, features, Uint32Array.of(5, 6));
    expect(questions).toMatchObject({ relevance: 0.7, specificity: 1, follow_up_addresses_vague_part: 1 });
  });

  it("scores a constant run as computed by hand", () => {
    const constant = '{"match_score": 0.5}';
    const scores = examples.map((_, i) => scoreExample({ text: constant }, features[i]!, { reference: 0.2, candidate: 0.1, vague_part: 0.1 }));
    const overall = groupMetrics(scores, features, all, { taskMetrics: false });
    expect(overall.semantic_similarity).toBeCloseTo(0.2, 12);
    expect(overall.exact_match).toBe(0);
    expect(overall.rouge_l).toBeCloseTo(examples.reduce((sum, example) => sum + rougeL(constant, example.completion), 0) / 8, 12);
    expect(overall).not.toHaveProperty("loss");
    expect(overall).not.toHaveProperty("latency_p50_s");
    // A JSON object, but with none of the resume's fields: valid, yet precision, recall and F1 are 0.
    expect(groupMetrics(scores, features, Uint32Array.of(0, 1))).toMatchObject({ json_validity: 1, field_precision: 0, field_recall: 0, field_f1: 0 });
    // References 0.9, 0.3, 0.6 against 0.5: errors 0.4, 0.2, 0.1.
    const match = groupMetrics(scores, features, Uint32Array.of(2, 3, 4));
    expect(match.mae).toBeCloseTo(0.7 / 3, 12);
    expect(match.rmse).toBeCloseTo(Math.sqrt(0.21 / 3), 12);
    expect(match.r2).toBeCloseTo(1 - 0.21 / 0.18, 12);
    expect(match.pearson).toBeNaN();
    expect(match.accuracy_within_0_2).toBeCloseTo(2 / 3, 12);
    // Every prediction says "match"; two of three references do: tp 2, fp 1.
    expect(match).toMatchObject({ precision: 2 / 3, recall: 1 });
    expect(match.accuracy).toBeCloseTo(2 / 3, 12);
    expect(match.f1).toBeCloseTo(0.8, 12);
    expect(groupMetrics(scores, features, Uint32Array.of(5, 6))).toMatchObject({ relevance: 0.1, specificity: 0, follow_up_addresses_vague_part: 0 });
  });

  it("scores the fields of a resume cut at the token limit from its repaired parse, beside the strict ones", () => {
    // Lena's answer cut after the name and half the email, Omar's whole: one invalid, one valid.
    const cut = '{"name": "Lena Hoffmann", "email": "lena.hoff';
    const outputs = [
      { text: cut, hit_token_limit: true },
      { text: examples[1]!.completion, hit_token_limit: false },
    ];
    const scores = outputs.map((output, i) => scoreExample(output, features[i]!, { reference: 0.5 }));
    expect(scores.map((row) => [row.json_valid, row.hit_token_limit])).toEqual([
      [0, 1],
      [1, 0],
    ]);
    const parse = groupMetrics(scores, features, Uint32Array.of(0, 1));
    // Strict: Lena predicts nothing (name, email, 4 skills missed); Omar right on name and email (his skills are empty): tp 2, fn 6.
    expect(parse.json_validity).toBe(0.5);
    expect(parse).toMatchObject({ field_precision: 1, field_recall: 0.25 });
    expect(parse.field_f1).toBeCloseTo(0.4, 12);
    // Repaired: Lena's name is right and her cut email wrong: tp 3, fp 1, fn 5 → P 3/4, R 3/8, F1 1/2.
    expect(parse.field_precision_repaired).toBeCloseTo(0.75, 12);
    expect(parse.field_recall_repaired).toBeCloseTo(0.375, 12);
    expect(parse.field_f1_repaired).toBeCloseTo(0.5, 12);
    expect(parse.hit_token_limit).toBe(0.5);
    // Where the runner did not say (predictions files), no share is reported.
    expect(groupMetrics([scoreExample({ text: cut }, features[0]!, { reference: 0.5 })], features, Uint32Array.of(0))).not.toHaveProperty("hit_token_limit");
    expect(LOWER_IS_BETTER.has("hit_token_limit")).toBe(true);
  });

  it("counts an output without a number as an invalid score, with the error of the farthest score from its reference", () => {
    const scores = examples.map((example, i) => scoreExample({ text: i === 3 ? "no idea" : example.completion }, features[i]!, { reference: 1 }));
    const match = groupMetrics(scores, features, Uint32Array.of(2, 3, 4));
    expect(match.score_validity).toBeCloseTo(2 / 3, 12);
    const reference = features[3]!.reference_score!;
    const worst = Math.max(reference, 1 - reference);
    expect(match.n_scored).toBe(2);
    expect(match.mae).toBeCloseTo(worst / 3, 12);
    expect(match.accuracy_within_0_2).toBeCloseTo(2 / 3, 12);
  });
});
