import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { InputError, reserveModelFolder } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { LOCK_FILE, lockOutputFolder, prepareOutputFolder, SETTINGS_FILE, type RunSettings } from "./output-folder.js";

const temp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "ats-output-"));

const SETTINGS: RunSettings = {
  base: "/m/tiny",
  format: "sft",
  lora_r: 16,
  lora_alpha: 32,
  lora_dropout: 0.05,
  target_modules: ["q_proj", "v_proj"],
  lora_bias: "none",
  quantization: "auto",
  bnb_4bit_quant_type: "nf4",
  bnb_4bit_double_quant: true,
  max_seq_length: 1024,
  learning_rate: 2e-4,
  batch_size: 4,
  grad_accum: 4,
  lr_scheduler: "cosine",
  packing: false,
  regression: null,
  data: { train: "a".repeat(64), val: null },
};

function thrown(run: () => unknown): InputError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error("expected an InputError");
}

describe("the output folder's lock", () => {
  it("is exclusive: a second holder is refused naming the folder and the holder, and release frees it", () => {
    const dir = path.join(temp(), "run");
    const release = lockOutputFolder(dir);
    const lock = JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), "utf8"));
    expect(lock).toMatchObject({ pid: process.pid, host: os.hostname() });
    const error = thrown(() => lockOutputFolder(dir));
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(`the output folder ${dir} is in use by another training run (pid ${process.pid} on ${os.hostname()}`);
    release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    lockOutputFolder(dir)();
  });

  it("takes over a stale lock (its pid is gone on this host)", () => {
    const dir = temp();
    const gone = spawnSync(process.execPath, ["-e", "0"]).pid!;
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: gone, host: os.hostname(), started_at: "then" }));
    const release = lockOutputFolder(dir);
    expect(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    release();
  });

  it("does not take over a lock of another host", () => {
    const dir = temp();
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1 << 22, host: "elsewhere", started_at: "then" }));
    expect(thrown(() => lockOutputFolder(dir)).message).toContain("on elsewhere");
  });
});

describe("an output folder holds one run", () => {
  it("refuses a non-empty folder without --resume or --overwrite, naming both flags", () => {
    const dir = temp();
    fs.mkdirSync(path.join(dir, "checkpoints"));
    const error = thrown(() => prepareOutputFolder(dir, SETTINGS, { resume: false, overwrite: false }));
    expect(error.message).toContain(`the output folder ${dir} is not empty (checkpoints)`);
    expect(error.hint).toContain("--resume");
    expect(error.hint).toContain("--overwrite");
  });

  it("--overwrite empties a run's folder and records the new settings; a folder that is not a run's is kept", () => {
    const dir = temp();
    fs.mkdirSync(path.join(dir, "checkpoints", "checkpoint-30"), { recursive: true });
    fs.writeFileSync(path.join(dir, "train.log"), "old");
    prepareOutputFolder(dir, SETTINGS, { resume: false, overwrite: true });
    expect(fs.readdirSync(dir)).toEqual([SETTINGS_FILE]);

    const home = temp();
    fs.writeFileSync(path.join(home, "thesis.tex"), "mine");
    expect(thrown(() => prepareOutputFolder(home, SETTINGS, { resume: false, overwrite: true })).message).toContain("does not look like a training run's output");
    expect(fs.existsSync(path.join(home, "thesis.tex"))).toBe(true);
  });

  it("--resume with other settings is refused, naming each differing setting; the same settings pass", () => {
    const dir = temp();
    prepareOutputFolder(dir, SETTINGS, { resume: false, overwrite: false });
    fs.mkdirSync(path.join(dir, "checkpoints"));
    prepareOutputFolder(dir, { ...SETTINGS }, { resume: true, overwrite: false });
    const changed = { ...SETTINGS, lora_r: 8, learning_rate: 1e-3, data: { train: "b".repeat(64), val: null } };
    const error = thrown(() => prepareOutputFolder(dir, changed, { resume: true, overwrite: false }));
    expect(error.message).toContain("were trained with other settings");
    expect(error.details).toEqual([
      "--lora-r (lora.r): 16 in the checkpoints, 8 now",
      "--lr (training.learning_rate): 0.0002 in the checkpoints, 0.001 now",
      "the training data (--training-data): train aaaaaaaaaaaa… in the checkpoints, train bbbbbbbbbbbb… now",
    ]);
    expect(thrown(() => prepareOutputFolder(dir, SETTINGS, { resume: true, overwrite: true })).message).toContain("contradict");
  });

  it("--resume of a folder without a run is an error; of an older run's folder, a warning", () => {
    expect(thrown(() => prepareOutputFolder(temp(), SETTINGS, { resume: true, overwrite: false })).message).toContain("holds no run to continue");
    const old = temp();
    fs.mkdirSync(path.join(old, "checkpoints"));
    const warnings: string[] = [];
    prepareOutputFolder(old, SETTINGS, { resume: true, overwrite: false, onWarning: (message) => warnings.push(message) });
    expect(warnings[0]).toContain("cannot be checked");
  });
});

describe("the default version name", () => {
  it("is reserved by creating the folder: each call gets the next free N", () => {
    const models = temp();
    fs.mkdirSync(path.join(models, "ats_lora_v3"));
    const first = reserveModelFolder(models);
    const second = reserveModelFolder(models);
    expect([path.basename(first), path.basename(second)]).toEqual(["ats_lora_v4", "ats_lora_v5"]);
    expect(fs.statSync(first).isDirectory()).toBe(true);
  });
});
