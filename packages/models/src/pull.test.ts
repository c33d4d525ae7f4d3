import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ExitCode, InputError, loadConfig, readModelCard, sha256File, workdirPaths, writeModelCard, type AtsError, type OperationContext, type OperationEvent } from "@ats-lora/core";
import { watchTerminal, type TerminalWatch } from "@ats-lora/core/testing";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { CATALOGUE, catalogueEntry } from "./catalogue.js";
import { listModels } from "./list.js";
import { pullModel } from "./pull.js";

/** models pull and models list on a temporary workdir, through the real worker: not a byte printed. */

const SMOLLM = catalogueEntry("smollm2-135m-instruct")!;
const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-models-pull-"));
const context: OperationContext = { paths: workdirPaths(workdir), config: loadConfig({ env: {} }) };
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

describe("models list and pull", () => {
  it("lists nothing when models/ does not exist", () => {
    expect(listModels(context)).toEqual({ models_dir: context.paths.models, production: null, staging: null, models: [] });
  });

  it("refuses a name that is neither a catalogue model, a file nor a hub id, listing the catalogue", async () => {
    const error = await refusal(pullModel({ name: "no-such-model" }, context));
    expect(error.message).toMatch(/unknown model no-such-model/);
    expect(error.details.join("\n")).toContain("smollm2-135m-instruct");
    expect((await refusal(pullModel({ name: "missing.gguf" }, context))).message).toMatch(/no such file: missing\.gguf/);
    expect((await refusal(pullModel({ name: "smollm2-135m-instruct", as: "../elsewhere" }, context))).message).toMatch(/not a folder name/);
    expect((await refusal(pullModel({ name: "smollm2-135m-instruct", file: "x.gguf" }, context))).message).toMatch(/only for a hub repository/);
  });

  it("pulls the catalogue model once: sha256 checked, model.json written; a second pull fetches nothing", async () => {
    const events: OperationEvent[] = [];
    const pulled = await pullModel({ name: SMOLLM.name }, context, { onEvent: (event) => events.push(event) });
    const folder = path.join(context.paths.models, SMOLLM.name);
    expect(pulled.path).toBe(folder);
    expect(pulled.weights).toBe(path.join(folder, SMOLLM.file));
    expect(["downloaded", "from-cache"]).toContain(pulled.status);
    expect(fs.statSync(pulled.weights).size).toBe(SMOLLM.size_bytes);
    expect(sha256File(pulled.weights)).toBe(SMOLLM.sha256);
    expect(fs.readFileSync(pulled.weights).subarray(0, 4).toString("latin1")).toBe("GGUF");
    const card = readModelCard(folder);
    expect(card).toEqual(pulled.card);
    expect(card).toMatchObject({ kind: "base", name: SMOLLM.name, format: "gguf", file: SMOLLM.file, sha256: SMOLLM.sha256, size_bytes: SMOLLM.size_bytes, source: SMOLLM.source, license: "Apache-2.0" });
    expect(events.filter((event) => event.type === "progress").every((event) => event.type === "progress" && event.done <= event.total)).toBe(true);

    const before = fs.statSync(pulled.weights);
    const again = await pullModel({ name: SMOLLM.name }, context);
    expect(again.status).toBe("already-present");
    expect(again.log_file).toBeNull();
    expect(again.card).toEqual(pulled.card);
    const after = fs.statSync(pulled.weights);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  }, 180_000);

  it("stops a pull on abort: the worker cancels, nothing half-written is left", async () => {
    const controller = new AbortController();
    const onEvent = (event: OperationEvent): void => {
      if (event.type === "progress") controller.abort();
    };
    const error = await pullModel({ name: SMOLLM.name, as: "interrupted" }, context, { signal: controller.signal, onEvent }).catch((caught: unknown) => caught);
    expect(controller.signal.aborted).toBe(true);
    expect((error as AtsError).exitCode).toBe(ExitCode.interrupted);
    expect(fs.readdirSync(path.join(context.paths.models, "interrupted"))).toEqual(["pull.log"]);
    fs.rmSync(path.join(context.paths.models, "interrupted"), { recursive: true });
  }, 60_000);

  it("pulls a local .gguf file (hard-linked on the same file system) with a file source", async () => {
    const source = path.join(context.paths.models, SMOLLM.name, SMOLLM.file);
    const local = await pullModel({ name: source, as: "local-smollm" }, context);
    expect(local.status).toBe("linked");
    expect(local.weights).toBe(path.join(context.paths.models, "local-smollm", SMOLLM.file));
    expect(fs.statSync(local.weights).ino).toBe(fs.statSync(source).ino);
    expect(local.card).toMatchObject({ kind: "base", name: "local-smollm", format: "gguf", sha256: SMOLLM.sha256, source: { kind: "file", path: source }, license: null });
    expect((await pullModel({ name: source, as: "local-smollm" }, context)).status).toBe("already-present");

    const notGguf = path.join(workdir, "notes.txt");
    fs.writeFileSync(notGguf, "text\n");
    expect((await refusal(pullModel({ name: notGguf }, context))).message).toMatch(/not a \.gguf file/);
    // Another model's folder is never overwritten.
    const other = path.join(workdir, "other.gguf");
    fs.writeFileSync(other, "GGUF another model");
    expect((await refusal(pullModel({ name: other, as: "local-smollm" }, context))).message).toMatch(/holds another base model/);
  });

  it("lists bases with their format and size, adapters with their base and exports", () => {
    const adapter = path.join(context.paths.models, "ats_lora_v1");
    fs.mkdirSync(adapter, { recursive: true });
    fs.writeFileSync(path.join(adapter, "adapter_config.json"), JSON.stringify({ base_model_name_or_path: "/elsewhere/hf", peft_type: "LORA" }));
    fs.writeFileSync(path.join(adapter, "adapter_model.safetensors"), Buffer.alloc(1234));
    fs.writeFileSync(path.join(adapter, "adapter-f16.gguf"), "GGUF");
    const base = path.join(context.paths.models, SMOLLM.name);
    writeModelCard(adapter, { kind: "adapter", base: { path: base, format: "gguf", weights: path.join(base, SMOLLM.file), sha256: SMOLLM.sha256 }, training_format: "sft", created_at: "2025-01-01T00:00:00.000Z" });
    fs.mkdirSync(path.join(context.paths.models, "scratch"));
    fs.writeFileSync(path.join(context.paths.models, ".gitkeep"), "");

    const { models } = listModels(context);
    expect(models.map((model) => model.name)).toEqual(["ats_lora_v1", "local-smollm", SMOLLM.name]);
    expect(models[0]).toEqual({
      name: "ats_lora_v1",
      path: adapter,
      kind: "adapter",
      format: "peft",
      size_bytes: 1234,
      base,
      exports: ["adapter-f16.gguf"],
      created_at: "2025-01-01T00:00:00.000Z",
      // A card written before lineage was recorded: no lineage, and no stage until promoted.
      stage: null,
      lineage: null,
    });
    expect(models[2]).toMatchObject({ kind: "base", format: "gguf", size_bytes: SMOLLM.size_bytes, base: null, exports: [] });
    // Without lineage, the base is the one PEFT recorded.
    fs.rmSync(path.join(adapter, "model.json"));
    expect(listModels(context).models[0]!.base).toBe("/elsewhere/hf");
  });

  it("has a catalogue whose entries are complete", () => {
    for (const entry of CATALOGUE) {
      expect(entry.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(entry.name).toMatch(/^[a-z0-9][a-z0-9.-]*$/);
      expect(entry.source.kind === "pypi" ? entry.source.member : entry.file).toBe(entry.file);
    }
  });
});
