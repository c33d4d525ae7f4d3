import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig, type AtsConfig } from "@ats-lora/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MlflowClient, MlflowError } from "./mlflow-client.js";
import { freePort, startMlflowServer, type MlflowTestServer } from "./testing.js";
import { numericMetrics, registerVersion, TrackedRun, trackingTarget, type TrackedRunReference } from "./tracked-run.js";

// Against a real `mlflow server` (SQLite store, artifacts served by it) on a loopback port.
let server: MlflowTestServer;
beforeAll(async () => {
  server = await startMlflowServer();
}, 180_000);
afterAll(async () => {
  await server?.stop();
});

function configFor(uri: string | null, experiment = "tracked-run-test"): AtsConfig {
  return loadConfig({ env: {}, overrides: { tracking: { mlflow_uri: uri, experiment, timeout_seconds: 5 } } });
}

describe("MLflow tracking", () => {
  it("logs a run's parameters, step metrics in order, artifacts and end; registers versions of two runs and moves the alias", async () => {
    const warnings: string[] = [];
    const config = configFor(server.url);
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "ats-tracked-"));
    fs.writeFileSync(path.join(folder, "adapter_config.json"), JSON.stringify({ r: 8 }));
    fs.writeFileSync(path.join(folder, "adapter_model.safetensors"), Buffer.alloc(3 * 1024 * 1024, 7));

    const runs: TrackedRunReference[] = [];
    for (const name of ["v1", "v2"]) {
      const run = await TrackedRun.start(config, { name, params: { lora_r: 8, target_modules: ["q_proj", "v_proj"], note: "x".repeat(7000) }, localRecord: folder }, (m) => warnings.push(m));
      expect(run).toBeDefined();
      // 120 steps: more than one batch of the queue, sent in order.
      for (let step = 1; step <= 120; step += 1) run!.logMetrics(numericMetrics({ loss: 3 / step }, step));
      await run!.logArtifacts([path.join(folder, "adapter_config.json"), path.join(folder, "adapter_model.safetensors")], "adapter");
      runs.push((await run!.finish("FINISHED"))!);
    }
    expect(warnings).toEqual([]);

    const client = new MlflowClient(server.url, { timeoutMs: 5000 });
    const stored = await client.getRun(runs[0]!.run_id);
    expect(stored.info.status).toBe("FINISHED");
    const params = Object.fromEntries((stored.data.params ?? []).map((p) => [p.key, p.value]));
    expect(params).toMatchObject({ lora_r: "8", target_modules: '["q_proj","v_proj"]' });
    // MLflow keeps 6,000 characters of a parameter.
    expect(params.note).toHaveLength(6000);
    const history = await client.metricHistory(runs[0]!.run_id, "loss");
    expect(history.map((m) => m.step).sort((a, b) => a - b)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    const artifacts = await client.listArtifacts(runs[0]!.run_id, "adapter");
    expect(artifacts.map((file) => [file.path, file.file_size])).toEqual([
      ["adapter/adapter_config.json", 7],
      ["adapter/adapter_model.safetensors", 3 * 1024 * 1024],
    ]);
    expect(runs[0]!.url).toBe(`${server.url}/#/experiments/${runs[0]!.experiment_id}/runs/${runs[0]!.run_id}`);

    const register = (run: TrackedRunReference) =>
      registerVersion(trackingTarget(config).target!, { registeredModel: "tracked-run-test-model", description: "test", run, artifactDir: "adapter", alias: "production" });
    expect(await register(runs[0]!)).toEqual({ registered_model: "tracked-run-test-model", version: "1", alias: "production", reused: false });
    expect(await register(runs[1]!)).toEqual({ registered_model: "tracked-run-test-model", version: "2", alias: "production", reused: false });
    expect((await client.versionByAlias("tracked-run-test-model", "production")).version).toBe("2");
    // The same run again: its version gets the alias back, no third version.
    expect(await register(runs[0]!)).toMatchObject({ version: "1", reused: true });
    const byAlias = await client.versionByAlias("tracked-run-test-model", "production");
    expect(byAlias).toMatchObject({ version: "1", run_id: runs[0]!.run_id, source: `${runs[0]!.artifact_uri}/adapter` });
  }, 120_000);

  it("never breaks the work: a server that is not there is one warning, and nothing else happens", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const warnings: string[] = [];
    const run = await TrackedRun.start(configFor(closed), { name: "offline", params: { a: 1 }, localRecord: "/tmp/somewhere" }, (m) => warnings.push(m));
    expect(run).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`MLflow tracking at ${closed} failed: .*unreachable.*ECONNREFUSED.*recorded in /tmp/somewhere only`));
  });

  it("reads MLflow's own environment variables and refuses URIs it cannot speak to", () => {
    const config = configFor(null);
    expect(trackingTarget(config, {}).target).toBeNull();
    expect(trackingTarget(config, { MLFLOW_TRACKING_URI: "http://mlflow.internal:5000", MLFLOW_EXPERIMENT_NAME: "ats" }).target).toMatchObject({ uri: "http://mlflow.internal:5000", experiment: "ats" });
    expect(trackingTarget(config, { MLFLOW_TRACKING_URI: "file:./mlruns" })).toMatchObject({ target: null, problem: expect.stringContaining("not an MLflow tracking server's http(s) URL") });
    // The configuration's URI wins over the environment's.
    expect(trackingTarget(configFor("http://127.0.0.1:5000"), { MLFLOW_TRACKING_URI: "http://elsewhere:5000" }).target?.uri).toBe("http://127.0.0.1:5000");
    const refused = (() => {
      try {
        configFor("ftp://127.0.0.1");
      } catch (error) {
        return error as { details: string[] };
      }
    })();
    expect(refused?.details.join("\n")).toMatch(/tracking.mlflow_uri: must be an http:\/\/ or https:\/\/ URL of an MLflow tracking server/);
  });

  it("names MLflow's error code when the server refuses a request", async () => {
    const client = new MlflowClient(server.url, { timeoutMs: 5000 });
    const refused = await client.getRun("0".repeat(32)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(MlflowError);
    expect(refused).toMatchObject({ status: 404, errorCode: "RESOURCE_DOES_NOT_EXIST" });
  });
});
