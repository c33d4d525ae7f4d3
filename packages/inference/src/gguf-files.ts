import fs from "node:fs";
import { GgufInsights, InsufficientMemoryError, readGgufFileInfo, type GgufFileInfo, type Llama, type LlamaContext, type LlamaModel } from "node-llama-cpp";
import { InputError, interruptedError, RunError, type AtsError } from "@ats-lora/core";
import { errorsSince, logMark, markLeaked } from "./llama.js";

/** How the files of a LocalModelSpec become a llama.cpp model and context, with errors that name the files. */

const REEXPORT_HINT = "a copy cut short or a file that is not a GGUF fails this way: pull or export it again";

/** The file exists and is a file; `what` says what it was meant to be ("model", "LoRA adapter"). */
export function requireFile(file: string, what: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new InputError(`no such ${what} file: ${file}`, { hint: `check the path; \`ats-lora models list\` shows the models and adapters this workdir has` });
  }
  if (!stat.isFile()) throw new InputError(`${file} is not a file: a ${what} is one .gguf file`, { hint: "name the .gguf file itself" });
}

/**
 * Reads the GGUF header and checks the file holds all the tensor data it describes, before llama.cpp sees it:
 * node-llama-cpp 3.21.1 leaks a dispose guard on every model llama.cpp fails to load (see markLeaked).
 */
async function checkedHeader(llama: Llama, file: string, what: string): Promise<GgufFileInfo> {
  let info: GgufFileInfo;
  try {
    info = await readGgufFileInfo(file, { logWarnings: false, sourceType: "filesystem", ignoreKeys: ["tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"] });
  } catch (error) {
    throw new InputError(`${file} is not a valid GGUF ${what}: ${(error as Error).message}`, { cause: error, hint: REEXPORT_HINT });
  }
  const needed = (info.infoEndOffset ?? 0) + (await GgufInsights.from(info, llama)).modelSize;
  const size = fs.statSync(file).size;
  if (size < needed) {
    throw new InputError(`${file} is not a complete GGUF ${what}: it has ${size} bytes, its header describes ${needed}`, { hint: REEXPORT_HINT });
  }
  return info;
}

/** Checks an adapter file: a complete GGUF LoRA adapter. Returns its architecture. */
export async function adapterArchitecture(llama: Llama, file: string): Promise<string | undefined> {
  const general = (await checkedHeader(llama, file, "LoRA adapter")).metadata.general as { architecture?: string; type?: string };
  if (general.type !== "adapter") {
    throw new InputError(`${file} is a GGUF ${general.type ?? "file"}, not a LoRA adapter`, {
      hint: "a base model goes in as the base (--base); adapters are what `ats-lora export ADAPTER --format gguf-lora` writes",
    });
  }
  return general.architecture;
}

export async function loadBaseModel(llama: Llama, file: string, signal: AbortSignal | undefined): Promise<LlamaModel> {
  const general = (await checkedHeader(llama, file, "model")).metadata.general as { type?: string };
  if (general.type === "adapter") {
    throw new InputError(`${file} is a LoRA adapter, not a base model`, { hint: "pass the base model's .gguf as the base and this file as an adapter" });
  }
  const mark = logMark();
  try {
    return await llama.loadModel({ modelPath: file, loadSignal: signal });
  } catch (error) {
    if (signal?.aborted) throw interruptedError("loading the model");
    if (error instanceof InsufficientMemoryError) throw new RunError(`not enough memory to load ${file}: ${error.message}`, { cause: error, hint: "close other programs or use a smaller (more quantized) GGUF" });
    markLeaked(llama);
    throw new InputError(`${file} is not a valid or complete GGUF model: llama.cpp could not load it`, {
      cause: error,
      details: [(error as Error).message, ...errorsSince(mark)],
      hint: REEXPORT_HINT,
    });
  }
}

/** Models whose dispose() would never settle (a context llama.cpp failed to make holds their guard). */
const leakedModels = new WeakSet<LlamaModel>();

/** Disposes a model, without waiting on one whose guard leaked. */
export async function disposeModel(model: LlamaModel): Promise<void> {
  if (leakedModels.has(model)) void model.dispose().catch(() => undefined);
  else await model.dispose();
}

export interface ContextRequest {
  base: string;
  adapters: ReadonlyArray<{ path: string; scale?: number }>;
  contextSize: number;
  sequences: number;
  threads: number;
  signal: AbortSignal | undefined;
}

export async function createContext(llama: Llama, model: LlamaModel, request: ContextRequest): Promise<LlamaContext> {
  const mark = logMark();
  try {
    return await model.createContext({
      contextSize: request.contextSize,
      sequences: request.sequences,
      threads: request.threads,
      lora: request.adapters.length === 0 ? undefined : { adapters: request.adapters.map((adapter) => ({ filePath: adapter.path, scale: adapter.scale ?? 1 })) },
      createSignal: request.signal,
    });
  } catch (error) {
    if (request.signal?.aborted) throw interruptedError("loading the model");
    const message = (error as Error).message;
    // node-llama-cpp disposes a context whose adapters failed; one llama.cpp failed to make is dropped undisposed.
    if (request.adapters.length > 0 && /LoRA adapter/.test(message)) throw adapterError(message, request, errorsSince(mark), error);
    if (!(error instanceof InsufficientMemoryError)) {
      leakedModels.add(model);
      markLeaked(llama);
    }
    throw new RunError(`llama.cpp could not make a context of ${request.contextSize} tokens × ${request.sequences} sequences for ${request.base}: ${message}`, {
      cause: error,
      details: errorsSince(mark),
      hint: "lower the context size or the number of sequences",
    });
  }
}

function adapterError(message: string, request: ContextRequest, reasons: string[], cause: unknown): AtsError {
  // node-llama-cpp names the adapter that failed; llama.cpp's log says why.
  const named = /"(.*)"/.exec(message)?.[1];
  const adapter = named ?? request.adapters.map((candidate) => candidate.path).join(", ");
  if (reasons.some((reason) => /not within the file bounds|failed to load lora adapter file/.test(reason))) {
    return new InputError(`${adapter} is not a valid or complete GGUF LoRA adapter: llama.cpp could not read it`, { cause, details: reasons, hint: REEXPORT_HINT });
  }
  return new InputError(`the LoRA adapter ${adapter} does not fit the base model ${request.base}`, {
    cause,
    details: reasons,
    hint: "an adapter runs only on the base it was trained on: pass that base (--base), or export the adapter again from a model trained on this one",
  });
}
