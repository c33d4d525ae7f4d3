import path from "node:path";
import { InputError, type OperationContext } from "@ats-lora/core";
import type { LocalModelSpec } from "@ats-lora/inference";
import { listModels, resolveLocalModel } from "@ats-lora/models";

export interface ServedModelsInput {
  /** The base: a name in models/, a folder or a .gguf; absent: serve.model, else the one pulled base. */
  model?: string;
  /** NAME=PATH: an adapter (its folder with a LoRA GGUF export, or the .gguf) served as NAME on the base. */
  adapters: readonly string[];
}

/** The GGUF files `serve` loads for --model and each --adapter NAME=PATH. */
export async function resolveServedModels(input: ServedModelsInput, context: OperationContext): Promise<{ base: LocalModelSpec; adapters: LocalModelSpec[] }> {
  const model = input.model ?? context.config.serve.model ?? onlyPulledBase(context);
  const base = await resolveLocalModel(model, {}, context);
  if (base.adapters.length > 0) {
    throw new InputError(`--model ${model} is an adapter; serve takes the base as --model and each adapter as --adapter NAME=PATH`, {
      hint: `ats-lora serve --model ${path.basename(base.base)} --adapter ${base.name}=${model}`,
    });
  }
  const adapters = await Promise.all(
    input.adapters.map(async (argument) => {
      const equals = argument.indexOf("=");
      const name = equals === -1 ? path.basename(argument).replace(/\.gguf$/, "") : argument.slice(0, equals);
      const where = equals === -1 ? argument : argument.slice(equals + 1);
      if (name.trim() === "" || where.trim() === "") throw new InputError(`--adapter ${argument}: give it as NAME=PATH`, { hint: "--adapter resume-v2=models/resume-v2" });
      return { ...(await resolveAdapter(where, base.base, context, `--adapter ${argument}`)), name };
    }),
  );
  return { base, adapters };
}

function onlyPulledBase(context: OperationContext): string {
  const bases = listModels(context).models.filter((listing) => listing.kind === "base" && listing.format === "gguf");
  if (bases.length === 1) return bases[0]!.path;
  if (bases.length === 0) throw new InputError(`no base model in ${context.paths.models} to serve`, { hint: "pull one (ats-lora models pull smollm2-135m-instruct), or pass --model FILE.gguf" });
  throw new InputError(`${bases.length} base models in ${context.paths.models}: say which to serve with --model`, { details: bases.map((listing) => listing.name) });
}

/** An adapter folder (with its LoRA GGUF export) or a LoRA .gguf, as a spec on the served base file. */
export async function resolveAdapter(where: string, baseFile: string, context: OperationContext, label: string): Promise<LocalModelSpec> {
  const spec = await resolveLocalModel(where, { base: baseFile }, context);
  if (spec.adapters.length === 0) throw new InputError(`${label}: ${where} is a whole model, not a LoRA adapter`, { hint: "serve one base (--model); adapters are what `ats-lora export ADAPTER --format gguf-lora` writes" });
  return spec;
}
