import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { trainCommand } from "./command.js";
import { configOverrides, type TrainFlags } from "./commands/train-flags.js";
import { runSettings, trainParams, type TrainRun } from "./train.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function options(env: NodeJS.ProcessEnv, extra: Partial<TrainRun> = {}): TrainRun {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-train-data-"));
  fs.mkdirSync(path.join(dataDir, "sft"));
  fs.writeFileSync(path.join(dataDir, "sft", "train.jsonl"), '{"prompt": "p", "completion": "c", "task": "t", "source_ids": ["a"]}\n');
  const config = loadConfig({ env, overrides: { model: { base: "org/model" }, training: { format: "sft" } } });
  return { config, dataDir, outputDir: path.join(dataDir, "out"), resume: false, ...extra };
}

describe("train's settings", () => {
  it("takes the hybrid regression loss from the configuration (training.regression_*), flags over it", () => {
    expect(trainParams(options({})).regression).toBeNull();
    const configured = options({ ATS_LORA_TRAINING__REGRESSION_FIELD: "match_score", ATS_LORA_TRAINING__REGRESSION_LOSS: "huber" });
    expect(trainParams(configured).regression).toEqual({ field: "match_score", weight: 1, loss: "huber" });
    // An explicit value (the demo's, a flag's) wins; null turns it off.
    expect(trainParams({ ...configured, regression: null }).regression).toBeNull();
  });

  it("passes early stopping from the configuration (training.early_stopping_patience), off by default, the flag over it", () => {
    expect(trainParams(options({})).early_stopping_patience).toBeNull();
    expect(trainParams(options({ ATS_LORA_TRAINING__EARLY_STOPPING_PATIENCE: "3" })).early_stopping_patience).toBe(3);
    const program = trainCommand();
    program.exitOverride();
    program.action(() => undefined);
    const flags = program.parse(["--early-stopping-patience", "2"], { from: "user" }).opts<TrainFlags>();
    const config = loadConfig({ env: {}, overrides: configOverrides(flags) });
    expect(config.training.early_stopping_patience).toBe(2);
    const quiet = trainCommand().exitOverride().configureOutput({ writeErr: () => undefined });
    expect(() => quiet.parse(["--early-stopping-patience", "0"], { from: "user" })).toThrow("must be a positive whole number");
  });

  it("records what the checkpoints depend on, the training data included", () => {
    const first = options({});
    const settings = runSettings(first);
    expect(settings).toMatchObject({ base: "org/model", format: "sft", lora_r: 16, learning_rate: 2e-4, batch_size: 4, grad_accum: 4, max_seq_length: 1024 });
    expect(settings.data.train).toMatch(/^[0-9a-f]{64}$/);
    expect(settings.data.val).toBeNull();
    fs.appendFileSync(path.join(first.dataDir, "sft", "train.jsonl"), '{"prompt": "q", "completion": "d", "task": "t", "source_ids": ["b"]}\n');
    expect(runSettings(first).data.train).not.toBe(settings.data.train);
  });

  it("documents every train flag in README's train section and the regression keys in configs/default.yaml", () => {
    const readme = fs.readFileSync(path.join(REPO, "README.md"), "utf8");
    const start = readme.indexOf("### `train` in detail");
    expect(start).toBeGreaterThan(0);
    const section = readme.slice(start, readme.indexOf("\n### ", start + 1));
    for (const option of trainCommand().options) {
      expect(section, `README's train section should mention ${option.long}`).toContain(`\`${option.long}`);
    }
    expect(section).toContain("training.regression_field");
    const yaml = fs.readFileSync(path.join(REPO, "configs", "default.yaml"), "utf8");
    for (const key of ["regression_field", "regression_weight", "regression_loss", "early_stopping_patience", "max_seq_length"]) {
      expect(yaml).toMatch(new RegExp(`^  ${key}: .*#\\s*\\S`, "m"));
    }
  });
});
