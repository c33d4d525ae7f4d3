import fs from "node:fs";
import path from "node:path";
import {
  adapterCardMarkdown,
  InputError,
  NotFoundError,
  readModelCard,
  readRegistry,
  registryFile,
  writeAdapterReadme,
  writeModelCard,
  writeRegistry,
  type AdapterCard,
  type MatcherCard,
  type ModelCard,
  type OperationContext,
  type OperationOptions,
  type Registry,
  type Stage,
} from "@ats-lora/core";
import { artifactFiles, moveAlias, numericMetrics, registerVersion, TrackedRun, trackingTarget, type RegisteredVersion } from "@ats-lora/tracking";

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
  /** The MLflow registered version the stage's alias now points at; absent without tracking or when it failed (a warning says why). */
  mlflow?: RegisteredVersion;
}

/** A model folder under models/ and its card (undefined without model.json); a bad or unknown name is an error. */
function modelFolder(context: OperationContext, name: string): { dir: string; card: ModelCard | undefined } {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new InputError(`${JSON.stringify(name)} is not a model folder name`, { hint: "name a folder under models/, as ats-lora models list shows" });
  const dir = path.join(context.paths.models, name);
  if (!fs.existsSync(dir)) throw new NotFoundError(`no model called ${name} in ${context.paths.models}`, { hint: "ats-lora models list shows the adapters" });
  return { dir, card: readModelCard(dir) };
}

/** An adapter folder under models/ with its card; anything else is an error that says what the name is. */
export function adapterCard(context: OperationContext, name: string): { path: string; card: AdapterCard } {
  const { dir, card } = modelFolder(context, name);
  if (card?.kind !== "adapter") {
    throw new InputError(`${dir} is not a trained adapter (its model.json ${card === undefined ? "is missing" : `is a ${card.kind} model's`})`, { hint: "promote an adapter that ats-lora train made" });
  }
  return { path: dir, card };
}

/**
 * `models promote NAME`: the adapter becomes the stage's (production by default); the one before is kept for
 * rollback. With MLflow tracking, the adapter is also registered as a version of tracking.registered_model (its
 * training run's adapter artifacts; an adapter trained without tracking gets a run now) and the alias named by the
 * stage moves to it. The local registry is what serve reads: a tracking failure is a warning, never a failed promotion.
 */
export async function promoteModel(input: PromoteInput, context: OperationContext, options: OperationOptions = {}): Promise<StageChange> {
  const stage = input.stage ?? "production";
  const { path: dir, card } = adapterCard(context, input.name);
  const registry = readRegistry(context.paths.models);
  const previous = registry[stage];
  const next: Registry = { ...registry, [stage]: input.name, history: [...registry.history, { at: new Date().toISOString(), stage, action: "promote", model: input.name, previous }] };
  writeRegistry(context.paths.models, next);
  const change: StageChange = { stage, model: input.name, previous, registry: registryFile(context.paths.models) };
  const warn = (message: string) => options.onEvent?.({ type: "warning", message });
  const { target } = trackingTarget(context.config);
  if (target === null) return change;
  try {
    const run = card.mlflow?.run ?? (await trackAdapterNow(input.name, dir, card, context, warn));
    if (run === undefined) return change;
    const registered = await registerVersion(target, {
      registeredModel: target.registeredModel,
      description: "LoRA adapters trained by ats-lora from reviewers' feedback",
      run,
      artifactDir: "adapter",
      alias: stage,
      tags: { "ats_lora.name": input.name, "ats_lora.base_sha256": card.base.sha256 ?? "" },
    });
    const current = readModelCard(dir) as AdapterCard;
    const versions = current.mlflow?.versions ?? [];
    if (!versions.some((v) => v.registered_model === registered.registered_model && v.version === registered.version)) {
      const updated: AdapterCard = { ...current, mlflow: { run, versions: [...versions, { registered_model: registered.registered_model, version: registered.version }] } };
      writeModelCard(dir, updated);
      writeAdapterReadme(dir, updated, stage);
    }
    change.mlflow = registered;
  } catch (error) {
    warn(`${stage} is ${input.name} here (${change.registry}), but registering it on MLflow at ${target.uri} failed: ${(error as Error).message}`);
  }
  return change;
}

/** An MLflow run for an adapter trained without tracking: its settings, final metrics and files, so it can be registered. */
async function trackAdapterNow(name: string, dir: string, card: AdapterCard, context: OperationContext, warn: (message: string) => void) {
  const tracked = await TrackedRun.start(
    context.config,
    { name, params: { ...(card.training_args ?? {}), base: card.base.path }, tags: { "ats_lora.kind": "adapter", "ats_lora.output_dir": dir, "ats_lora.logged_at": "promote" }, localRecord: dir },
    warn,
  );
  if (tracked === undefined) return undefined;
  tracked.logMetrics(numericMetrics(card.metrics ?? {}, Number(card.metrics?.steps ?? 0), "final."));
  if (context.config.tracking.log_artifacts) await tracked.logArtifacts(artifactFiles(dir), "adapter");
  const run = await tracked.finish("FINISHED");
  if (run) writeModelCard(dir, { ...card, mlflow: { run, versions: [] } });
  return run;
}

/**
 * `models rollback`: the stage goes back to the adapter it held before its latest promotion (promotions stack;
 * each rollback takes one off). With tracking, the stage's alias goes back to that adapter's registered version.
 */
export async function rollbackModel(input: { stage?: Stage }, context: OperationContext, options: OperationOptions = {}): Promise<StageChange> {
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
  const change: StageChange = { stage, model: back, previous: current, registry: registryFile(context.paths.models) };
  const { target } = trackingTarget(context.config);
  if (target === null) return change;
  const version = (readModelCard(path.join(context.paths.models, back)) as AdapterCard | undefined)?.mlflow?.versions.findLast((v) => v.registered_model === target.registeredModel);
  const warn = (message: string) => options.onEvent?.({ type: "warning", message });
  if (version === undefined) {
    warn(`${stage} is ${back} again here, but ${back} has no version of ${target.registeredModel} on MLflow: the alias ${stage} stays where it is (promote ${back} to register it)`);
    return change;
  }
  try {
    await moveAlias(target, target.registeredModel, stage, version.version);
    change.mlflow = { registered_model: target.registeredModel, version: version.version, alias: stage, reused: true };
  } catch (error) {
    warn(`${stage} is ${back} again here, but moving the alias on MLflow at ${target.uri} failed: ${(error as Error).message}`);
  }
  return change;
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
  const folder = modelFolder(context, name);
  if (folder.card?.kind === "matcher") return { name, path: folder.dir, stage: null, card: folder.card, history: [], markdown: matcherCardMarkdown(name, folder.card) };
  const { path: dir, card } = adapterCard(context, name);
  const registry = readRegistry(context.paths.models);
  const stage = stageOf(registry, name);
  return { name, path: dir, stage, card, history: registry.history.filter((event) => event.model === name || event.previous === name), markdown: adapterCardMarkdown(name, card, stage) };
}

function matcherCardMarkdown(name: string, card: MatcherCard): string {
  const lines = [`# ${name}`, "", `TF-IDF resume–job matcher trained ${card.created_at}.`, "", "## Lineage", ""];
  lines.push(`- training rows: ${card.dataset.path} (sha256 ${card.data_sha256}; build-db manifest sha256 ${card.dataset.manifest_sha256 ?? "none"})`);
  if (card.mlflow) lines.push(`- MLflow run: ${card.mlflow.run.url}`, ...card.mlflow.versions.map((v) => `- registered: ${v.registered_model} version ${v.version}`));
  lines.push("", "## Settings", "", "| setting | value |", "| --- | --- |", ...Object.entries(card.settings).map(([key, value]) => `| ${key} | ${JSON.stringify(value)} |`));
  lines.push("", "## Agreement with the reviewers' scores", "", "| rows | pairs | Spearman | Pearson | MAE |", "| --- | ---: | ---: | ---: | ---: |");
  for (const split of ["train", "val"] as const) {
    const fit = card.metrics[split] as { pairs: number; spearman: number; pearson: number; mae: number } | null | undefined;
    lines.push(fit ? `| ${split} | ${fit.pairs} | ${fit.spearman.toFixed(3)} | ${fit.pearson.toFixed(3)} | ${fit.mae.toFixed(3)} |` : `| ${split} | 0 | – | – | – |`);
  }
  return `${lines.join("\n")}\n`;
}
