import fs from "node:fs";
import path from "node:path";
import { InputError, readRegistry, type OperationContext } from "@ats-lora/core";
import type { EvalReport } from "./report-types.js";
import { SPEED_METRICS } from "./score.js";

// `eval --gate`: whether the evaluated system may replace what it was compared with. It fails when any counted
// metric is clearly worse (its 95% interval wholly on the wrong side of zero) or a --require threshold is missed.

type Operator = ">=" | "<=" | "==" | ">" | "<";

/** `--require resume_parse.json_validity>=0.95`: a metric of the evaluated system (group `overall` when none is named). */
export interface Requirement {
  text: string;
  group: string;
  metric: string;
  operator: Operator;
  threshold: number;
}

export type GateFailure =
  | { kind: "worse"; against: string; group: string; metric: string; value: number; other: number; delta: number; low: number; high: number }
  | { kind: "requirement"; requirement: string; group: string; metric: string; value: number | null; reason: string };

export interface GateResult {
  passed: boolean;
  /** The evaluated system. */
  system: string;
  /** The systems it was compared with. */
  against: string[];
  /** Every reason the gate failed: clearly worse metrics, then missed requirements. */
  failed: GateFailure[];
  /** The failures in words, one per line. */
  summary: string[];
}

/** Reads `[group.]metric OP number`, e.g. `resume_parse.json_validity>=0.95` or `mae<0.2`. */
export function parseRequirement(text: string): Requirement {
  const match = /^\s*(?:([A-Za-z0-9_-]+)\.)?([A-Za-z0-9_]+)\s*(>=|<=|==|>|<)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$/i.exec(text);
  if (match === null) {
    throw new InputError(`--require ${JSON.stringify(text)} is not a requirement`, {
      hint: "write [task.]metric OPERATOR number, e.g. 'resume_parse.json_validity>=0.95' or 'match_score.mae<0.2' (operators >=, <=, >, <, ==)",
    });
  }
  return { text: text.trim(), group: match[1] ?? "overall", metric: match[2]!, operator: match[3] as Operator, threshold: Number(match[4]) };
}

function holds(value: number, operator: Operator, threshold: number): boolean {
  switch (operator) {
    case ">=":
      return value >= threshold;
    case "<=":
      return value <= threshold;
    case ">":
      return value > threshold;
    case "<":
      return value < threshold;
    case "==":
      return value === threshold;
  }
}

/** The gate over a finished report: the first system's comparisons with every other, and the requirements. */
export function applyGate(report: EvalReport, requirements: readonly Requirement[]): GateResult {
  const system = report.systems[0]!;
  const comparisons = report.comparisons.filter((comparison) => comparison.system === system.name);
  const failed: GateFailure[] = [];
  for (const comparison of comparisons) {
    for (const metric of comparison.metrics) {
      if (metric.outcome !== "worse" || SPEED_METRICS.has(metric.metric)) continue;
      failed.push({ kind: "worse", against: comparison.against, group: metric.group, metric: metric.metric, value: metric.value, other: metric.other, delta: metric.delta, low: metric.low, high: metric.high });
    }
  }
  for (const requirement of requirements) {
    const value = system.metrics[requirement.group]?.[requirement.metric];
    if (value === undefined || !Number.isFinite(value)) {
      const measured = Object.keys(system.metrics[requirement.group] ?? {});
      const reason =
        measured.length === 0
          ? `${system.name} has no ${requirement.group} metrics (groups: ${Object.keys(system.metrics).join(", ")})`
          : `${requirement.group}.${requirement.metric} was not measured (${requirement.group} has ${measured.join(", ")})`;
      failed.push({ kind: "requirement", requirement: requirement.text, group: requirement.group, metric: requirement.metric, value: null, reason });
    } else if (!holds(value, requirement.operator, requirement.threshold)) {
      failed.push({ kind: "requirement", requirement: requirement.text, group: requirement.group, metric: requirement.metric, value, reason: `${requirement.group}.${requirement.metric} is ${round(value)}` });
    }
  }
  return { passed: failed.length === 0, system: system.name, against: comparisons.map((comparison) => comparison.against), failed, summary: failed.map(describe) };
}

function round(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

function describe(failure: GateFailure): string {
  if (failure.kind === "requirement") return `requirement ${failure.requirement} missed: ${failure.reason}`;
  const sign = (value: number) => `${value >= 0 ? "+" : ""}${round(value)}`;
  return `${failure.group}.${failure.metric} is worse than ${failure.against}: ${round(failure.other)} → ${round(failure.value)}, ${sign(failure.delta)} [${sign(failure.low)}, ${sign(failure.high)}]`;
}

/**
 * What `eval --gate` compares a model with when no --compare is given: the production adapter (models promote),
 * unless that is the model itself; undefined when there is none.
 */
export function productionToCompare(model: string | undefined, context: OperationContext): string | undefined {
  const production = readRegistry(context.paths.models).production;
  if (production === null || model === undefined) return undefined;
  const folder = path.join(context.paths.models, production);
  const evaluated = fs.existsSync(model) ? path.resolve(model) : path.join(context.paths.models, model);
  return evaluated === folder || !fs.existsSync(folder) ? undefined : folder;
}
