import fs from "node:fs";
import { Readable } from "node:stream";

/**
 * A client of MLflow's REST API (tracking, artifacts through the server's proxy, model registry): the calls ats-lora
 * makes, each with a time limit. MLflow keeps the storage; this only speaks its documented protocol.
 */

export interface MlflowAuth {
  /** MLFLOW_TRACKING_TOKEN: sent as a bearer token. */
  token?: string;
  /** MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD: HTTP basic auth. */
  username?: string;
  password?: string;
}

/** The server answered with an error (error_code is MLflow's, e.g. RESOURCE_DOES_NOT_EXIST), or did not answer. */
export class MlflowError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly errorCode: string | null,
  ) {
    super(message);
    this.name = "MlflowError";
  }
}

export interface MlflowMetric {
  key: string;
  value: number;
  step: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
}

export interface RunInfo {
  run_id: string;
  experiment_id: string;
  artifact_uri: string;
  status: string;
}

export interface ModelVersion {
  name: string;
  version: string;
  source: string;
  run_id?: string;
  aliases?: string[];
}

// The server's limits on one log-batch request (MLflow's REST API reference).
const BATCH_METRICS = 1000;
const BATCH_PARAMS = 100;
const BATCH_TAGS = 100;
/** MLflow stores a parameter's value in at most 6,000 characters. */
export const PARAM_VALUE_LIMIT = 6000;

export class MlflowClient {
  readonly uri: string;

  constructor(
    uri: string,
    private readonly options: { timeoutMs: number; auth?: MlflowAuth },
  ) {
    this.uri = uri.replace(/\/+$/, "");
  }

  private headers(json: boolean): Record<string, string> {
    const headers: Record<string, string> = json ? { "content-type": "application/json" } : {};
    const auth = this.options.auth;
    if (auth?.token) headers.authorization = `Bearer ${auth.token}`;
    else if (auth?.username !== undefined) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ""}`).toString("base64")}`;
    return headers;
  }

  private async call<T>(method: "GET" | "POST", endpoint: string, body?: Record<string, unknown>): Promise<T> {
    let url = `${this.uri}/api/2.0/mlflow/${endpoint}`;
    if (method === "GET" && body) url += `?${new URLSearchParams(Object.fromEntries(Object.entries(body).map(([key, value]) => [key, String(value)])))}`;
    return this.send<T>(url, { method, headers: this.headers(method === "POST"), body: method === "POST" ? JSON.stringify(body ?? {}) : undefined }, `${method} ${endpoint}`);
  }

  private async send<T>(url: string, init: RequestInit, what: string): Promise<T> {
    let response: Response;
    try {
      response = await fetch(url, { ...init, signal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = (error as Error).name === "TimeoutError" ? `no answer in ${this.options.timeoutMs / 1000} s` : (cause?.code ?? cause?.message ?? (error as Error).message);
      throw new MlflowError(`${this.uri} unreachable (${what}: ${reason})`, null, null);
    }
    const text = await response.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      if (response.ok) throw new MlflowError(`${what}: the server at ${this.uri} answered ${response.status} with something that is not JSON; is it an MLflow tracking server?`, response.status, null);
    }
    if (!response.ok) {
      const message = typeof parsed.message === "string" ? parsed.message : text.slice(0, 200);
      throw new MlflowError(`${what}: ${response.status} ${message}`, response.status, typeof parsed.error_code === "string" ? parsed.error_code : null);
    }
    return parsed as T;
  }

  /** The experiment's id, creating it when it does not exist. */
  async experimentId(name: string): Promise<string> {
    try {
      const found = await this.call<{ experiment: { experiment_id: string } }>("GET", "experiments/get-by-name", { experiment_name: name });
      return found.experiment.experiment_id;
    } catch (error) {
      if (!(error instanceof MlflowError) || error.errorCode !== "RESOURCE_DOES_NOT_EXIST") throw error;
    }
    try {
      return (await this.call<{ experiment_id: string }>("POST", "experiments/create", { name })).experiment_id;
    } catch (error) {
      // Created meanwhile by another run.
      if (error instanceof MlflowError && error.errorCode === "RESOURCE_ALREADY_EXISTS") return this.experimentId(name);
      throw error;
    }
  }

  async createRun(experimentId: string, runName: string, tags: Record<string, string>): Promise<RunInfo> {
    const created = await this.call<{ run: { info: RunInfo } }>("POST", "runs/create", {
      experiment_id: experimentId,
      run_name: runName,
      start_time: Date.now(),
      tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
    });
    return created.run.info;
  }

  async getRun(runId: string): Promise<{ info: RunInfo; data: { params?: Array<{ key: string; value: string }>; metrics?: MlflowMetric[]; tags?: Array<{ key: string; value: string }> } }> {
    return (await this.call<{ run: never }>("GET", "runs/get", { run_id: runId })).run;
  }

  /** Parameters, metrics and tags in as few requests as the server's limits allow. */
  async logBatch(runId: string, batch: { metrics?: MlflowMetric[]; params?: Record<string, string>; tags?: Record<string, string> }): Promise<void> {
    const metrics = batch.metrics ?? [];
    const params = Object.entries(batch.params ?? {}).map(([key, value]) => ({ key, value: value.slice(0, PARAM_VALUE_LIMIT) }));
    const tags = Object.entries(batch.tags ?? {}).map(([key, value]) => ({ key, value }));
    while (metrics.length > 0 || params.length > 0 || tags.length > 0) {
      await this.call("POST", "runs/log-batch", {
        run_id: runId,
        metrics: metrics.splice(0, BATCH_METRICS),
        params: params.splice(0, BATCH_PARAMS),
        tags: tags.splice(0, BATCH_TAGS),
      });
    }
  }

  async metricHistory(runId: string, key: string): Promise<MlflowMetric[]> {
    return (await this.call<{ metrics?: MlflowMetric[] }>("GET", "metrics/get-history", { run_id: runId, metric_key: key })).metrics ?? [];
  }

  async endRun(runId: string, status: "FINISHED" | "FAILED" | "KILLED"): Promise<void> {
    await this.call("POST", "runs/update", { run_id: runId, status, end_time: Date.now() });
  }

  /**
   * Uploads a file into the run's artifacts through the server's artifact proxy (`mlflow server` serves artifacts
   * unless started with --no-serve-artifacts). A run whose artifacts live elsewhere (s3://, a local path on the
   * server) cannot be written over REST: that is an error naming the location.
   */
  async uploadArtifact(artifactUri: string, file: string, artifactPath: string): Promise<void> {
    const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/(.*)$/.exec(artifactUri);
    if (!match) {
      throw new MlflowError(`the run's artifacts go to ${artifactUri}, which only MLflow's Python client can write; start the server with artifact serving (mlflow server --serve-artifacts) to upload through it`, null, null);
    }
    const target = [...match[1]!.split("/"), ...artifactPath.split("/")].filter(Boolean).map(encodeURIComponent).join("/");
    const size = fs.statSync(file).size;
    await this.send(
      `${this.uri}/api/2.0/mlflow-artifacts/artifacts/${target}`,
      {
        method: "PUT",
        headers: { ...this.headers(false), "content-type": "application/octet-stream", "content-length": String(size) },
        body: Readable.toWeb(fs.createReadStream(file)) as ReadableStream,
        duplex: "half",
      } as RequestInit,
      `upload ${artifactPath}`,
    );
  }

  async listArtifacts(runId: string, artifactPath = ""): Promise<Array<{ path: string; is_dir: boolean; file_size?: number }>> {
    return (await this.call<{ files?: Array<{ path: string; is_dir: boolean; file_size?: number }> }>("GET", "artifacts/list", { run_id: runId, path: artifactPath })).files ?? [];
  }

  /** Creates the registered model unless it exists. */
  async ensureRegisteredModel(name: string, description: string): Promise<void> {
    try {
      await this.call("POST", "registered-models/create", { name, description });
    } catch (error) {
      if (!(error instanceof MlflowError) || error.errorCode !== "RESOURCE_ALREADY_EXISTS") throw error;
    }
  }

  async createModelVersion(name: string, source: string, runId: string, tags: Record<string, string>): Promise<ModelVersion> {
    const created = await this.call<{ model_version: ModelVersion }>("POST", "model-versions/create", {
      name,
      source,
      run_id: runId,
      tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
    });
    return created.model_version;
  }

  /** The registered model's versions that a run produced. */
  async versionsOfRun(name: string, runId: string): Promise<ModelVersion[]> {
    const filter = `name='${name.replace(/'/g, "\\'")}' and run_id='${runId}'`;
    return (await this.call<{ model_versions?: ModelVersion[] }>("GET", "model-versions/search", { filter })).model_versions ?? [];
  }

  async setAlias(name: string, alias: string, version: string): Promise<void> {
    await this.call("POST", "registered-models/alias", { name, alias, version });
  }

  async versionByAlias(name: string, alias: string): Promise<ModelVersion> {
    return (await this.call<{ model_version: ModelVersion }>("GET", "registered-models/alias", { name, alias })).model_version;
  }
}
