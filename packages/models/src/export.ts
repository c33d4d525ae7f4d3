import fs from "node:fs";
import path from "node:path";
import { InputError, type BaseReference, type OperationContext, type OperationEvent, type OperationOptions } from "@ats-lora/core";
import { EXPORT_FORMATS, EXPORT_QUANTS, type ResultOf } from "@ats-lora/worker";
import { adapterBase } from "./adapter-base.js";
import { llamaCppSource } from "./llama-cpp.js";
import { withWorker } from "./worker-session.js";

export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export type ExportQuant = (typeof EXPORT_QUANTS)[number];

export interface ExportAdapterInput {
  /** The adapter folder train wrote (adapter_config.json, adapter_model.safetensors). */
  adapter: string;
  /** gguf-lora: a llama.cpp LoRA GGUF for its base; gguf: the merged model as one GGUF; hf-merged: the merged HF folder. */
  format: ExportFormat;
  /** The file (gguf-lora, gguf) or folder (hf-merged); default ADAPTER/adapter-QUANT.gguf, ADAPTER/merged-QUANT.gguf, ADAPTER/merged-hf. */
  out?: string;
  /** The GGUF tensor type (default f16); hf-merged ignores it. */
  quant?: ExportQuant;
  /** The base model; default the one the adapter's lineage (model.json) or adapter_config.json names. */
  base?: string;
}

/** The worker's export result, with the base model the adapter was checked against and the worker's log. */
export type ExportAdapterResult = ResultOf<"export"> & { base_model: BaseReference; llama_cpp: string; log_file: string };

export function defaultExportPath(adapter: string, format: ExportFormat, quant: ExportQuant): string {
  if (format === "gguf-lora") return path.join(adapter, `adapter-${quant}.gguf`);
  if (format === "gguf") return path.join(adapter, `merged-${quant}.gguf`);
  return path.join(adapter, "merged-hf");
}

/**
 * `export`: an adapter in the formats llama.cpp, node-llama-cpp and PEFT-less tools read, written by the worker
 * with the converters of the llama.cpp release node-llama-cpp ships. Checked first: the folder is a PEFT adapter,
 * its base exists, and it is the base the adapter was trained on.
 */
export async function exportAdapter(input: ExportAdapterInput, context: OperationContext, options: OperationOptions<OperationEvent> = {}): Promise<ExportAdapterResult> {
  if (!EXPORT_FORMATS.includes(input.format)) throw new InputError(`format ${input.format}: not one of ${EXPORT_FORMATS.join(", ")}`);
  const quant = input.quant ?? "f16";
  if (!EXPORT_QUANTS.includes(quant)) throw new InputError(`quant ${quant}: not one of ${EXPORT_QUANTS.join(", ")}`);
  const adapter = path.resolve(input.adapter);
  const base = adapterBase(adapter, input.base, context).reference;
  let output = path.resolve(input.out ?? defaultExportPath(adapter, input.format, quant));
  // A folder given for a GGUF export: the default file name inside it.
  if (input.format !== "hf-merged" && fs.existsSync(output) && fs.statSync(output).isDirectory()) output = path.join(output, path.basename(defaultExportPath(adapter, input.format, quant)));
  if (input.format === "hf-merged" && fs.existsSync(output) && fs.statSync(output).isFile()) {
    throw new InputError(`--out ${input.out}: a file; hf-merged writes a folder`, { hint: "give a folder path, e.g. models/merged" });
  }
  fs.mkdirSync(path.dirname(output), { recursive: true });
  const llamaCpp = await llamaCppSource({ signal: options.signal, onEvent: options.onEvent });
  options.onEvent?.({ type: "stage", message: `exporting ${adapter} as ${input.format}${input.format === "hf-merged" ? "" : ` (${quant})`}` });
  const logFile = path.join(adapter, "export.log");
  const result = await withWorker(`exporting ${input.adapter}`, logFile, options, (client) =>
    client.request("export", { adapter, base: base.path, format: input.format, output, quant, llama_cpp: llamaCpp.path }),
  );
  return { ...result, base_model: base, llama_cpp: llamaCpp.path, log_file: logFile };
}
