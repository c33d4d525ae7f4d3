import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { InputError, isProcessAlive, sha256File } from "@ats-lora/core";

/**
 * One training run owns its output folder: a lock file while it runs, a record of the settings its checkpoints
 * were trained with, and no files of another run mixed in.
 */
export const LOCK_FILE = ".ats-lora-train.lock";
export const SETTINGS_FILE = "run_settings.json";

/** What a run's checkpoints depend on: a --resume with any of these changed would continue another run. */
export interface RunSettings {
  base: string;
  format: string;
  lora_r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string | string[];
  lora_top_layers?: number;
  lora_bias: string;
  quantization: string;
  bnb_4bit_quant_type: string;
  bnb_4bit_double_quant: boolean;
  max_seq_length: number;
  learning_rate: number;
  batch_size: number;
  grad_accum: number;
  lr_scheduler: string;
  packing: boolean;
  regression: { field: string; weight: number; loss: string } | null;
  /** sha256 of the training data's train.jsonl and val.jsonl (null where absent). */
  data: { train: string; val: string | null };
}

/** The flag (and config key) of each setting, for messages. */
const SETTING_NAMES: Record<keyof RunSettings, string> = {
  base: "--base (model.base)",
  format: "--format (training.format)",
  lora_r: "--lora-r (lora.r)",
  lora_alpha: "--lora-alpha (lora.alpha)",
  lora_dropout: "--lora-dropout (lora.dropout)",
  target_modules: "--target-modules (lora.target_modules)",
  lora_top_layers: "lora.top_layers",
  lora_bias: "lora.bias",
  quantization: "--quantization (model.quantization)",
  bnb_4bit_quant_type: "model.bnb_4bit_quant_type",
  bnb_4bit_double_quant: "model.bnb_4bit_double_quant",
  max_seq_length: "--max-seq-length (training.max_seq_length)",
  learning_rate: "--lr (training.learning_rate)",
  batch_size: "--batch-size (training.batch_size)",
  grad_accum: "--grad-accum (training.grad_accum)",
  lr_scheduler: "training.lr_scheduler",
  packing: "--packing (training.packing)",
  regression: "--regression-field/--regression-weight/--regression-loss (training.regression_*)",
  data: "the training data (--training-data)",
};

export function fileSha256(file: string): string | null {
  return fs.existsSync(file) ? sha256File(file) : null;
}

const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : item,
  );

export function settingsHash(settings: RunSettings): string {
  return crypto.createHash("sha256").update(canonical(settings)).digest("hex");
}

interface LockHolder {
  pid: number;
  host: string;
  started_at: string;
}

function readHolder(file: string): LockHolder | null {
  try {
    const value = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<LockHolder>;
    return typeof value.pid === "number" && typeof value.host === "string" ? { pid: value.pid, host: value.host, started_at: String(value.started_at ?? "") } : null;
  } catch {
    return null;
  }
}

const sameHolder = (a: LockHolder | null, b: LockHolder | null): boolean =>
  a !== null && b !== null && a.pid === b.pid && a.host === b.host && a.started_at === b.started_at;

function inUse(dir: string, file: string, holder: LockHolder | null): InputError {
  const who = holder ? `pid ${holder.pid} on ${holder.host}, started ${holder.started_at}` : `an unreadable lock file ${file}`;
  return new InputError(`the output folder ${dir} is in use by another training run (${who})`, {
    hint: `wait for that run to finish, or train into another --output-dir; if that process is gone, delete ${file}`,
  });
}

/**
 * Takes the output folder's lock: a file created exclusively (O_CREAT | O_EXCL) holding this process's pid and
 * host. A lock whose pid is dead on this host is stale and taken over; any other lock is an InputError naming
 * the folder and its holder. Returns the release function.
 */
export function lockOutputFolder(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: os.hostname(), started_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 5; attempt += 1) {
    let fd: number;
    try {
      fd = fs.openSync(file, "wx");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = readHolder(file);
      if (holder === null || holder.host !== me.host || isProcessAlive(holder.pid)) throw inUse(dir, file, holder);
      // Stale: move it away under a name of our own, and check it was the stale one we read, not a new holder's.
      const moved = `${file}.stale-${process.pid}`;
      try {
        fs.renameSync(file, moved);
      } catch {
        continue;
      }
      const taken = readHolder(moved);
      if (!sameHolder(taken, holder)) {
        try {
          fs.linkSync(moved, file);
        } catch {
          // another run's lock is in place again
        }
        fs.rmSync(moved, { force: true });
        throw inUse(dir, file, taken);
      }
      fs.rmSync(moved, { force: true });
      continue;
    }
    try {
      fs.writeSync(fd, `${JSON.stringify(me)}\n`);
    } finally {
      fs.closeSync(fd);
    }
    return () => {
      if (sameHolder(readHolder(file), me)) fs.rmSync(file, { force: true });
    };
  }
  throw inUse(dir, file, readHolder(file));
}

/** What to do with what is already in the output folder. */
export interface PrepareOptions {
  resume: boolean;
  overwrite: boolean;
  /** Told about a resume that cannot be checked (a folder from before run_settings.json). */
  onWarning?: (message: string) => void;
}

/** Entries that mark a folder as a training run's output (what --overwrite may delete). */
const RUN_MARKS = ["train.log", SETTINGS_FILE, "checkpoints", "adapter_config.json", "metrics.json", "training_args.json"];

/**
 * Refuses to mix two runs in one folder (call with the lock held): a non-empty folder needs --resume (and the
 * same settings as its checkpoints) or --overwrite (which empties it first). Writes run_settings.json.
 */
export function prepareOutputFolder(dir: string, settings: RunSettings, options: PrepareOptions): void {
  if (options.resume && options.overwrite) {
    throw new InputError("--resume and --overwrite contradict each other", {
      hint: "--resume continues the run in the output folder; --overwrite deletes it and starts over: pass one",
    });
  }
  const entries = fs.readdirSync(dir).filter((name) => name !== LOCK_FILE);
  const settingsFile = path.join(dir, SETTINGS_FILE);
  const record = { hash: settingsHash(settings), settings };
  const write = (): void => fs.writeFileSync(settingsFile, `${JSON.stringify(record, null, 2)}\n`);
  if (options.resume) {
    const recorded = readSettings(settingsFile);
    if (recorded === null) {
      if (!fs.existsSync(path.join(dir, "checkpoints"))) {
        throw new InputError(`--resume: ${dir} holds no run to continue (no checkpoints/)`, {
          hint: "start the run without --resume",
        });
      }
      options.onWarning?.(`--resume: ${dir} has no ${SETTINGS_FILE} (a run of an older ats-lora); its checkpoints' settings cannot be checked`);
      write();
      return;
    }
    if (recorded === "unreadable") {
      throw new InputError(`--resume: ${settingsFile} is unreadable, so its checkpoints' settings cannot be checked`, {
        hint: "start over: --overwrite (deletes this run) or another --output-dir",
      });
    }
    if (recorded.hash !== record.hash) {
      const differing = (Object.keys(SETTING_NAMES) as Array<keyof RunSettings>).filter(
        (key) => canonical(recorded.settings[key]) !== canonical(settings[key]),
      );
      throw new InputError(`--resume: the checkpoints in ${dir} were trained with other settings; continuing them would mix two runs`, {
        details:
          differing.length > 0
            ? differing.map((key) => `${SETTING_NAMES[key]}: ${show(recorded.settings[key])} in the checkpoints, ${show(settings[key])} now`)
            : [`${settingsFile} records settings this version does not compare`],
        hint: "resume with the settings above, or start over: --overwrite (deletes this run) or another --output-dir",
      });
    }
    return;
  }
  if (entries.length > 0) {
    if (!options.overwrite) {
      const listed = entries.slice(0, 5).join(", ") + (entries.length > 5 ? `, … (${entries.length} entries)` : "");
      throw new InputError(`the output folder ${dir} is not empty (${listed}): a new run would mix its files with what is there`, {
        hint: "pass --resume to continue the run in it, --overwrite to delete it and start over, or train into another --output-dir",
      });
    }
    if (!entries.some((name) => RUN_MARKS.includes(name))) {
      throw new InputError(`--overwrite: ${dir} does not look like a training run's output (no ${RUN_MARKS.slice(0, 4).join(", ")}); refusing to delete it`, {
        hint: "train into an empty or new --output-dir",
      });
    }
    for (const name of entries) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
  write();
}

function show(value: unknown): string {
  if (value === undefined) return "(not recorded)";
  if (value && typeof value === "object" && "train" in value) {
    const data = value as { train: string; val: string | null };
    return `train ${data.train.slice(0, 12)}…${data.val ? ` val ${data.val.slice(0, 12)}…` : ""}`;
  }
  return JSON.stringify(value);
}

function readSettings(file: string): { hash: string; settings: Partial<RunSettings> } | "unreadable" | null {
  if (!fs.existsSync(file)) return null;
  try {
    const value = JSON.parse(fs.readFileSync(file, "utf8")) as { hash?: unknown; settings?: unknown };
    if (typeof value.hash === "string" && value.settings && typeof value.settings === "object") {
      return { hash: value.hash, settings: value.settings as Partial<RunSettings> };
    }
  } catch {
    // reported below
  }
  return "unreadable";
}
