import fs from "node:fs";
import path from "node:path";
import {
  fingerprintBase,
  InputError,
  readRegistry,
  reserveModelFolder,
  trainingPairsFile,
  writeAdapterReadme,
  writeModelCard,
  type AdapterCard,
  type AtsConfig,
  type BaseReference,
  type OperationContext,
  type OperationOptions,
} from "@ats-lora/core";
import type { z } from "zod";
import { resolveModelArgument } from "@ats-lora/worker";
import { fileSha256, lockOutputFolder, prepareOutputFolder, settingsHash, type RunSettings } from "./output-folder.js";
import type { Notification, ResultOf, TrainParams } from "@ats-lora/worker";
import { checkTrainingData, type TrainingDataSummary } from "./training-data.js";
import { WorkerClient, type Launch } from "@ats-lora/worker";
import { artifactFiles, numericMetrics, TrackedRun } from "@ats-lora/tracking";

/**
 * What one training run takes besides the configuration. The base model (model.base), the format
 * (training.format) and every hyperparameter come from the context's configuration, flags already merged into it.
 */
export interface TrainAdapterInput {
  /** The training pairs folder (DIR/{format}/{split}.jsonl); default: the workdir's feedback_db/training_pairs. */
  trainingData?: string;
  /** Where the adapter goes; default: models/ats_lora_vN with the next free N, reserved at once. */
  outputDir?: string;
  /** Continue from the newest complete checkpoint in outputDir, with optimizer and scheduler state (same settings only). */
  resume?: boolean;
  /** Delete what a previous run left in the output folder and start over. */
  overwrite?: boolean;
  /** The hybrid loss; undefined: from the configuration (training.regression_*), null: off. */
  regression?: Regression | null;
  /** The worker's Python; default $ATS_LORA_PYTHON, else the project's .venv. */
  python?: string;
  /** Several machines (torchrun's nodes); this one is node 0. Processes per machine: training.devices. */
  nodes?: Omit<Launch, "processes" | "nodeRank">;
}

/** One run with its folders decided: what the worker's parameters and the recorded settings are made from. */
export interface TrainRun {
  config: AtsConfig;
  dataDir: string;
  outputDir: string;
  resume: boolean;
  regression?: Regression | null;
}

export interface Regression {
  field: string;
  weight: number;
  loss: "mse" | "mae" | "huber";
}

/** The hybrid loss the configuration asks for: training.regression_field set, or null. */
export function regressionFromConfig(training: AtsConfig["training"]): Regression | null {
  const field = training.regression_field;
  return field ? { field, weight: training.regression_weight, loss: training.regression_loss } : null;
}

/** The events of a training run: the worker's notifications (progress, checkpoint, log), and started and cancelling. */
export type TrainEvent =
  | Notification
  | {
      method: "started";
      params: { worker: ResultOf<"initialize">; worker_pid: number | undefined; data: TrainingDataSummary; output_dir: string; log_file: string };
    }
  | { method: "cancelling"; params: Record<string, never> }
  /** Something the run goes on without (MLflow tracking that failed), said once. */
  | { method: "warning"; params: { message: string } };

/** What `train --json` prints last: completed (metrics, output folder) or cancelled (step reached, checkpoint). */
export type TrainOutcome = ResultOf<"train"> & { log_file: string };

/** The worker's train parameters from the configuration (flags already merged into it). */
export function trainParams(run: TrainRun): z.input<typeof TrainParams> {
  const { config } = run;
  const targets = config.lora.target_modules;
  return {
    base: resolveModelArgument(config.model.base),
    data_dir: path.resolve(run.dataDir),
    output_dir: path.resolve(run.outputDir),
    format: config.training.format,
    epochs: config.training.epochs,
    batch_size: config.training.batch_size,
    // -1: transformers trains for the epochs.
    max_steps: config.training.max_steps ?? -1,
    learning_rate: config.training.learning_rate,
    grad_accum: config.training.grad_accum,
    warmup_steps: config.training.warmup_steps,
    max_seq_length: config.training.max_seq_length,
    quantization: config.model.quantization,
    bnb_4bit_quant_type: config.model.bnb_4bit_quant_type,
    bnb_4bit_double_quant: config.model.bnb_4bit_double_quant,
    compute_dtype: config.model.compute_dtype,
    lora_r: config.lora.r,
    lora_alpha: config.lora.alpha,
    lora_dropout: config.lora.dropout,
    target_modules: targets.length === 1 && targets[0] === "auto" ? "auto" : targets,
    lora_top_layers: config.lora.top_layers,
    lora_bias: config.lora.bias,
    packing: config.training.packing,
    gradient_checkpointing: config.training.gradient_checkpointing,
    attn_implementation: config.training.attn_implementation,
    strategy: config.training.strategy,
    lm_head_positions: config.training.lm_head_positions,
    lr_scheduler: config.training.lr_scheduler,
    save_steps: config.training.save_steps,
    logging_steps: config.training.logging_steps,
    seed: config.training.seed,
    resume: run.resume,
    early_stopping_patience: config.training.early_stopping_patience,
    regression: run.regression !== undefined ? run.regression : regressionFromConfig(config.training),
  };
}

/** The settings a run's checkpoints depend on (recorded in OUTPUT/run_settings.json, compared on --resume). */
export function runSettings(run: TrainRun): RunSettings {
  const params = trainParams(run);
  const format = run.config.training.format;
  return {
    base: params.base,
    format: params.format,
    lora_r: params.lora_r,
    lora_alpha: params.lora_alpha,
    lora_dropout: params.lora_dropout,
    target_modules: params.target_modules,
    // Only where set, so the settings (and their hash) of every run trained before the key existed stay the same.
    ...(params.lora_top_layers != null ? { lora_top_layers: params.lora_top_layers } : {}),
    lora_bias: params.lora_bias,
    quantization: params.quantization,
    bnb_4bit_quant_type: params.bnb_4bit_quant_type,
    bnb_4bit_double_quant: params.bnb_4bit_double_quant,
    max_seq_length: params.max_seq_length,
    learning_rate: params.learning_rate,
    batch_size: params.batch_size,
    grad_accum: params.grad_accum,
    lr_scheduler: params.lr_scheduler,
    packing: params.packing,
    regression: params.regression ?? null,
    data: { train: fileSha256(trainingPairsFile(run.dataDir, format, "train")) ?? "", val: fileSha256(trainingPairsFile(run.dataDir, format, "val")) },
  };
}

/**
 * Fine-tunes an adapter through the worker: checks the data, takes the output folder (a lock for the run; a
 * folder holding another run is refused unless resuming with the same settings or overwriting), starts the worker
 * (its log goes to OUTPUT/train.log), streams its events, and turns an abort into a saved checkpoint: the outcome
 * is then `cancelled`, with the step reached and the checkpoint to resume from.
 */
export async function trainAdapter(
  input: TrainAdapterInput,
  context: OperationContext,
  options: OperationOptions<TrainEvent> = {},
): Promise<TrainOutcome> {
  if (input.resume && input.outputDir === undefined) {
    throw new InputError("--resume needs --output-dir: the folder of the run to continue", {
      hint: "e.g. ats-lora train --output-dir models/ats_lora_v3 --resume",
    });
  }
  // The default name is reserved at once (mkdir), so two runs started together never share it.
  const outputDir = input.outputDir ?? reserveModelFolder(context.paths.models);
  const run: TrainRun = {
    config: context.config,
    dataDir: input.trainingData ?? context.paths.trainingPairs,
    outputDir,
    resume: input.resume ?? false,
    regression: input.regression,
  };
  try {
    return await trainLocked(run, input, options.onEvent ?? (() => undefined), options.signal);
  } catch (error) {
    // A run refused before it wrote anything gives its reserved name back.
    if (input.outputDir === undefined && fs.existsSync(outputDir) && fs.readdirSync(outputDir).length === 0) fs.rmdirSync(outputDir);
    throw error;
  }
}

/** Checks the data, then trains holding the output folder's lock. */
async function trainLocked(run: TrainRun, input: TrainAdapterInput, emit: (event: TrainEvent) => void, signal?: AbortSignal): Promise<TrainOutcome> {
  const data = checkTrainingData(run.dataDir, run.config.training.format);
  // Fingerprinted before the run, so the lineage names the base file as it was when training read it.
  const base = fingerprintBase(run.config.model.base);
  const outputDir = path.resolve(run.outputDir);
  const release = lockOutputFolder(outputDir);
  try {
    prepareOutputFolder(outputDir, runSettings(run), {
      resume: run.resume,
      overwrite: input.overwrite ?? false,
      onWarning: (message) => emit({ method: "log", params: { message } }),
    });
    const tracked = await TrackedRun.start(
      run.config,
      {
        name: path.basename(outputDir),
        params: { ...trainParams(run), settings_sha256: settingsHash(runSettings(run)), train_rows: data.train, val_rows: data.val },
        tags: { "ats_lora.kind": "adapter", "ats_lora.output_dir": outputDir, "ats_lora.base": run.config.model.base },
        localRecord: `${outputDir} (metrics.json, model.json, train.log)`,
      },
      (message) => emit({ method: "warning", params: { message } }),
    );
    const trackingEmit = tracked ? trackSteps(tracked, emit) : emit;
    let outcome: TrainOutcome;
    try {
      const launch: Launch = { processes: run.config.training.devices, nodes: 1, ...input.nodes, nodeRank: 0 };
      outcome = await trainInFolder(run, data, { python: input.python, launch }, trackingEmit, signal);
    } catch (error) {
      await tracked?.finish("FAILED");
      throw error;
    }
    if (outcome.status === "completed") {
      const card = recordLineage(outputDir, run, base, data, outcome.metrics as Record<string, unknown>);
      if (tracked) await finishTrackedRun(tracked, outputDir, card, outcome, run.config.tracking.log_artifacts);
    } else await tracked?.finish("KILLED");
    return outcome;
  } finally {
    release();
  }
}

/** Passes the run's events on, and sends each logged training loss (and learning rate, speed) to MLflow as a step metric. */
function trackSteps(tracked: TrackedRun, emit: (event: TrainEvent) => void): (event: TrainEvent) => void {
  let lastLogged = -1;
  return (event) => {
    emit(event);
    if (event.method !== "progress" || event.params.stage !== "train") return;
    const { loss, loss_step: step, learning_rate: learningRate, tokens_per_second: speed } = event.params;
    if (loss == null || step == null || step === lastLogged) return;
    lastLogged = step;
    tracked.logMetrics(numericMetrics({ loss, learning_rate: learningRate, tokens_per_second: speed }, step));
  };
}

/** The final metrics (the validation loss per epoch as its own history), the adapter's files, and the run's end; the run's reference goes into the card. */
async function finishTrackedRun(tracked: TrackedRun, outputDir: string, card: AdapterCard, outcome: TrainOutcome & { status: "completed" }, logArtifacts: boolean): Promise<void> {
  const metrics = outcome.metrics as Record<string, unknown>;
  const { val_loss_by_epoch: byEpoch, ...final } = metrics;
  tracked.logMetrics(numericMetrics(final, Number(metrics.steps ?? 0), "final."));
  for (const point of (byEpoch ?? []) as Array<{ step: number; loss: number; epoch: number }>) tracked.logMetrics(numericMetrics({ eval_loss: point.loss }, point.step));
  if (logArtifacts) await tracked.logArtifacts(artifactFiles(outputDir), "adapter");
  const reference = await tracked.finish("FINISHED");
  if (reference) {
    const withRun: AdapterCard = { ...card, mlflow: { run: reference, versions: [] } };
    writeModelCard(outputDir, withRun);
    writeAdapterReadme(outputDir, withRun);
  }
}

/**
 * model.json: the adapter's lineage. The base file it was trained on (so export and inference refuse another
 * base), the training data (build-db's manifest hash and rows), the run's settings and their hash, its final
 * metrics, and the production adapter it is meant to replace.
 */
function recordLineage(outputDir: string, run: TrainRun, base: BaseReference, data: TrainingDataSummary, metrics: Record<string, unknown>): AdapterCard {
  const manifestFile = path.join(run.dataDir, "manifest.json");
  let configHash: string | null = null;
  try {
    configHash = fs.existsSync(manifestFile) ? (((JSON.parse(fs.readFileSync(manifestFile, "utf8")) as { config_hash?: unknown }).config_hash as string | undefined) ?? null) : null;
  } catch {
    // a manifest that does not parse still has a hash; its config hash is unknown
  }
  const settings = runSettings(run);
  const modelsDir = path.dirname(outputDir);
  const production = readRegistry(modelsDir).production;
  const card: AdapterCard = {
    kind: "adapter",
    base,
    training_format: run.config.training.format,
    created_at: new Date().toISOString(),
    dataset: { path: path.resolve(run.dataDir), manifest_sha256: fileSha256(manifestFile), config_hash: configHash, rows: { train: data.train, val: data.val } },
    settings_sha256: settingsHash(settings),
    training_args: { ...settings, epochs: run.config.training.epochs, max_steps: run.config.training.max_steps, seed: run.config.training.seed },
    metrics,
    parent: production === null || path.join(modelsDir, production) === outputDir ? null : { name: production, path: path.join(modelsDir, production) },
  };
  writeModelCard(outputDir, card);
  writeAdapterReadme(outputDir, card);
  return card;
}

async function trainInFolder(
  run: TrainRun,
  data: TrainingDataSummary,
  worker: { python?: string; launch: Launch },
  emit: (event: TrainEvent) => void,
  signal?: AbortSignal,
): Promise<TrainOutcome> {
  const logFile = path.join(run.outputDir, "train.log");
  const { client, info } = await WorkerClient.start({ logFile, ...worker });
  const unsubscribe = client.onNotification((notification) => emit(notification));
  const onAbort = (): void => {
    emit({ method: "cancelling", params: {} });
    void client.request("cancel", {}).catch(() => undefined);
  };
  try {
    emit({
      method: "started",
      params: { worker: info, worker_pid: client.pid, data, output_dir: path.resolve(run.outputDir), log_file: logFile },
    });
    const trained = client.request("train", trainParams(run));
    // After the request: the worker forgets a cancel that comes before its job.
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    return { ...(await trained), log_file: logFile };
  } finally {
    signal?.removeEventListener("abort", onAbort);
    unsubscribe();
    await client.close();
  }
}
