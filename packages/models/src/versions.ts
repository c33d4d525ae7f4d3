import fs from "node:fs";
import path from "node:path";
import {
  adapterCardMarkdown,
  InputError,
  NotFoundError,
  readModelCard,
  readRegistry,
  registryFile,
  writeRegistry,
  type AdapterCard,
  type OperationContext,
  type Registry,
  type Stage,
} from "@ats-lora/core";

// Adapter versions: which one is in production or staging (models/registry.json), promotions and rollbacks, and
// one adapter's whole card.

export interface PromoteInput {
  /** The adapter's folder name under models/. */
  name: string;
  stage?: Stage;
}

export interface StageChange {
  stage: Stage;
  model: string | null;
  previous: string | null;
  registry: string;
}

/** An adapter folder under models/ with its card; anything else is an error that says what the name is. */
export function adapterCard(context: OperationContext, name: string): { path: string; card: AdapterCard } {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new InputError(`${JSON.stringify(name)} is not a model folder name`, { hint: "name a folder under models/, as ats-lora models list shows" });
  const dir = path.join(context.paths.models, name);
  if (!fs.existsSync(dir)) throw new NotFoundError(`no model called ${name} in ${context.paths.models}`, { hint: "ats-lora models list shows the adapters" });
  const card = readModelCard(dir);
  if (card?.kind !== "adapter") {
    throw new InputError(`${dir} is not a trained adapter (its model.json ${card === undefined ? "is missing" : `is a ${card.kind} model's`})`, { hint: "promote an adapter that ats-lora train made" });
  }
  return { path: dir, card };
}

/** `models promote NAME`: the adapter becomes the stage's (production by default); the one before is kept for rollback. */
export function promoteModel(input: PromoteInput, context: OperationContext): StageChange {
  const stage = input.stage ?? "production";
  adapterCard(context, input.name);
  const registry = readRegistry(context.paths.models);
  const previous = registry[stage];
  const next: Registry = { ...registry, [stage]: input.name, history: [...registry.history, { at: new Date().toISOString(), stage, action: "promote", model: input.name, previous }] };
  writeRegistry(context.paths.models, next);
  return { stage, model: input.name, previous, registry: registryFile(context.paths.models) };
}

/**
 * `models rollback`: the stage goes back to the adapter it held before its latest promotion (promotions stack;
 * each rollback takes one off).
 */
export function rollbackModel(input: { stage?: Stage }, context: OperationContext): StageChange {
  const stage = input.stage ?? "production";
  const registry = readRegistry(context.paths.models);
  const stack = promotionStack(registry, stage);
  if (stack.length < 2) {
    throw new InputError(`nothing to roll ${stage} back to: ${registry[stage] === null ? "no adapter was ever promoted" : `${registry[stage]} is the first adapter promoted`}`, {
      hint: `promote another adapter: ats-lora models promote NAME --stage ${stage}`,
    });
  }
  const current = stack[stack.length - 1]!;
  const back = stack[stack.length - 2]!;
  if (!fs.existsSync(path.join(context.paths.models, back))) {
    throw new InputError(`${stage} would go back to ${back}, whose folder is gone from ${context.paths.models}`, { hint: `promote an adapter that exists: ats-lora models promote NAME --stage ${stage}` });
  }
  writeRegistry(context.paths.models, { ...registry, [stage]: back, history: [...registry.history, { at: new Date().toISOString(), stage, action: "rollback", model: back, previous: current }] });
  return { stage, model: back, previous: current, registry: registryFile(context.paths.models) };
}

/** The adapters a stage has held, oldest first, rollbacks taken off: its last is what it holds now. */
function promotionStack(registry: Registry, stage: Stage): string[] {
  const stack: string[] = [];
  for (const event of registry.history) {
    if (event.stage !== stage) continue;
    if (event.action === "promote" && event.model !== null) stack.push(event.model);
    else if (event.action === "rollback") stack.pop();
  }
  return stack;
}

/** The stage an adapter holds, or null. */
export function stageOf(registry: Registry, name: string): Stage | null {
  return registry.production === name ? "production" : registry.staging === name ? "staging" : null;
}

/** `models show NAME`: the adapter's card (lineage, metrics, evals), its stage and its registry history, and the card in Markdown. */
export function showModel(name: string, context: OperationContext) {
  const { path: dir, card } = adapterCard(context, name);
  const registry = readRegistry(context.paths.models);
  const stage = stageOf(registry, name);
  return { name, path: dir, stage, card, history: registry.history.filter((event) => event.model === name || event.previous === name), markdown: adapterCardMarkdown(name, card, stage) };
}
