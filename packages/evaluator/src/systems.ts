import fs from "node:fs";
import path from "node:path";
import { InputError } from "@ats-lora/core";
import type { BaselineMethod } from "./baseline.js";

/** A model argument as the worker takes it: a hub id or folder, or an adapter folder on a base. */
export interface ModelRef {
  model: string;
  base?: string | null;
}

/** One system an evaluation runs and scores. */
export type SystemSpec =
  | { name: string; role: "model" | "base" | "compare"; model: ModelRef }
  /** Outputs from a file; `model`, when given, is what produced them: it scores the references' loss. */
  | { name: string; role: "predictions"; file: string; model?: ModelRef }
  | { name: string; role: "baseline"; method: BaselineMethod };

/** The eval flags that name systems. */
export interface SystemFlags {
  model?: string;
  base?: string;
  compare?: string;
  predictions?: string;
  baseline?: string[];
}

/** The systems the flags name, the evaluated one first. */
export function systemsFrom(flags: SystemFlags): SystemSpec[] {
  const systems: SystemSpec[] = [];
  const taken = new Set<string>();
  const unique = (name: string) => {
    let candidate = name;
    for (let n = 2; taken.has(candidate); n += 1) candidate = `${name}-${n}`;
    taken.add(candidate);
    return candidate;
  };
  if (flags.predictions) {
    // With --predictions, --model says what produced them (an API model's name, or a local model, which then also
    // scores the references' loss).
    const local = flags.model !== undefined && isLocalModel(flags.model);
    systems.push({
      name: unique(flags.model ? modelName(flags.model) : modelName(flags.predictions).replace(/\.jsonl?$/, "")),
      role: "predictions",
      file: flags.predictions,
      ...(local ? { model: { model: flags.model!, base: flags.base ?? null } } : {}),
    });
  } else if (flags.model) {
    systems.push({ name: unique(flags.base ? "tuned" : modelName(flags.model)), role: "model", model: { model: flags.model, base: flags.base ?? null } });
  }
  if (flags.base && systems.length > 0) systems.push({ name: unique("base"), role: "base", model: { model: flags.base } });
  if (flags.compare) systems.push({ name: unique(modelName(flags.compare)), role: "compare", model: { model: flags.compare, base: flags.base ?? null } });
  for (const method of flags.baseline ?? []) systems.push({ name: unique(`baseline-${method}`), role: "baseline", method: method as BaselineMethod });
  if (flags.base && systems.length === 1) throw new InputError("--base compares a model with its base: pass --model too");
  return systems;
}

/** Whether a system generates or scores through a model runner (the Python worker). */
export function needsModel(system: SystemSpec): boolean {
  return "model" in system && system.model !== undefined;
}

/** A folder with a model or an adapter in it (config.json or adapter_config.json). */
function isLocalModel(model: string): boolean {
  return fs.existsSync(path.join(model, "config.json")) || fs.existsSync(path.join(model, "adapter_config.json"));
}

function modelName(model: string): string {
  return path.basename(path.resolve(model)) || model;
}
