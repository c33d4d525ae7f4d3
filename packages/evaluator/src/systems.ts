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
  /** `jsonSchema`: the JSON tasks' answers are generated under their answer schema (constrained decoding). */
  | { name: string; role: "model" | "base" | "compare"; model: ModelRef; jsonSchema?: true }
  /** Outputs from a file; `model`, when given, is what produced them: it scores the references' loss. */
  | { name: string; role: "predictions"; file: string; model?: ModelRef }
  /** `matcher`: the TF-IDF baseline's trained matcher (a folder, or a name under models/); default the newest. */
  | { name: string; role: "baseline"; method: BaselineMethod; matcher?: string };

/** The eval flags that name systems. */
export interface SystemFlags {
  model?: string;
  base?: string;
  compare?: string;
  predictions?: string;
  baseline?: string[];
  /** The trained matcher of --baseline tfidf. */
  matcher?: string;
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
  for (const method of flags.baseline ?? []) {
    systems.push({ name: unique(`baseline-${method}`), role: "baseline", method: method as BaselineMethod, ...(method === "tfidf" && flags.matcher ? { matcher: flags.matcher } : {}) });
  }
  if (flags.matcher && !flags.baseline?.includes("tfidf")) throw new InputError("--matcher chooses the TF-IDF baseline's matcher: pass --baseline tfidf too");
  if (flags.base && systems.length === 1) throw new InputError("--base compares a model with its base: pass --model too");
  return systems;
}

/** The suffix of a system that answers its JSON tasks under their schema. */
export const SCHEMA_SUFFIX = "+schema";

/**
 * The systems, then for every model system the same model with JSON answers constrained to their schema
 * (`<name>+schema`), in the same order: the unconstrained ones stay first, so the model's own JSON validity
 * stays visible and the first comparison is still the evaluated model against the next system.
 */
export function withSchemaSystems(systems: readonly SystemSpec[]): SystemSpec[] {
  const constrained = systems.flatMap((system): SystemSpec[] =>
    system.role === "model" || system.role === "base" || system.role === "compare" ? [{ ...system, name: `${system.name}${SCHEMA_SUFFIX}`, jsonSchema: true }] : [],
  );
  return [...systems, ...constrained];
}

/**
 * Which system is compared with which (the first of each pair minus the second): the evaluated system against
 * every other unconstrained one; and where the evaluated system has a `+schema` twin, that twin against its
 * unconstrained self (what the constraint does) and against every other `+schema` system.
 */
export function comparisonPairs(systems: readonly SystemSpec[]): Array<[SystemSpec, SystemSpec]> {
  const [primary, ...others] = systems;
  if (!primary) return [];
  const isConstrained = (system: SystemSpec) => "jsonSchema" in system && system.jsonSchema === true;
  const pairs: Array<[SystemSpec, SystemSpec]> = others.filter((other) => !isConstrained(other)).map((other) => [primary, other]);
  const twin = others.find((other) => isConstrained(other) && other.name === `${primary.name}${SCHEMA_SUFFIX}`);
  if (twin) {
    pairs.push([twin, primary]);
    for (const other of others) if (other !== twin && isConstrained(other)) pairs.push([twin, other]);
  }
  return pairs;
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
