import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig, readModelCard, sha256File, trainingPairsFile, workdirPaths, writeRegistry, type OperationContext, type ProgressEvent } from "@ats-lora/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { watchTerminal, type TerminalWatch } from "@ats-lora/core/testing";
import { createTinyModel } from "./tiny.js";
import { trainAdapter, type TrainEvent } from "./train.js";

/** The trainer's operations on a tiny random model and four rows, through the real worker: not a byte printed. */

let terminal: TerminalWatch;
beforeEach(() => {
  terminal = watchTerminal();
});
afterEach(() => {
  expect(terminal.stop(), "the operation wrote to the terminal").toEqual([]);
});

describe("the trainer's operations", () => {
  it("createTinyModel then trainAdapter: typed results, progress through events only, the adapter's lineage in model.json", async () => {
    const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-trainer-ops-"));
    const paths = workdirPaths(workdir);
    const tiny = path.join(paths.models, "tiny");
    const base: OperationContext = { paths, config: loadConfig({ env: {} }) };
    const created = await createTinyModel({ dir: tiny, pretrainSteps: 0, seed: 1 }, base, {
      onEvent: (event: ProgressEvent) => expect(event.type).toBe("progress"),
    });
    expect(created.path).toBe(tiny);

    const rows = ["skills", "experience", "education", "summary"].map((part, i) => ({
      prompt: `Name the ${part} section of resume ${i}.`,
      completion: `The ${part} section.`,
      task: "resume_analysis",
      source_ids: [`r${i}`],
    }));
    const trainFile = trainingPairsFile(paths.trainingPairs, "sft", "train");
    fs.mkdirSync(path.dirname(trainFile), { recursive: true });
    fs.writeFileSync(trainFile, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
    // What build-db writes beside the rows: the adapter's lineage names its hash.
    const manifest = path.join(paths.trainingPairs, "manifest.json");
    fs.writeFileSync(manifest, JSON.stringify({ format_version: 1, config_hash: "feedc0de" }));
    const config = loadConfig({
      env: {},
      overrides: { model: { base: tiny, quantization: "none" }, training: { format: "sft", max_steps: 2, batch_size: 2, grad_accum: 1, warmup_steps: 0, save_steps: 2, max_seq_length: 64 } },
    });
    const events: TrainEvent[] = [];
    const outcome = await trainAdapter({ outputDir: path.join(paths.models, "v1") }, { paths, config }, { onEvent: (event) => events.push(event) });
    expect(outcome.status).toBe("completed");
    if (outcome.status !== "completed") return;
    expect(outcome.metrics.steps).toBe(2);
    expect(fs.existsSync(path.join(paths.models, "v1", "adapter_config.json"))).toBe(true);
    expect(events[0]?.method).toBe("started");
    expect(events.some((event) => event.method === "progress" && event.params.stage === "train")).toBe(true);

    // Lineage: the base's hash, the data's manifest hash and rows, the settings' hash, the metrics; no parent yet.
    const card = readModelCard(path.join(paths.models, "v1"));
    expect(card).toMatchObject({
      kind: "adapter",
      base: { path: tiny, format: "hf" },
      dataset: { path: paths.trainingPairs, manifest_sha256: sha256File(manifest), config_hash: "feedc0de", rows: { train: 4, val: 0 } },
      settings_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      training_args: expect.objectContaining({ learning_rate: config.training.learning_rate, max_steps: 2 }),
      metrics: expect.objectContaining({ steps: 2 }),
      parent: null,
    });
    expect(fs.readFileSync(path.join(paths.models, "v1", "README.md"), "utf8")).toContain(`manifest sha256 ${sha256File(manifest)}`);

    // With v1 in production, the next adapter names it as its parent.
    writeRegistry(paths.models, { format_version: 1, production: "v1", staging: null, history: [{ at: new Date().toISOString(), stage: "production", action: "promote", model: "v1", previous: null }] });
    const second = await trainAdapter({ outputDir: path.join(paths.models, "v2") }, { paths, config }, {});
    expect(second.status).toBe("completed");
    expect(readModelCard(path.join(paths.models, "v2"))).toMatchObject({ parent: { name: "v1", path: path.join(paths.models, "v1") } });
  }, 300_000);
});
