import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig, trainingPairsFile, workdirPaths, type OperationContext, type ProgressEvent } from "@ats-lora/core";
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
  it("createTinyModel then trainAdapter: typed results, progress through events only", async () => {
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
  }, 300_000);
});
