import fs from "node:fs";
import path from "node:path";
import {
  checkAdapterBase,
  fingerprintBase,
  InputError,
  readModelCard,
  type OperationContext,
  type OperationEvent,
  type OperationOptions,
} from "@ats-lora/core";
import { adapterBase } from "./adapter-base.js";
import { catalogueEntry } from "./catalogue.js";
import { defaultExportPath, exportAdapter } from "./export.js";

/** What node-llama-cpp loads: one GGUF model and the LoRA GGUFs applied to it. */
export interface LocalModel {
  name: string;
  /** The base .gguf file. */
  base: string;
  adapters: Array<{ name: string; path: string }>;
}

const LIST_HINT = "ats-lora models list shows the models in models/; a .gguf file or a model folder works too";

/**
 * What `chat`, `eval --engine llama` and `serve` load for a model argument: a .gguf file (a LoRA GGUF needs
 * --base), a base model folder, a folder holding one .gguf, a name under models/, or an adapter folder, whose
 * LoRA GGUF (ADAPTER/adapter-f16.gguf) is exported once, and again when the adapter's weights are newer. An
 * adapter is checked against its base (the lineage's fingerprint).
 */
export async function resolveLocalModel(
  model: string,
  input: { base?: string },
  context: OperationContext,
  options: OperationOptions<OperationEvent> = {},
): Promise<LocalModel> {
  const target = locate(model, context);
  if (fs.statSync(target).isFile()) return resolveFile(model, target, input.base);
  const card = readModelCard(target);
  if (card?.kind === "adapter" || fs.existsSync(path.join(target, "adapter_config.json"))) return resolveAdapter(model, target, input.base, context, options);
  refuseBase(model, input.base);
  if (card?.kind === "base") {
    if (card.format !== "gguf") throw notGguf(model);
    return { name: card.name, base: fingerprintBase(target).weights!, adapters: [] };
  }
  if (fs.existsSync(path.join(target, "config.json"))) throw notGguf(model);
  const ggufs = fs.readdirSync(target).filter((file) => file.endsWith(".gguf"));
  if (ggufs.length === 1) return resolveFile(model, path.join(target, ggufs[0]!), undefined, path.basename(target));
  if (ggufs.length > 1) throw new InputError(`${model} holds ${ggufs.length} GGUF files; give one of them`, { details: ggufs.map((file) => path.join(model, file)) });
  throw new InputError(`no such model: ${model} (no model.json, adapter_config.json or .gguf file in it)`, { hint: LIST_HINT });
}

/** The argument as a path, or as a name under models/. */
function locate(model: string, context: OperationContext): string {
  if (fs.existsSync(model)) return path.resolve(model);
  const named = path.join(context.paths.models, model);
  if (!model.includes("/") && fs.existsSync(named)) return named;
  if (catalogueEntry(model)) throw new InputError(`${model} is not pulled yet`, { hint: `ats-lora models pull ${model}` });
  throw new InputError(`no such model: ${model}`, { hint: LIST_HINT });
}

function refuseBase(model: string, base: string | undefined): void {
  if (base !== undefined) throw new InputError(`--base ${base}: ${model} is a whole model, not an adapter`, { hint: "--base goes with an adapter folder or a LoRA GGUF" });
}

function notGguf(model: string): InputError {
  return new InputError(`${model} is an HF model folder; node-llama-cpp runs GGUF files`, {
    hint: "pull a GGUF model (ats-lora models pull smollm2-135m-instruct), or convert it with llama.cpp's convert_hf_to_gguf.py",
  });
}

/** general.type of a GGUF: "model", or "adapter" for a LoRA GGUF. */
async function ggufType(file: string, shown: string): Promise<string | undefined> {
  const { readGgufFileInfo } = await import("node-llama-cpp");
  try {
    const info = await readGgufFileInfo(file, { readTensorInfo: false, logWarnings: false, ignoreKeys: ["tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"] });
    // node-llama-cpp's metadata type does not declare general.type, which llama.cpp's LoRA converter writes.
    const general = info.metadata.general as { type?: unknown } | undefined;
    return typeof general?.type === "string" ? general.type : undefined;
  } catch (error) {
    throw new InputError(`${shown}: not a readable GGUF file (${(error as Error).message})`, { hint: "pull or export it again" });
  }
}

async function resolveFile(model: string, file: string, base: string | undefined, name = path.basename(file, ".gguf")): Promise<LocalModel> {
  if (!file.endsWith(".gguf")) throw new InputError(`${model} is a file but not a .gguf model`, { hint: LIST_HINT });
  if ((await ggufType(file, model)) !== "adapter") {
    refuseBase(model, base);
    return { name, base: file, adapters: [] };
  }
  if (base === undefined) throw new InputError(`${model} is a LoRA adapter GGUF; it runs on its base model`, { hint: "give the base: --base BASE (a .gguf file or a base model folder)" });
  const reference = fingerprintBase(base);
  if (reference.format !== "gguf") throw new InputError(`--base ${base}: not a GGUF model (a .gguf file or a folder holding one)`, { hint: LIST_HINT });
  // A LoRA GGUF exported into its adapter folder carries that folder's lineage.
  checkAdapterBase(path.dirname(file), reference);
  if ((await ggufType(reference.weights!, base)) === "adapter") throw new InputError(`--base ${base}: a LoRA adapter GGUF, not a base model`);
  return { name, base: reference.weights!, adapters: [{ name, path: file }] };
}

async function resolveAdapter(
  model: string,
  dir: string,
  base: string | undefined,
  context: OperationContext,
  options: OperationOptions<OperationEvent>,
): Promise<LocalModel> {
  const { reference } = adapterBase(dir, base, context);
  if (reference.format !== "gguf") {
    throw new InputError(`the adapter ${model} was trained on the ${reference.format === "hub" ? "hub model" : "HF folder"} ${reference.path}, which node-llama-cpp cannot load`, {
      hint: `export it as one GGUF: ats-lora export ${model} --format gguf`,
    });
  }
  const lora = defaultExportPath(dir, "gguf-lora", "f16");
  const weights = ["adapter_model.safetensors", "adapter_model.bin"].map((file) => path.join(dir, file)).find((file) => fs.existsSync(file));
  const stale = !fs.existsSync(lora) || (weights !== undefined && fs.statSync(weights).mtimeMs > fs.statSync(lora).mtimeMs);
  if (stale) {
    options.onEvent?.({ type: "info", message: "exporting the adapter as a LoRA GGUF (once)" });
    await exportAdapter({ adapter: dir, format: "gguf-lora", quant: "f16", base }, context, options);
  }
  const name = path.basename(dir);
  return { name, base: reference.weights!, adapters: [{ name, path: lora }] };
}

/**
 * Whether node-llama-cpp can run this model argument as it stands: a .gguf file, a GGUF base folder, or an adapter
 * trained on a GGUF base (or given one with --base). Decides `eval --engine auto`; reads only model.json cards.
 */
export function runsOnLlamaCpp(model: string, base?: string | null): boolean {
  const isGguf = (target: string): boolean => {
    if (!fs.existsSync(target)) return false;
    if (fs.statSync(target).isFile()) return target.endsWith(".gguf");
    const card = readModelCard(target);
    if (card?.kind === "base") return card.format === "gguf";
    if (card?.kind === "adapter") return card.base.format === "gguf";
    return !fs.existsSync(path.join(target, "config.json")) && fs.readdirSync(target).some((file) => file.endsWith(".gguf"));
  };
  return base ? isGguf(base) : isGguf(model);
}
