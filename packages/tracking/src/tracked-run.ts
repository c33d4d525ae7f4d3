import fs from "node:fs";
import path from "node:path";
import type { AtsConfig, MlflowRun } from "@ats-lora/core";
import { MlflowClient, type MlflowMetric, type ModelVersion } from "./mlflow-client.js";

/** Where runs are tracked: the config's tracking section with MLflow's own environment variables applied. */
export interface TrackingTarget {
  uri: string;
  experiment: string;
  registeredModel: string;
  matcherRegisteredModel: string;
  logArtifacts: boolean;
  timeoutMs: number;
}

/** What a tracked run left on the server, recorded in the model card or report beside the local files. */
export type TrackedRunReference = MlflowRun;

/**
 * The MLflow server runs are tracked on: tracking.mlflow_uri, else MLFLOW_TRACKING_URI; null when neither is set.
 * A URI that is not an http(s) server (a local mlruns folder, databricks) is returned as a problem: ats-lora speaks
 * MLflow's REST API, so it can only track on a server.
 */
export function trackingTarget(config: AtsConfig, env: NodeJS.ProcessEnv = process.env): { target: TrackingTarget | null; problem?: string } {
  const tracking = config.tracking;
  const fromEnv = env.MLFLOW_TRACKING_URI?.trim();
  const uri = tracking.mlflow_uri ?? (fromEnv || null);
  if (uri === null) return { target: null };
  if (!/^https?:\/\/[^/]/.test(uri)) {
    return { target: null, problem: `MLFLOW_TRACKING_URI=${uri} is not an MLflow tracking server's http(s) URL: nothing is tracked (start one with \`mlflow server\` and point tracking.mlflow_uri at it)` };
  }
  return {
    target: {
      uri,
      experiment: env.MLFLOW_EXPERIMENT_NAME?.trim() || tracking.experiment,
      registeredModel: tracking.registered_model,
      matcherRegisteredModel: tracking.matcher_registered_model,
      logArtifacts: tracking.log_artifacts,
      timeoutMs: tracking.timeout_seconds * 1000,
    },
  };
}

function clientFor(target: TrackingTarget, env: NodeJS.ProcessEnv = process.env): MlflowClient {
  return new MlflowClient(target.uri, {
    timeoutMs: target.timeoutMs,
    auth: { token: env.MLFLOW_TRACKING_TOKEN || undefined, username: env.MLFLOW_TRACKING_USERNAME || undefined, password: env.MLFLOW_TRACKING_PASSWORD || undefined },
  });
}

/** An MLflow metric or parameter key: letters, digits and _ - . / and spaces. */
export function metricKey(name: string): string {
  return name.replace(/[^A-Za-z0-9_\-./ ]/g, "_");
}

/** Parameters as MLflow stores them: strings, nested values as JSON. */
export function paramValues(values: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => [metricKey(key), typeof value === "string" ? value : JSON.stringify(value)]),
  );
}

/** The numbers among a result's fields (nested objects flattened with "."), as metrics at one step. */
export function numericMetrics(values: Record<string, unknown>, step: number, prefix = ""): MlflowMetric[] {
  const timestamp = Date.now();
  return Object.entries(values).flatMap(([key, value]): MlflowMetric[] => {
    const name = `${prefix}${key}`;
    if (typeof value === "number" && Number.isFinite(value)) return [{ key: metricKey(name), value, step, timestamp }];
    if (typeof value === "boolean") return [{ key: metricKey(name), value: value ? 1 : 0, step, timestamp }];
    if (value !== null && typeof value === "object" && !Array.isArray(value)) return numericMetrics(value as Record<string, unknown>, step, `${name}.`);
    return [];
  });
}

/**
 * One run on the tracking server that can never break the work it records: the first failure (server down, refused
 * request) is reported once through `warn`, and every later call does nothing. Metrics logged during the work are
 * queued and sent in batches, in order, without making the work wait.
 */
export class TrackedRun {
  private failed = false;
  private queue: MlflowMetric[] = [];
  private sending: Promise<void> = Promise.resolve();
  private lastFlush = Date.now();

  private constructor(
    private readonly client: MlflowClient,
    readonly reference: TrackedRunReference,
    private readonly warn: (message: string) => void,
    private readonly localRecord: string,
  ) {}

  /**
   * Starts a run (creating the experiment where needed) with its parameters; undefined when tracking is off or the
   * server cannot be reached, after one warning that says where the run is recorded instead.
   */
  static async start(
    config: AtsConfig,
    run: { name: string; params: Record<string, unknown>; tags?: Record<string, string>; localRecord: string },
    warn: (message: string) => void,
  ): Promise<TrackedRun | undefined> {
    const { target, problem } = trackingTarget(config);
    if (problem) warn(problem);
    if (target === null) return undefined;
    const client = clientFor(target);
    try {
      const experimentId = await client.experimentId(target.experiment);
      const info = await client.createRun(experimentId, run.name, { "mlflow.source.name": "ats-lora", ...run.tags });
      const reference: TrackedRunReference = {
        uri: target.uri,
        experiment_id: experimentId,
        run_id: info.run_id,
        url: `${target.uri.replace(/\/+$/, "")}/#/experiments/${experimentId}/runs/${info.run_id}`,
        artifact_uri: info.artifact_uri,
      };
      const tracked = new TrackedRun(client, reference, warn, run.localRecord);
      await tracked.guard(() => client.logBatch(info.run_id, { params: paramValues(run.params) }));
      return tracked.failed ? undefined : tracked;
    } catch (error) {
      warn(`MLflow tracking at ${target.uri} failed: ${(error as Error).message}. The run goes on and is recorded in ${run.localRecord} only`);
      return undefined;
    }
  }

  get active(): boolean {
    return !this.failed;
  }

  private async guard(work: () => Promise<void>): Promise<void> {
    if (this.failed) return;
    try {
      await work();
    } catch (error) {
      if (this.failed) return;
      this.failed = true;
      this.warn(`MLflow tracking at ${this.reference.uri} failed: ${(error as Error).message}. The run goes on; from here it is recorded in ${this.localRecord} only`);
    }
  }

  /** Queues step metrics; they are sent every 50 or every 5 seconds, whichever comes first. */
  logMetrics(metrics: MlflowMetric[]): void {
    if (this.failed) return;
    this.queue.push(...metrics);
    if (this.queue.length >= 50 || Date.now() - this.lastFlush > 5000) void this.flush();
  }

  /** Sends what is queued; resolves when everything queued so far has been sent (or tracking has failed). */
  flush(): Promise<void> {
    const batch = this.queue.splice(0);
    this.lastFlush = Date.now();
    if (batch.length > 0) this.sending = this.sending.then(() => this.guard(() => this.client.logBatch(this.reference.run_id, { metrics: batch })));
    return this.sending;
  }

  async logParams(params: Record<string, unknown>): Promise<void> {
    await this.flush();
    await this.guard(() => this.client.logBatch(this.reference.run_id, { params: paramValues(params) }));
  }

  async setTags(tags: Record<string, string>): Promise<void> {
    await this.flush();
    await this.guard(() => this.client.logBatch(this.reference.run_id, { tags }));
  }

  /** Uploads files as the run's artifacts, each under `artifactDir/` with its own name. */
  async logArtifacts(files: readonly string[], artifactDir: string): Promise<void> {
    await this.flush();
    for (const file of files) {
      await this.guard(() => this.client.uploadArtifact(this.reference.artifact_uri, file, `${artifactDir}/${path.basename(file)}`));
    }
  }

  /** Ends the run with its status, after everything queued; the reference when the whole run reached the server. */
  async finish(status: "FINISHED" | "FAILED" | "KILLED"): Promise<TrackedRunReference | undefined> {
    await this.flush();
    await this.guard(() => this.client.endRun(this.reference.run_id, status));
    return this.failed ? undefined : this.reference;
  }
}

/** A folder's top-level files (an adapter's weights, config, card and metrics), without checkpoints, locks or temporaries. */
export function artifactFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && !/\.(lock|tmp)$/.test(entry.name) && !entry.name.startsWith("."))
    .map((entry) => path.join(dir, entry.name))
    .sort();
}

export interface RegisteredVersion {
  registered_model: string;
  version: string;
  alias: string;
  /** True when the run already had this version, which only got the alias. */
  reused: boolean;
}

/**
 * Registers what a tracked run produced as a version of a registered model (once per run: registering the same
 * run again reuses its version) and points the alias at it. Throws the server's error: callers decide how loud.
 */
export async function registerVersion(
  target: TrackingTarget,
  input: { registeredModel: string; description: string; run: TrackedRunReference; artifactDir: string; alias: string; tags?: Record<string, string> },
): Promise<RegisteredVersion> {
  const client = clientFor(target);
  await client.ensureRegisteredModel(input.registeredModel, input.description);
  const existing: ModelVersion | undefined = (await client.versionsOfRun(input.registeredModel, input.run.run_id))[0];
  const version = existing ?? (await client.createModelVersion(input.registeredModel, `${input.run.artifact_uri}/${input.artifactDir}`, input.run.run_id, input.tags ?? {}));
  await client.setAlias(input.registeredModel, input.alias, version.version);
  return { registered_model: input.registeredModel, version: version.version, alias: input.alias, reused: existing !== undefined };
}

/** Points an alias at a registered version again (a rollback). */
export async function moveAlias(target: TrackingTarget, registeredModel: string, alias: string, version: string): Promise<void> {
  await clientFor(target).setAlias(registeredModel, alias, version);
}
