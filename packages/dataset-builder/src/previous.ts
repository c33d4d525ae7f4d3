import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { FORMATS, InputError, SPLITS, trainingPairsFile, type Split } from "@ats-lora/core";
import type { SplitFractions } from "./split.js";

/** The record of every content key's split, written with each build and read by the next (`splits.jsonl`). */
export const SPLITS_LEDGER_FILE = "splits.jsonl";

/** What the build already in the output folder says about splits. */
export interface PreviousBuild {
  /** Where the earlier assignments come from: the ledger, the rows of a build from before the ledger, or nowhere. */
  from: "splits.jsonl" | "rows" | "none";
  /** Content key → split, from the ledger. */
  byKey: Map<string, Split>;
  /** Interaction id → split, from the rows of a build that has no ledger (its `source_ids`). */
  byId: Map<string, Split>;
  /** Hash of each prompt of the earlier rows → its split: what the new build is checked against. */
  promptSplits: Map<string, Split>;
  /** Why the earlier assignments are not used, when they are not. */
  warning?: string;
}

/** A prompt's identity in `PreviousBuild.promptSplits`. */
export function promptHash(prompt: string): string {
  return crypto.createHash("sha256").update(prompt).digest("hex");
}

/**
 * Reads the earlier build in `folder` (already recovered and checked to be a training-pairs build): its ledger,
 * or for a build from before the ledger its rows, and the split of every prompt it wrote. A build made with
 * another dataset.seed or dataset.split is not followed (a new seed asks for a new shuffle): a warning says so.
 */
export function readPreviousBuild(folder: string, current: { seed: number; split: SplitFractions }): PreviousBuild {
  const none: PreviousBuild = { from: "none", byKey: new Map(), byId: new Map(), promptSplits: new Map() };
  const manifestFile = path.join(folder, "manifest.json");
  const ledgerFile = path.join(folder, SPLITS_LEDGER_FILE);
  const hasLedger = fs.existsSync(ledgerFile);
  if (!fs.existsSync(manifestFile) && !hasLedger) return none;

  const promptSplits = new Map<string, Split>();
  const byId = new Map<string, Split>();
  for (const format of FORMATS) {
    for (const split of SPLITS) {
      let text: string;
      try {
        text = fs.readFileSync(trainingPairsFile(folder, format, split), "utf8");
      } catch {
        continue;
      }
      for (const line of text.split("\n")) {
        if (line.trim() === "") continue;
        let row: { prompt?: unknown; source_ids?: unknown };
        try {
          row = JSON.parse(line) as typeof row;
        } catch {
          continue;
        }
        if (typeof row.prompt === "string") promptSplits.set(promptHash(row.prompt), split);
        if (Array.isArray(row.source_ids)) {
          for (const id of row.source_ids) if (typeof id === "string" && !byId.has(id)) byId.set(id, split);
        }
      }
    }
  }

  let manifest: { seed?: unknown; split?: { train?: unknown; val?: unknown; test?: unknown } } | undefined;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as typeof manifest;
  } catch {
    manifest = undefined;
  }
  const resetHint = `restore the earlier build, or delete ${ledgerFile} to assign splits afresh (prompts of earlier builds may then move between splits)`;
  if (manifest === undefined || typeof manifest.seed !== "number" || typeof manifest.split !== "object" || manifest.split === null) {
    if (hasLedger) {
      throw new InputError(`cannot tell which dataset.seed and dataset.split assigned ${ledgerFile}: ${manifestFile} is missing or unreadable`, {
        hint: resetHint,
      });
    }
    return { ...none, promptSplits, warning: `the earlier build in ${folder} has no readable manifest.json: its splits are not followed` };
  }
  const changed: string[] = [];
  if (manifest.seed !== current.seed) changed.push(`dataset.seed changed from ${manifest.seed} to ${current.seed}`);
  const before = SPLITS.map((split) => manifest.split![split]);
  if (SPLITS.some((split, index) => before[index] !== current.split[split])) {
    changed.push(`dataset.split changed from ${before.join("/")} to ${SPLITS.map((split) => current.split[split]).join("/")}`);
  }
  if (changed.length > 0) {
    return {
      ...none,
      promptSplits,
      warning: `${changed.join(" and ")} since the earlier build in ${folder}: splits are assigned afresh, and its prompts may move between splits (an adapter trained on it must not be evaluated on this build's val or test)`,
    };
  }
  if (!hasLedger) return { ...none, from: "rows", byId, promptSplits };

  const byKey = new Map<string, Split>();
  const lines = fs.readFileSync(ledgerFile, "utf8").split("\n");
  lines.forEach((line, index) => {
    if (line.trim() === "") return;
    let entry: { key?: unknown; split?: unknown } | undefined;
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      entry = undefined;
    }
    const key = entry?.key;
    const split = entry?.split;
    if (typeof key !== "string" || !/^[0-9a-f]{32}$/.test(key) || !SPLITS.includes(split as Split)) {
      throw new InputError(`${ledgerFile}:${index + 1}: expected {"key": 32 hex digits, "split": "train" | "val" | "test"}, got ${line.slice(0, 120)}`, {
        hint: resetHint,
      });
    }
    const earlier = byKey.get(key);
    if (earlier !== undefined && earlier !== split) {
      throw new InputError(`${ledgerFile}:${index + 1}: content key ${key} is listed in both ${earlier} and ${split as string}`, { hint: resetHint });
    }
    byKey.set(key, split as Split);
  });
  return { from: "splits.jsonl", byKey, byId: new Map(), promptSplits };
}

/** The ledger's text: one `{"key", "split"}` line per content key, sorted by key (so equal builds give equal files). */
export function ledgerText(entries: ReadonlyMap<string, Split>): string {
  return [...entries.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, split]) => `${JSON.stringify({ key, split })}\n`)
    .join("");
}
