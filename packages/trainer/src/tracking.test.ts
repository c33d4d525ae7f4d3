import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig, readModelCard, trainingPairsFile, workdirPaths, type AdapterCard, type AtsConfig, type OperationContext, type OperationEvent } from "@ats-lora/core";
import { promoteModel, rollbackModel } from "@ats-lora/models";
import { MlflowClient } from "@ats-lora/tracking";
import { startMlflowServer, type MlflowTestServer } from "@ats-lora/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTinyModel } from "./tiny.js";
import { trainAdapter, type TrainEvent } from "./train.js";

// Training, promotion and rollback tracked on a real MLflow server (SQLite store, loopback), with the tiny model
// through the real worker; then the server stopped, and training goes on.
let server: MlflowTestServer;
let context: OperationContext;
let config: AtsConfig;

beforeAll(async () => {
  server = await startMlflowServer();
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-trainer-mlflow-"));
  const paths = workdirPaths(workdir);
  const tiny = path.join(paths.models, "tiny");
  await createTinyModel({ dir: tiny, pretrainSteps: 0, seed: 1 }, { paths, config: loadConfig({ env: {} }) });
  const rows = ["skills", "experience", "education", "summary"].map((part, i) => ({ prompt: `Name the ${part} section of resume ${i}.`, completion: `The ${part} section.`, task: "resume_analysis", source_ids: [`r${i}`] }));
  const trainFile = trainingPairsFile(paths.trainingPairs, "sft", "train");
  fs.mkdirSync(path.dirname(trainFile), { recursive: true });
  fs.writeFileSync(trainFile, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
  fs.writeFileSync(path.join(paths.trainingPairs, "manifest.json"), JSON.stringify({ format_version: 1, config_hash: "feedc0de" }));
  config = loadConfig({
    env: {},
    overrides: {
      model: { base: tiny, quantization: "none" },
      training: { format: "sft", max_steps: 8, batch_size: 4, grad_accum: 1, warmup_steps: 0, learning_rate: 1e-2, logging_steps: 1, save_steps: 8, max_seq_length: 64 },
      tracking: { mlflow_uri: server.url, experiment: "trainer-test", registered_model: "trainer-test-adapter", timeout_seconds: 5 },
    },
  });
  context = { paths, config };
}, 300_000);

afterAll(async () => {
  await server?.stop();
});

const adapterDir = (name: string) => path.join(context.paths.models, name);

describe("training tracked on MLflow", () => {
  it("logs a run with its parameters, a falling loss history and the adapter's files; promote registers versions 1 and 2 and moves the alias; rollback moves it back", async () => {
    const warnings: string[] = [];
    const onEvent = (event: TrainEvent) => event.method === "warning" && warnings.push(event.params.message);
    for (const name of ["v1", "v2"]) expect((await trainAdapter({ outputDir: adapterDir(name) }, context, { onEvent })).status).toBe("completed");
    expect(warnings).toEqual([]);

    const client = new MlflowClient(server.url, { timeoutMs: 5000 });
    const card = readModelCard(adapterDir("v1")) as AdapterCard;
    const runId = card.mlflow!.run.run_id;
    expect(fs.readFileSync(path.join(adapterDir("v1"), "README.md"), "utf8")).toContain(`MLflow run: ${server.url}/#/experiments/`);
    const run = await client.getRun(runId);
    expect(run.info.status).toBe("FINISHED");
    const params = Object.fromEntries((run.data.params ?? []).map((p) => [p.key, p.value]));
    expect(params).toMatchObject({ learning_rate: "0.01", lora_r: String(config.lora.r), max_steps: "8", format: "sft", settings_sha256: card.settings_sha256, train_rows: "4" });
    const loss = (await client.metricHistory(runId, "loss")).sort((a, b) => a.step - b.step);
    expect(loss.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(loss.at(-1)!.value).toBeLessThan(loss[0]!.value);
    const finals = Object.fromEntries((run.data.metrics ?? []).map((m) => [m.key, m.value]));
    expect(finals["final.steps"]).toBe(8);
    expect(finals["final.train_loss_last"]).toBeCloseTo(card.metrics!.train_loss_last as number, 6);
    const files = (await client.listArtifacts(runId, "adapter")).map((file) => file.path);
    expect(files).toEqual(expect.arrayContaining(["adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/metrics.json", "adapter/model.json"]));

    const events: OperationEvent[] = [];
    const options = { onEvent: (event: OperationEvent) => events.push(event) };
    expect((await promoteModel({ name: "v1" }, context, options)).mlflow).toEqual({ registered_model: "trainer-test-adapter", version: "1", alias: "production", reused: false });
    expect((await promoteModel({ name: "v2" }, context, options)).mlflow).toMatchObject({ version: "2", alias: "production" });
    expect((await client.versionByAlias("trainer-test-adapter", "production")).version).toBe("2");
    expect((readModelCard(adapterDir("v1")) as AdapterCard).mlflow!.versions).toEqual([{ registered_model: "trainer-test-adapter", version: "1" }]);
    expect((await rollbackModel({}, context, options)).mlflow).toMatchObject({ version: "1", alias: "production" });
    expect(await client.versionByAlias("trainer-test-adapter", "production")).toMatchObject({ version: "1", run_id: runId, source: `${card.mlflow!.run.artifact_uri}/adapter` });
    expect(events).toEqual([]);
  }, 600_000);

  it("with the server stopped, training succeeds and warns once; promotion still changes the local registry", async () => {
    await server.stop();
    const warnings: string[] = [];
    const outcome = await trainAdapter({ outputDir: adapterDir("v3") }, context, { onEvent: (event) => event.method === "warning" && warnings.push(event.params.message) });
    expect(outcome.status).toBe("completed");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`MLflow tracking at ${server.url} failed`);
    expect(warnings[0]).toContain(`recorded in ${adapterDir("v3")} (metrics.json, model.json, train.log) only`);
    const card = readModelCard(adapterDir("v3")) as AdapterCard;
    expect(card.mlflow).toBeUndefined();
    expect(card.metrics).toMatchObject({ steps: 8 });

    const events: OperationEvent[] = [];
    const change = await promoteModel({ name: "v3" }, context, { onEvent: (event) => events.push(event) });
    expect(change).toMatchObject({ stage: "production", model: "v3" });
    expect(change.mlflow).toBeUndefined();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "warning", message: expect.stringContaining("failed") });
  }, 300_000);
});
