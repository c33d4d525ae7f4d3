import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ExitCode, fingerprintBase, InputError, loadConfig, workdirPaths, writeModelCard, type AtsError, type OperationContext, type OperationEvent } from "@ats-lora/core";
import { watchTerminal, type TerminalWatch } from "@ats-lora/core/testing";
import { WorkerClient, workerPython } from "@ats-lora/worker";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { catalogueEntry } from "./catalogue.js";
import { exportAdapter } from "./export.js";
import { pullModel } from "./pull.js";
import { resolveLocalModel } from "./resolve.js";

/**
 * export and resolveLocalModel: the refusals (before any worker starts), then one real LoRA GGUF export of a
 * PEFT adapter made on the prepared SmolLM2 base, and what chat would load from it.
 */

const SMOLLM = catalogueEntry("smollm2-135m-instruct")!;
const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-models-export-"));
const context: OperationContext = { paths: workdirPaths(workdir), config: loadConfig({ env: {} }) };
const models = context.paths.models;
afterAll(() => fs.rmSync(workdir, { recursive: true, force: true }));

let terminal: TerminalWatch;
beforeEach(() => {
  terminal = watchTerminal();
});
afterEach(() => {
  expect(terminal.stop(), "the operation wrote to the terminal").toEqual([]);
});

async function refusal(work: Promise<unknown>): Promise<InputError> {
  const error = await work.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(InputError);
  expect((error as InputError).exitCode).toBe(2);
  return error as InputError;
}

/** An adapter folder as PEFT lays it out, its weights not needed by the checks that come first. */
function adapterFolder(name: string, baseModelNameOrPath: string): string {
  const dir = path.join(models, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", base_model_name_or_path: baseModelNameOrPath, r: 4 }));
  return dir;
}

describe("exportAdapter's checks", () => {
  it("refuses a folder that is not a PEFT adapter", async () => {
    const plain = path.join(models, "plain");
    fs.mkdirSync(plain, { recursive: true });
    const error = await refusal(exportAdapter({ adapter: plain, format: "gguf-lora" }, context));
    expect(error.message).toBe(`${plain} is not a PEFT adapter: it has no adapter_config.json`);
    expect((await refusal(exportAdapter({ adapter: path.join(models, "nowhere"), format: "gguf" }, context))).message).toMatch(/no such adapter folder/);
  });

  it("refuses a base other than the one the lineage records, naming both", async () => {
    const trainedOn = path.join(workdir, "trained-on.gguf");
    const other = path.join(workdir, "other.gguf");
    fs.writeFileSync(trainedOn, "GGUF the base it was trained on");
    fs.writeFileSync(other, "GGUF another base");
    const adapter = adapterFolder("lineage", trainedOn);
    writeModelCard(adapter, { kind: "adapter", base: fingerprintBase(trainedOn), training_format: "sft", created_at: new Date().toISOString() });
    const error = await refusal(exportAdapter({ adapter, format: "gguf-lora", base: other }, context));
    expect(error.message).toContain(`trained on another base model than ${other}`);
    expect(error.details.join("\n")).toContain(trainedOn);
    expect(error.details.join("\n")).toContain(other);
    // The same base file replaced in place: its fingerprint no longer matches either.
    fs.writeFileSync(trainedOn, "GGUF replaced");
    expect((await refusal(exportAdapter({ adapter, format: "gguf-lora" }, context))).details.join("\n")).toContain(trainedOn);
  });

  it("refuses a missing base, naming the catalogue model to pull", async () => {
    const base = path.join(models, SMOLLM.name);
    const adapter = adapterFolder("orphan", path.join(base, "hf"));
    writeModelCard(adapter, { kind: "adapter", base: { path: base, format: "gguf", weights: path.join(base, SMOLLM.file), sha256: SMOLLM.sha256 }, training_format: "sft", created_at: new Date().toISOString() });
    const error = await refusal(exportAdapter({ adapter, format: "gguf" }, context));
    expect(error.message).toBe(`the base model ${base} it was trained on is missing`);
    expect(error.hint).toBe(`pull it again: ats-lora models pull ${SMOLLM.name}`);
    // resolveLocalModel (chat, eval, serve) refuses it the same way.
    expect((await refusal(resolveLocalModel(adapter, {}, context))).message).toBe(error.message);
    expect((await refusal(resolveLocalModel(SMOLLM.name, {}, context))).hint).toBe(`ats-lora models pull ${SMOLLM.name}`);
    expect((await refusal(resolveLocalModel("no-such-model", {}, context))).message).toBe("no such model: no-such-model");
    fs.rmSync(adapter, { recursive: true });
  });
});

describe("exportAdapter and resolveLocalModel on SmolLM2", () => {
  it("exports a PEFT adapter as a LoRA GGUF for its base, which chat then loads (exported again when the weights change)", async () => {
    const base = (await pullModel({ name: SMOLLM.name }, context)).path;
    const { client } = await WorkerClient.start({ logFile: path.join(workdir, "prepare.log") });
    const { training_folder: hf } = await client.request("prepare_base", { model: base }).finally(() => client.close());
    expect(fs.existsSync(path.join(hf, "config.json"))).toBe(true);

    // A LoRA with non-zero B matrices, so the export carries real numbers.
    const adapter = path.join(models, "ats_lora_v1");
    const script = [
      "import sys, torch",
      "from transformers import AutoModelForCausalLM",
      "from peft import LoraConfig, get_peft_model",
      "torch.manual_seed(0)",
      "model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)",
      'config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")',
      "get_peft_model(model, config).save_pretrained(sys.argv[2])",
    ].join("\n");
    execFileSync(workerPython(), ["-c", script, hf, adapter], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, TOKENIZERS_PARALLELISM: "false" } });
    writeModelCard(adapter, { kind: "adapter", base: fingerprintBase(base), training_format: "sft", created_at: new Date().toISOString() });

    const events: OperationEvent[] = [];
    const exported = await exportAdapter({ adapter, format: "gguf-lora" }, context, { onEvent: (event) => events.push(event) });
    const lora = path.join(adapter, "adapter-f16.gguf");
    expect(exported.output).toBe(lora);
    expect(fs.readFileSync(lora).subarray(0, 4).toString("latin1")).toBe("GGUF");
    expect(exported).toMatchObject({ format: "gguf-lora", size_bytes: fs.statSync(lora).size, architecture: "llama", lora_alpha: 8 });
    // A LoRA GGUF runs with its base's chat template and EOS (<|im_end|>, id 2 in SmolLM2).
    expect([exported.chat_template, exported.eos_token_id]).toEqual([true, 2]);
    expect(exported.base_model).toMatchObject({ path: base, format: "gguf", sha256: SMOLLM.sha256 });
    expect(events.some((event) => event.type === "stage" && event.message.includes("gguf-lora"))).toBe(true);

    // What chat loads: the base GGUF and the adapter's LoRA GGUF, exported already, so not again.
    const weights = path.join(base, SMOLLM.file);
    const loaded: OperationEvent[] = [];
    const resolved = await resolveLocalModel(adapter, {}, context, { onEvent: (event) => loaded.push(event) });
    expect(resolved).toEqual({ name: "ats_lora_v1", base: weights, adapters: [{ name: "ats_lora_v1", path: lora }] });
    expect(loaded).toEqual([]);
    expect(await resolveLocalModel(SMOLLM.name, {}, context)).toEqual({ name: SMOLLM.name, base: weights, adapters: [] });
    expect((await refusal(resolveLocalModel(lora, {}, context))).message).toMatch(/is a LoRA adapter GGUF/);
    expect(await resolveLocalModel(lora, { base }, context)).toEqual({ name: "adapter-f16", base: weights, adapters: [{ name: "adapter-f16", path: lora }] });

    // Weights newer than the LoRA GGUF (trained again): resolving exports it again; an aborted run stops right there.
    const later = new Date(Date.now() + 5_000);
    fs.utimesSync(path.join(adapter, "adapter_model.safetensors"), later, later);
    const controller = new AbortController();
    controller.abort();
    const stopped = await resolveLocalModel(adapter, {}, context, { signal: controller.signal, onEvent: (event) => loaded.push(event) }).catch((caught: unknown) => caught);
    expect((stopped as AtsError).exitCode).toBe(ExitCode.interrupted);
    expect(loaded[0]).toEqual({ type: "info", message: "exporting the adapter as a LoRA GGUF (once)" });
  }, 180_000);
});
