import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { InputError, loadConfig, NotFoundError, registryFile, workdirPaths, writeModelCard, type OperationContext } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { listModels } from "./list.js";
import { promoteModel, rollbackModel, showModel } from "./versions.js";

// Adapter versions on real folders under models/ (model.json as train writes it) and models/registry.json.

function workdir(): OperationContext {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-versions-"));
  return { paths: workdirPaths(dir), config: loadConfig({ env: {} }) };
}

function adapter(context: OperationContext, name: string, manifestSha: string): void {
  const dir = path.join(context.paths.models, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "adapter_config.json"), "{}");
  writeModelCard(dir, {
    kind: "adapter",
    base: { path: "/models/base.gguf", format: "gguf", weights: "/models/base.gguf", sha256: "a".repeat(64) },
    training_format: "sft",
    created_at: "2026-11-30T10:00:00.000Z",
    dataset: { path: context.paths.trainingPairs, manifest_sha256: manifestSha, config_hash: "c0ffee", rows: { train: 40, val: 5 } },
    settings_sha256: "b".repeat(64),
    training_args: { learning_rate: 0.0002, lora_r: 16 },
    metrics: { steps: 30, train_loss: 1.2 },
    parent: null,
  });
}

describe("adapter versions", () => {
  it("promotes to production and staging, lists each adapter's stage and lineage, and rolls back one promotion at a time", async () => {
    const context = workdir();
    adapter(context, "v1", "1".repeat(64));
    adapter(context, "v2", "2".repeat(64));
    adapter(context, "v3", "3".repeat(64));
    expect(listModels(context)).toMatchObject({ production: null, staging: null });

    expect(await promoteModel({ name: "v1" }, context)).toMatchObject({ stage: "production", model: "v1", previous: null, registry: registryFile(context.paths.models) });
    expect(await promoteModel({ name: "v2" }, context)).toMatchObject({ model: "v2", previous: "v1" });
    expect(await promoteModel({ name: "v3", stage: "staging" }, context)).toMatchObject({ stage: "staging", model: "v3", previous: null });
    const listed = listModels(context);
    expect(listed).toMatchObject({ production: "v2", staging: "v3" });
    expect(listed.models.map((model) => [model.name, model.stage])).toEqual([["v1", null], ["v2", "production"], ["v3", "staging"]]);
    expect(listed.models[1]!.lineage).toEqual({ base_sha256: "a".repeat(64), dataset: expect.objectContaining({ manifest_sha256: "2".repeat(64), rows: { train: 40, val: 5 } }), settings_sha256: "b".repeat(64), parent: null, evals: 0 });

    const shown = showModel("v2", context);
    expect(shown.stage).toBe("production");
    expect(shown.history.map((event) => [event.action, event.model, event.previous])).toEqual([["promote", "v2", "v1"]]);
    expect(shown.markdown).toContain("# v2");
    expect(shown.markdown).toContain(`manifest sha256 ${"2".repeat(64)}`);

    // v1 → v2 → v4 → rollback → v2 → rollback → v1, then nothing before v1.
    adapter(context, "v4", "4".repeat(64));
    await promoteModel({ name: "v4" }, context);
    expect(await rollbackModel({}, context)).toMatchObject({ stage: "production", model: "v2", previous: "v4" });
    expect(await rollbackModel({}, context)).toMatchObject({ model: "v1", previous: "v2" });
    await expect(rollbackModel({}, context)).rejects.toThrow(/nothing to roll production back to: v1 is the first adapter promoted/);
    expect(listModels(context)).toMatchObject({ production: "v1", staging: "v3" });
  });

  it("refuses what is not an adapter under models/, and a damaged registry, naming them", async () => {
    const context = workdir();
    await expect(promoteModel({ name: "v9" }, context)).rejects.toThrow(NotFoundError);
    await expect(promoteModel({ name: "../elsewhere" }, context)).rejects.toThrow(/is not a model folder name/);
    fs.mkdirSync(path.join(context.paths.models, "smollm2"), { recursive: true });
    await expect(promoteModel({ name: "smollm2" }, context)).rejects.toThrow(/is not a trained adapter \(its model.json is missing\)/);
    await expect(rollbackModel({ stage: "staging" }, context)).rejects.toThrow(/no adapter was ever promoted/);
    adapter(context, "v1", "1".repeat(64));
    fs.writeFileSync(registryFile(context.paths.models), JSON.stringify({ format_version: 1, production: 3, staging: null, history: [] }));
    await expect(promoteModel({ name: "v1" }, context)).rejects.toThrow(InputError);
    expect(() => listModels(context)).toThrow(/registry.json: production: /);
  });
});
