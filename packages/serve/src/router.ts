import crypto from "node:crypto";
import { InputError } from "@ats-lora/core";

/** How requests for the router's model id are answered: an A/B split between versions, else a model per task, else the production adapter, else the base. */
export interface Routing {
  /** The model id that routes ("ats"); every other id names one served model. */
  model: string;
  /** Task → served model id. */
  taskModels: Readonly<Record<string, string>>;
  /** Served model id → share of callers (any positive weights); empty: no split. */
  ab: ReadonlyArray<{ model: string; weight: number }>;
  /** The production adapter (models/registry.json), which answers what neither the split nor a task route takes; null: the base. */
  production?: string | null;
}

export interface RouteChoice {
  model: string;
  routedBy: "ab" | "task" | "production" | "base";
}

/** "v1=50,v2=50" as the split's arms. */
export function parseAbSplit(text: string): Array<{ model: string; weight: number }> {
  const arms = text.split(",").map((part) => {
    const [model, weight] = part.split("=").map((piece) => piece.trim());
    const share = Number(weight);
    if (!model || weight === undefined || !Number.isFinite(share) || share <= 0) {
      throw new InputError(`--ab ${text}: each arm is MODEL=WEIGHT with a positive weight`, { hint: "--ab resume-v1=50,resume-v2=50" });
    }
    return { model, weight: share };
  });
  const models = arms.map((arm) => arm.model);
  if (new Set(models).size !== models.length) throw new InputError(`--ab ${text}: a model is named twice`);
  if (arms.length < 2) throw new InputError(`--ab ${text}: a split needs two models or more`, { hint: "--ab resume-v1=50,resume-v2=50" });
  return arms;
}

/** The models a routing names that the server does not serve. */
export function unservedModels(routing: Routing, served: ReadonlySet<string>): string[] {
  return [...Object.values(routing.taskModels), ...routing.ab.map((arm) => arm.model)].filter((model) => !served.has(model));
}

/**
 * Which model answers: the A/B split's arm of this caller (the same caller always gets the same arm: a hash of its
 * id picks it by the weights), else the task's model, else the production adapter, else the base.
 */
export function route(routing: Routing, base: string, task: string | undefined, caller: string): RouteChoice {
  if (routing.ab.length > 0) {
    const total = routing.ab.reduce((sum, arm) => sum + arm.weight, 0);
    const digest = crypto.createHash("sha256").update(`${routing.ab.map((arm) => arm.model).join(",")}\n${caller}`).digest();
    let point = (digest.readUInt32BE(0) / 2 ** 32) * total;
    for (const arm of routing.ab) {
      if (point < arm.weight) return { model: arm.model, routedBy: "ab" };
      point -= arm.weight;
    }
    return { model: routing.ab.at(-1)!.model, routedBy: "ab" };
  }
  const forTask = task === undefined ? undefined : routing.taskModels[task];
  if (forTask !== undefined) return { model: forTask, routedBy: "task" };
  return routing.production ? { model: routing.production, routedBy: "production" } : { model: base, routedBy: "base" };
}
