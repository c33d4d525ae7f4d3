import { Command, Option } from "commander";
import { createRunContext, renderEvents, withCtrlC, type GlobalOptions } from "@ats-lora/core";
import { EXPORT_FORMATS, EXPORT_QUANTS } from "@ats-lora/worker";
import { formatBytes, shortPath } from "./render.js";

type ExportFlags = { format: (typeof EXPORT_FORMATS)[number]; out?: string; quant: (typeof EXPORT_QUANTS)[number]; base?: string };

/** `ats-lora export`: an adapter as a LoRA GGUF, a merged GGUF or a merged HF folder. */
export function exportCommand(): Command {
  return new Command("export")
    .description("export an adapter with llama.cpp's converters: a LoRA GGUF for its base, the merged model as one GGUF, or a merged HF folder")
    .argument("<adapter>", "the adapter folder train wrote (models/ats_lora_vN)")
    .addOption(new Option("--format <format>", "gguf-lora (node-llama-cpp, llama.cpp --lora) | gguf (one merged model) | hf-merged (transformers)").choices(EXPORT_FORMATS).makeOptionMandatory())
    .option("--out <path>", "the file (gguf-lora, gguf) or folder (hf-merged); default: ADAPTER/adapter-QUANT.gguf, ADAPTER/merged-QUANT.gguf, ADAPTER/merged-hf")
    .addOption(new Option("--quant <type>", "GGUF tensor type (hf-merged ignores it)").choices(EXPORT_QUANTS).default("f16"))
    .option("--base <path>", "the base model (default: the one the adapter's model.json or adapter_config.json names)")
    .addHelpText(
      "after",
      `
The adapter is checked against its base first: another base than the one it was trained on is refused (exit 2).

Examples:
  $ ats-lora export models/ats_lora_v1 --format gguf-lora
  $ ats-lora export models/ats_lora_v1 --format gguf --quant q8_0 --out dist/ats-v1.gguf
  $ ats-lora export models/ats_lora_v1 --format hf-merged --json`,
    )
    .action(async (adapter: string, flags: ExportFlags, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const { exportAdapter } = await import("../export.js");
      const events = renderEvents(context);
      const result = await withCtrlC(
        (signal) => exportAdapter({ adapter, format: flags.format, out: flags.out, quant: flags.quant, base: flags.base }, context, { signal, onEvent: events.onEvent }),
        () => context.reporter.info("stopping the export (Ctrl-C again to quit at once)"),
      ).finally(() => events.done());
      context.reporter.result(result, () => {
        const lines = [`wrote ${shortPath(result.output)} (${formatBytes(result.size_bytes)}, ${result.format}${result.architecture ? `, ${result.architecture}` : ""}) in ${result.seconds.toFixed(1)} s`];
        if (result.format === "gguf-lora") {
          lines.push(`a LoRA for ${shortPath(result.base_model.weights ?? result.base_model.path)}: it runs with that base's chat template and EOS${result.lora_alpha === null ? "" : ` (alpha ${result.lora_alpha})`}`);
        } else {
          lines.push(`chat template: ${result.chat_template ? "included" : "not included"}; EOS token id: ${result.eos_token_id ?? "not set"}`);
        }
        return lines.join("\n");
      });
    });
}
