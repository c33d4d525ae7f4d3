import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BUILD_MARKER_FILE, InputError, loadConfig, type AtsConfig } from "@ats-lora/core";
import { FeedbackStore, importJsonlFile } from "@ats-lora/feedback";
import { describe, expect, it } from "vitest";
import { writeTrainingPairs, type BuildOptions } from "./build.js";
import type { TrainingPairsManifest } from "./schema.js";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ats-build-db-output-"));
}

/** The build's manifest (what build-db prints). */
async function buildManifest(options: BuildOptions): Promise<TrainingPairsManifest> {
  return (await writeTrainingPairs(options)).manifest;
}

function config(): AtsConfig {
  const base = loadConfig({ env: {} });
  return { ...base, feedback: { ...base.feedback, min_samples: 1 } };
}

const LINES = [
  { id: "a", task: "resume_analysis", query: "Analyse the resume of Ana Ruiz, backend engineer.", response: "Strong Go background.", feedback: { rating: 5 } },
  { id: "b", task: "resume_analysis", query: "Analyse the resume of Tomás Lindqvist, ICU nurse.", response: "Knows Java.", feedback: { rating: 2, ideal_response: "Nine years of ICU nursing." } },
];

function inputFile(): string {
  const file = path.join(tempDir(), "interactions.jsonl");
  fs.writeFileSync(file, LINES.map((line) => JSON.stringify(line)).join("\n"));
  return file;
}

function storeFile(): string {
  const file = path.join(tempDir(), "feedback_db", "feedback.sqlite");
  const store = FeedbackStore.open(file);
  importJsonlFile(store, inputFile());
  store.close();
  return file;
}

/** A pid that no process has: one of a child that has already exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString());
}

describe("build-db's output folder", () => {
  it("refuses an --output folder that holds anything but training pairs (the feedback store's folder), and deletes nothing", async () => {
    const store = storeFile();
    const folder = path.dirname(store);
    const before = fs.readdirSync(folder).sort();
    const build = buildManifest({ config: config(), storeFile: store, outputDir: folder });
    await expect(build).rejects.toThrow(InputError);
    await expect(build).rejects.toThrow(/--output .*feedback_db is not empty and does not hold an earlier training pairs build \(it has feedback\.sqlite/);
    expect(fs.readdirSync(folder).sort()).toEqual(before);
    expect(fs.readdirSync(path.dirname(folder))).toEqual(["feedback_db"]);
    const reopened = FeedbackStore.open(store, { readonly: true });
    expect(reopened.stats(1).interactions).toBe(2);
    reopened.close();
  });

  it("puts back an earlier build left aside by a run killed mid-swap, and removes a dead run's staging folder", async () => {
    const store = storeFile();
    const parent = tempDir();
    const target = path.join(parent, "training_pairs");
    await buildManifest({ config: config(), storeFile: store, outputDir: target });
    fs.writeFileSync(path.join(target, ".gitkeep"), "");
    // A run killed between the swap's two renames: the earlier build aside, no target.
    const pid = deadPid();
    fs.renameSync(target, path.join(parent, `.training_pairs.previous-${pid}-0badf00d`));
    // A run killed while writing: its half-written staging folder.
    const staging = path.join(parent, `.training_pairs.staging-${pid}-12345678`);
    fs.mkdirSync(path.join(staging, "sft"), { recursive: true });
    fs.writeFileSync(path.join(staging, BUILD_MARKER_FILE), JSON.stringify({ kind: "training pairs", pid, created_at: "" }));
    fs.writeFileSync(path.join(staging, "sft", "train.jsonl"), '{"prompt": "half');

    const manifest = await buildManifest({ config: config(), storeFile: store, outputDir: target });
    expect(fs.readdirSync(parent)).toEqual(["training_pairs"]);
    // The restored build's .gitkeep was carried over into the new one, and its splits were kept.
    expect(fs.readdirSync(target).sort()).toEqual([".ats-lora-build.json", ".gitkeep", "dpo", "drift.jsonl", "kto", "manifest.json", "sft", "splits.jsonl"]);
    expect(manifest.splits.leakage.moved).toBe(0);
  });

  it("imports --input in memory: nothing is written to the system temp folder", async () => {
    const file = inputFile();
    const out = path.join(tempDir(), "pairs");
    // A temp folder that cannot be written to: a regular file where the folder should be.
    const blocked = path.join(tempDir(), "not-a-folder");
    fs.writeFileSync(blocked, "");
    const saved = { TMPDIR: process.env.TMPDIR, TMP: process.env.TMP, TEMP: process.env.TEMP };
    process.env.TMPDIR = process.env.TMP = process.env.TEMP = blocked;
    let manifest;
    try {
      expect(os.tmpdir()).toBe(blocked);
      manifest = await buildManifest({ config: config(), inputFile: file, outputDir: out });
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    expect(manifest.source).toMatchObject({ kind: "file", path: file, interactions: 2, reviewed: 2 });
    expect(fs.readFileSync(blocked, "utf8")).toBe("");

    const empty = path.join(tempDir(), "empty.jsonl");
    fs.writeFileSync(empty, "");
    await expect(buildManifest({ config: config(), inputFile: empty, outputDir: path.join(tempDir(), "o") })).rejects.toThrow(
      new RegExp(`${empty.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} holds no interactions`),
    );
  });
});
