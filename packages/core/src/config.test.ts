import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigSchema, loadConfig } from "./config.js";
import { InputError } from "./errors.js";
import { defaultConfigPath } from "./paths.js";

function tempFile(name: string, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-config-"));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

function loadError(run: () => unknown): InputError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error("expected loadConfig to throw");
}

describe("loadConfig", () => {
  it("loads the seed defaults from configs/default.yaml", () => {
    const config = loadConfig({ env: {} });
    expect(config.model.base).toBe("mistralai/Mistral-7B-v0.1");
    expect(config.lora).toMatchObject({ r: 16, alpha: 32, dropout: 0.05, target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"] });
    expect(config.training).toMatchObject({ learning_rate: 2e-4, batch_size: 4, grad_accum: 4, max_steps: null, warmup_steps: 100 });
    expect(config.rag).toMatchObject({ chunk_size: 512, chunk_overlap: 50, top_k: 5 });
    expect(config.embeddings.model).toBe("sentence-transformers/all-MiniLM-L6-v2");
    expect(config.feedback).toMatchObject({ min_samples: 100, similarity_threshold: 0.75 });
  });

  it("documents every setting in default.yaml with a comment", () => {
    const lines = fs.readFileSync(defaultConfigPath(), "utf8").split("\n");
    // The per-task instructions are data under one commented key, not settings of their own.
    let dataIndent = -1;
    const leaves = lines.filter((line) => {
      const indent = line.length - line.trimStart().length;
      if (dataIndent >= 0 && indent > dataIndent) return false;
      dataIndent = /^\s*instructions:/.test(line) ? indent : -1;
      return /^\s+\w+:\s*\S/.test(line);
    });
    expect(leaves.length).toBeGreaterThan(30);
    for (const line of leaves) expect(line, line).toMatch(/#\s*\S/);
    // Every key of the schema is in the file (the schema has no defaults of its own).
    expect(ConfigSchema.safeParse(loadConfig({ env: {} })).success).toBe(true);
  });

  it("applies defaults < --config file < ATS_LORA_* environment < flags", () => {
    const file = tempFile("my.yaml", "lora:\n  r: 8\n  alpha: 16\ntraining:\n  batch_size: 2\n");
    const config = loadConfig({
      configFile: file,
      env: { ATS_LORA_LORA__R: "4", ATS_LORA_LORA__TARGET_MODULES: "[q_proj, v_proj]", ATS_LORA_PYTHON: "/usr/bin/python3" },
      overrides: { training: { batch_size: 1, learning_rate: undefined } },
    });
    expect(config.lora.r).toBe(4); // env over file
    expect(config.lora.alpha).toBe(16); // file over defaults
    expect(config.lora.target_modules).toEqual(["q_proj", "v_proj"]);
    expect(config.training.batch_size).toBe(1); // flags over file
    expect(config.training.learning_rate).toBe(2e-4); // an undefined flag does not override
  });

  it("names the key path and the allowed values of an invalid enum, with the file and line", () => {
    const file = tempFile("bad.yaml", "model:\n  base: x\n  quantization: 3bit\n");
    const error = loadError(() => loadConfig({ configFile: file, env: {} }));
    expect(error.exitCode).toBe(2);
    const detail = error.details.join("\n");
    expect(detail).toContain(`${file}:3: model.quantization`);
    expect(detail).toMatch(/"auto".*"4bit".*"8bit".*"none"/);
    expect(detail).toContain('got "3bit"');
  });

  it("names an unknown key with the allowed keys", () => {
    const file = tempFile("typo.yaml", "lora:\n  rank: 8\n");
    const detail = loadError(() => loadConfig({ configFile: file, env: {} })).details.join("\n");
    expect(detail).toContain("lora.rank: unknown key");
    expect(detail).toContain("allowed keys: r, alpha, dropout, target_modules, top_layers, bias");
  });

  it("asks for a demo training-row count for each demo task", () => {
    const file = tempFile("demo.yaml", "demo:\n  tasks: [resume_parse, interview_question]\n");
    const detail = loadError(() => loadConfig({ configFile: file, env: {} })).details.join("\n");
    expect(detail).toContain("demo.train_rows_by_task");
    expect(detail).toContain("needs a count in train_rows_by_task for each of demo.tasks");
    const counted = tempFile("counted.yaml", "demo:\n  tasks: [interview_question]\n  train_rows_by_task:\n    interview_question: 8\n");
    expect(loadConfig({ configFile: counted, env: {} }).demo.train_rows_by_task).toMatchObject({ interview_question: 8, resume_parse: 20 });
  });

  it("names the environment variable that holds a bad value", () => {
    const detail = loadError(() => loadConfig({ env: { ATS_LORA_TRAINING__BATCH_SIZE: "zero" } })).details.join("\n");
    expect(detail).toContain("environment (ATS_LORA_TRAINING__BATCH_SIZE): training.batch_size");
  });

  it("reports YAML syntax errors with the line", () => {
    const file = tempFile("broken.yaml", "lora:\n  r: [1, 2\n");
    expect(loadError(() => loadConfig({ configFile: file, env: {} })).message).toMatch(new RegExp(`${file}:\\d+: not valid YAML`));
  });

  it("reports a missing config file", () => {
    expect(loadError(() => loadConfig({ configFile: "/nonexistent/x.yaml", env: {} })).message).toContain("cannot read config file");
  });

  it("names the file of a YAML alias bomb, and stops it", () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (const [from, to] of [["a", "b"], ["b", "c"], ["c", "d"], ["d", "e"], ["e", "f"]]) levels.push(`${to}: &${to} [${Array(9).fill(`*${from}`).join(", ")}]`);
    const file = tempFile("bomb.yaml", `${levels.join("\n")}\n`);
    expect(loadError(() => loadConfig({ configFile: file, env: {} })).message).toMatch(new RegExp(`^${file}: YAML aliases expand too far`));
  });

  it("names a circular alias in a file and in an environment variable", () => {
    const file = tempFile("circular.yaml", "training: &t\n  seed: *t\n");
    expect(loadError(() => loadConfig({ configFile: file, env: {} })).message).toBe(`${file}: a YAML alias refers to its own anchor, so the value never ends`);
    const error = loadError(() => loadConfig({ env: { ATS_LORA_TRAINING__LEARNING_RATE: "&a [*a]" } }));
    expect(error.message).toBe("environment (ATS_LORA_TRAINING__LEARNING_RATE): a YAML alias refers to its own anchor, so the value never ends");
  });
});
