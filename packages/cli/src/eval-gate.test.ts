import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundledDataDir, buildPrompt, loadConfig } from "@ats-lora/core";
import { parseRequirement } from "@ats-lora/evaluator";
import { describe, expect, it } from "vitest";

// `eval --gate` as CI calls it: the bundled match-score interactions with a reviewer's reference score as the test
// data, a predictions file against the TF-IDF baseline, and the exit code that fails or passes a pipeline.

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");
const config = loadConfig({ env: {} });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-gate-"));

const rows = fs
  .readFileSync(path.join(bundledDataDir(), "samples", "interactions.jsonl"), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line) as { task: string; query: string; context: string[]; metadata?: { reference_score?: number } })
  .filter((interaction) => interaction.task === "match_score" && typeof interaction.metadata?.reference_score === "number")
  .map((interaction) => ({ prompt: buildPrompt({ task: "match_score", query: interaction.query, context: interaction.context }, config.prompts), reference: interaction.metadata!.reference_score! }));
const testFile = path.join(dir, "match.jsonl");
fs.writeFileSync(testFile, rows.map(({ prompt, reference }) => JSON.stringify({ prompt, completion: JSON.stringify({ match_score: reference }), task: "match_score" })).join("\n") + "\n");

function predictions(name: string, score: (reference: number) => number): string {
  const file = path.join(dir, `${name}.jsonl`);
  fs.writeFileSync(file, rows.map(({ prompt, reference }) => JSON.stringify({ prompt, prediction: JSON.stringify({ match_score: score(reference), reasoning: "r" }) })).join("\n") + "\n");
  return file;
}

interface GateOutput {
  gate: { passed: boolean; failed: Array<{ kind: string; group: string; metric: string; against?: string; requirement?: string }>; summary: string[] };
}

function gate(file: string, ...extra: string[]): { code: number | null; json: GateOutput | null; stderr: string } {
  const run = spawnSync(process.execPath, [BIN, "--workdir", dir, "--quiet", "eval", "--predictions", file, "--test_data", testFile, "--gate", "--baseline", "tfidf", "--json", ...extra], { encoding: "utf8" });
  return { code: run.status, json: run.stdout.trim() === "" ? null : (JSON.parse(run.stdout) as GateOutput), stderr: run.stderr };
}

describe("eval --gate", () => {
  it("exits 3 for predictions clearly worse than the baseline and names the failed metrics; 0 for better ones", () => {
    expect(rows.length).toBeGreaterThanOrEqual(30);
    const worse = gate(predictions("inverted", (reference) => Math.round((1 - reference) * 100) / 100));
    expect(worse.code, worse.stderr).toBe(3);
    expect(worse.json!.gate.passed).toBe(false);
    const failed = worse.json!.gate.failed.map((failure) => `${failure.group}.${failure.metric}`);
    expect(failed).toEqual(expect.arrayContaining(["match_score.spearman", "match_score.pearson"]));
    expect(worse.json!.gate.failed.every((failure) => failure.kind === "worse" && failure.against === "baseline-tfidf")).toBe(true);
    expect(worse.json!.gate.summary[0]).toMatch(/is worse than baseline-tfidf: .* → .*\[/);

    const better = gate(predictions("reviewers", (reference) => reference));
    expect(better.code, better.stderr).toBe(0);
    expect(better.json!.gate).toMatchObject({ passed: true, failed: [], against: ["baseline-tfidf"] });
  }, 180_000);

  it("fails a missed or unmeasured --require with exit 3, and refuses a malformed one with exit 2", () => {
    const file = predictions("reviewers", (reference) => reference);
    const missed = gate(file, "--require", "match_score.mae<=0.1", "--require", "match_score.accuracy<0.5", "--require", "resume_parse.json_validity>=0.95");
    expect(missed.code, missed.stderr).toBe(3);
    expect(missed.json!.gate.failed.map((failure) => failure.requirement)).toEqual(["match_score.accuracy<0.5", "resume_parse.json_validity>=0.95"]);
    expect(missed.json!.gate.summary[1]).toContain("has no resume_parse metrics");
    const malformed = gate(file, "--require", "json_validity at least 0.9");
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain("[task.]metric OPERATOR number");
  }, 180_000);

  it("reads requirements as [task.]metric OPERATOR number", () => {
    expect(parseRequirement("resume_parse.json_validity>=0.95")).toMatchObject({ group: "resume_parse", metric: "json_validity", operator: ">=", threshold: 0.95 });
    expect(parseRequirement(" mae < 0.2 ")).toMatchObject({ group: "overall", metric: "mae", operator: "<", threshold: 0.2 });
    expect(() => parseRequirement("mae")).toThrow(/not a requirement/);
  });
});
