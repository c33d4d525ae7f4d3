import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig, sha256File } from "@ats-lora/core";
import { bundledTaskRows } from "@ats-lora/core/testing";
import { MlflowClient } from "@ats-lora/tracking";
import { startMlflowServer, type MlflowTestServer } from "@ats-lora/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// From outside, as a CI script runs it: `match train`, `eval --baseline tfidf --gate` and `models list` through the
// built CLI, tracked on a real MLflow server (MLFLOW_TRACKING_URI), then with that server gone.

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");
const config = loadConfig({ env: {} });
const W = fs.mkdtempSync(path.join(os.tmpdir(), "ats-tracking-cli-"));
const SFT = path.join(W, "feedback_db", "training_pairs", "sft");
let server: MlflowTestServer;

function cli(args: string[], env: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, [BIN, "--workdir", W, ...args], { encoding: "utf8", env: { ...process.env, MLFLOW_TRACKING_URI: "", ...env } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

beforeAll(async () => {
  server = await startMlflowServer();
  // The bundled match-score interactions as build-db's rows: 40 to train on, the rest held out.
  const rows = bundledTaskRows("one_page_resumes.jsonl", "match_score", config.prompts);
  fs.mkdirSync(SFT, { recursive: true });
  const write = (name: string, part: object[]) => fs.writeFileSync(path.join(SFT, name), part.map((row) => JSON.stringify(row)).join("\n") + "\n");
  write("train.jsonl", rows.slice(0, 40));
  write("test.jsonl", rows.slice(40));
  fs.writeFileSync(path.join(W, "feedback_db", "training_pairs", "manifest.json"), JSON.stringify({ format_version: 1 }));
  // What an API model answered: the reference score, or 0.5 where it could not decide.
  fs.writeFileSync(
    path.join(W, "api.jsonl"),
    rows
      .slice(40)
      .map((row, i) => JSON.stringify({ prompt: row.prompt, prediction: i % 3 === 0 ? JSON.stringify({ match_score: 0.5 }) : row.completion }))
      .join("\n") + "\n",
  );
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

describe("tracking from the command line", () => {
  it("match train registers the matcher; eval --gate --baseline tfidf uses it and logs its metrics and report; models list shows it", async () => {
    const env = { MLFLOW_TRACKING_URI: server.url, MLFLOW_EXPERIMENT_NAME: "cli-test" };
    const trained = cli(["--json", "match", "train"], env);
    expect(trained.code, trained.stderr).toBe(0);
    const matcher = JSON.parse(trained.stdout) as { name: string; path: string; mlflow: { registered_model: string; version: string; alias: string }; card: { data_sha256: string } };
    expect(matcher).toMatchObject({ name: "tfidf_matcher_v1", mlflow: { registered_model: "ats-lora-tfidf-matcher", version: "1", alias: "current" } });
    expect(matcher.card.data_sha256).toBe(sha256File(path.join(SFT, "train.jsonl")));

    const evaluated = cli(["--json", "eval", "--predictions", path.join(W, "api.jsonl"), "--test_data", path.join(SFT, "test.jsonl"), "--gate", "--baseline", "tfidf"], env);
    expect([0, 3], evaluated.stderr).toContain(evaluated.code);
    const result = JSON.parse(evaluated.stdout) as { systems: Array<{ name: string; matcher?: unknown }>; gate: { passed: boolean }; mlflow: { run_id: string }; report_files: { json: string } };
    expect(result.systems[1]).toMatchObject({ name: "baseline-tfidf", matcher: { kind: "trained", path: matcher.path } });

    const client = new MlflowClient(server.url, { timeoutMs: 5000 });
    const run = await client.getRun(result.mlflow.run_id);
    const metrics = Object.fromEntries((run.data.metrics ?? []).map((metric) => [metric.key, metric.value]));
    expect(metrics["gate.passed"]).toBe(result.gate.passed ? 1 : 0);
    expect(metrics["api.match_score.mae"]).toBeGreaterThan(0);
    expect(Object.keys(metrics)).toEqual(expect.arrayContaining(["baseline-tfidf.match_score.spearman", "api_vs_baseline-tfidf.match_score.mae.delta", "api_vs_baseline-tfidf.match_score.mae.low"]));
    expect((await client.listArtifacts(result.mlflow.run_id, "report")).map((file) => file.path)).toEqual(["report/predictions.jsonl", "report/report.html", "report/report.json", "report/report.md"]);

    const listed = cli(["--json", "models", "list"]);
    expect(listed.code, listed.stderr).toBe(0);
    const models = (JSON.parse(listed.stdout) as { models: Array<{ name: string; kind: string; lineage: { dataset: { manifest_sha256: string } } | null }> }).models;
    expect(models).toEqual([expect.objectContaining({ name: "tfidf_matcher_v1", kind: "matcher", lineage: expect.objectContaining({ dataset: expect.objectContaining({ manifest_sha256: sha256File(path.join(W, "feedback_db", "training_pairs", "manifest.json")) }) }) })]);

    const shown = cli(["models", "show", "tfidf_matcher_v1"]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain("TF-IDF resume–job matcher trained");
    expect(shown.stdout).toMatch(/\| train \| 40 \| 0\.\d{3} \|/);
    expect(shown.stdout).toContain(`registered: ats-lora-tfidf-matcher version 1`);

    const scored = cli(["--json", "match", "score", "--resume", path.join(SFT, "test.jsonl"), "--job", path.join(SFT, "test.jsonl")]);
    expect(scored.code, scored.stderr).toBe(0);
    expect(JSON.parse(scored.stdout)).toMatchObject({ matcher: matcher.path, score: expect.any(Number) });
  }, 300_000);

  it("with the server gone, eval still gives its verdict, warning once", async () => {
    const uri = server.url;
    await server.stop();
    const evaluated = cli(["--json", "eval", "--predictions", path.join(W, "api.jsonl"), "--test_data", path.join(SFT, "test.jsonl"), "--gate", "--baseline", "tfidf"], { MLFLOW_TRACKING_URI: uri });
    expect([0, 3], evaluated.stderr).toContain(evaluated.code);
    expect(JSON.parse(evaluated.stdout).mlflow).toBeUndefined();
    const warnings = evaluated.stderr.split("\n").filter((line) => line.startsWith("warning: "));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`MLflow tracking at ${uri} failed`);
  }, 120_000);
});
