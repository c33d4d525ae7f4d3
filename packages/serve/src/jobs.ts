import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ConflictError, FORMATS, QUANTIZATION_MODES, type OperationContext } from "@ats-lora/core";
import { buildTrainingPairs } from "@ats-lora/dataset-builder";
import type { LocalModelSpec } from "@ats-lora/inference";
import { exportAdapter, resolveLocalModel } from "@ats-lora/models";
import { trainAdapter } from "@ats-lora/trainer";
import { z } from "zod";
import type { ServedModels } from "./served-models.js";

const positiveInt = z.number().int().positive();

/** A fine-tuning job's options: the name of the adapter it makes, and what it changes of the configuration's training. */
export const JobRequestSchema = z.strictObject({
  /** The adapter's folder under models/ and its model id once served; default ats_lora_vN. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: "must be a folder name: letters, digits, '.', '_' and '-'" })
    .max(100)
    .optional(),
  format: z.enum(FORMATS).optional(),
  epochs: z.number().positive().optional(),
  max_steps: positiveInt.optional(),
  learning_rate: z.number().positive().optional(),
  batch_size: positiveInt.optional(),
  grad_accum: positiveInt.optional(),
  max_seq_length: positiveInt.optional(),
  quantization: z.enum(QUANTIZATION_MODES).optional(),
  save_steps: positiveInt.optional(),
  /** Serve the adapter as soon as it is exported (default true). */
  load: z.boolean().optional(),
});
export type JobRequest = z.output<typeof JobRequestSchema>;

export const JobSchema = z.object({
  id: z.string(),
  status: z.enum(["running", "succeeded", "failed", "cancelled"]),
  stage: z.enum(["build-db", "train", "export", "load", "done"]),
  created_at: z.string(),
  finished_at: z.string().nullable(),
  step: z.number().int(),
  total: z.number().int(),
  loss: z.number().nullable(),
  eta_seconds: z.number().nullable(),
  /** The adapter folder (set once training has one). */
  adapter: z.string().nullable(),
  /** The served model id of the finished adapter (null until it is loaded, or with load: false). */
  model: z.string().nullable(),
  /** A cancelled run's newest checkpoint, from which `ats-lora train --resume` continues. */
  checkpoint: z.string().nullable(),
  error: z.string().nullable(),
  /** What the run went on without (MLflow tracking that failed). */
  warnings: z.array(z.string()),
  request: JobRequestSchema,
});
export type Job = z.output<typeof JobSchema>;

/**
 * Fine-tuning jobs, one at a time, in the server's process: build-db over the feedback store, a LoRA run on the
 * served base through the worker, its export as a LoRA GGUF, and the adapter loaded into the server. A job cancelled
 * stops the worker at its next step, which saves a checkpoint.
 */
export class FineTuningJobs {
  private readonly jobs = new Map<string, { job: Job; stop: AbortController; settled: Promise<void> }>();

  constructor(
    private readonly context: OperationContext,
    private readonly models: ServedModels,
    private readonly base: LocalModelSpec,
  ) {}

  start(request: JobRequest): Job {
    const running = this.list().find((job) => job.status === "running");
    if (running !== undefined) throw new ConflictError(`job ${running.id} is still running`, { hint: `wait for it (GET /api/jobs/${running.id}) or cancel it (DELETE /api/jobs/${running.id})` });
    if (request.name !== undefined && (this.models.get(request.name) !== undefined || fs.existsSync(path.join(this.context.paths.models, request.name)))) {
      throw new ConflictError(`a model called ${request.name} exists already`, { hint: "give the job another name" });
    }
    const job: Job = {
      id: `job_${crypto.randomUUID()}`,
      status: "running",
      stage: "build-db",
      created_at: new Date().toISOString(),
      finished_at: null,
      step: 0,
      total: 0,
      loss: null,
      eta_seconds: null,
      adapter: null,
      model: null,
      checkpoint: null,
      error: null,
      warnings: [],
      request,
    };
    const stop = new AbortController();
    const settled = this.run(job, stop.signal).then(
      (ended) => Object.assign(job, ended, { finished_at: new Date().toISOString() }),
      (error: unknown) => Object.assign(job, { status: stop.signal.aborted ? "cancelled" : "failed", error: (error as Error).message ?? String(error), finished_at: new Date().toISOString() }),
    );
    this.jobs.set(job.id, { job, stop, settled: settled.then(() => undefined) });
    return { ...job };
  }

  get(id: string): Job | undefined {
    const entry = this.jobs.get(id);
    return entry === undefined ? undefined : { ...entry.job };
  }

  /** Oldest first. */
  list(): Job[] {
    return [...this.jobs.values()].map((entry) => ({ ...entry.job }));
  }

  newest(): Job | undefined {
    return this.list().at(-1);
  }

  /** The model id of the newest job whose adapter is served. */
  newestServed(): string | undefined {
    return this.list()
      .filter((job) => job.status === "succeeded" && job.model !== null)
      .at(-1)?.model ?? undefined;
  }

  /** Cancels a running job and waits until it has stopped (its checkpoint saved); a finished one is returned as it is. */
  async cancel(id: string): Promise<Job | undefined> {
    const entry = this.jobs.get(id);
    if (entry === undefined) return undefined;
    if (entry.job.status === "running") entry.stop.abort();
    await entry.settled;
    return { ...entry.job };
  }

  /** Cancels the running job, if any, and waits for it. */
  async close(): Promise<void> {
    await Promise.all([...this.jobs.keys()].map((id) => this.cancel(id)));
  }

  private async run(job: Job, signal: AbortSignal): Promise<Partial<Job>> {
    const { request } = job;
    const context = this.context;
    await buildTrainingPairs({}, context, { signal });
    job.stage = "train";
    const outputDir = request.name === undefined ? undefined : path.join(context.paths.models, request.name);
    const training = context.config.training;
    const config = {
      ...context.config,
      model: { ...context.config.model, base: trainingBase(this.base), quantization: request.quantization ?? context.config.model.quantization },
      training: {
        ...training,
        format: request.format ?? training.format,
        epochs: request.epochs ?? training.epochs,
        max_steps: request.max_steps ?? training.max_steps,
        learning_rate: request.learning_rate ?? training.learning_rate,
        batch_size: request.batch_size ?? training.batch_size,
        grad_accum: request.grad_accum ?? training.grad_accum,
        max_seq_length: request.max_seq_length ?? training.max_seq_length,
        save_steps: request.save_steps ?? training.save_steps,
      },
    };
    const outcome = await trainAdapter({ outputDir }, { paths: context.paths, config }, {
      signal,
      onEvent: (event) => {
        if (event.method === "started") job.adapter = event.params.output_dir;
        if (event.method === "progress" && event.params.stage === "train") {
          Object.assign(job, { step: event.params.step, total: event.params.total, loss: event.params.loss ?? job.loss, eta_seconds: event.params.eta_seconds ?? null });
        }
        if (event.method === "checkpoint") job.checkpoint = event.params.path;
        if (event.method === "warning") job.warnings.push(event.params.message);
      },
    });
    if (outcome.status === "cancelled") return { status: "cancelled", step: outcome.step, checkpoint: outcome.checkpoint ?? job.checkpoint };
    const adapter = outcome.output_dir;
    job.adapter = adapter;
    job.stage = "export";
    await exportAdapter({ adapter, format: "gguf-lora" }, context, { signal });
    if (request.load === false) return { status: "succeeded", stage: "done", eta_seconds: 0 };
    job.stage = "load";
    const spec = await resolveLocalModel(adapter, { base: this.base.base }, context);
    const name = request.name ?? path.basename(adapter);
    await this.models.add({ ...spec, name });
    return { status: "succeeded", stage: "done", model: name, eta_seconds: 0 };
  }
}

/** What the worker trains on: the pulled base's folder (its model.json says how to prepare the GGUF), else the file. */
function trainingBase(base: LocalModelSpec): string {
  const folder = path.dirname(base.base);
  return fs.existsSync(path.join(folder, "model.json")) ? folder : base.base;
}
