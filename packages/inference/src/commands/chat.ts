import { Command, InvalidArgumentError } from "commander";
import {
  createRunContext,
  ExitCode,
  InputError,
  nonNegativeInt,
  positiveInt,
  renderEvents,
  TASK_ANSWER_SCHEMAS,
  withCtrlC,
  type ChatMessage,
  type GlobalOptions,
  type RunContext,
} from "@ats-lora/core";
import type { LocalModelSpec } from "../local-model.js";

/** What the cli wires in: a model argument (a base, an adapter, a name) and --base become the files to load. */
export interface ChatPorts {
  resolveModel(model: string, options: { base?: string }, context: RunContext): Promise<LocalModelSpec>;
}

interface ChatFlags {
  model: string;
  base?: string;
  prompt?: string;
  system?: string;
  maxTokens: number;
  temperature: number;
  seed?: number;
  jsonSchema?: string;
}

function temperature(value: string): number {
  const number = Number(value);
  if (value.trim() === "" || !Number.isFinite(number) || number < 0) throw new InvalidArgumentError("must be 0 (greedy) or more");
  return number;
}

/** `ats-lora chat`: talk to a GGUF model (and its LoRA adapters) on this machine through node-llama-cpp. */
export function chatCommand(ports: ChatPorts): Command {
  return new Command("chat")
    .description("chat with a local GGUF model and its LoRA adapters (node-llama-cpp): one answer, or a conversation in the terminal")
    .requiredOption("--model <model>", "a base model or an adapter: a name in models/, a folder with model.json, or a .gguf file")
    .option("--base <gguf>", "the base model the adapter runs on (default: the one the adapter's model.json names)")
    .option("--prompt <text>", "answer this once and exit (also when stdin is not a terminal: all of stdin is the prompt)")
    .option("--system <text>", "a system message first (without one the model's chat template may add its own)")
    .option("--max-tokens <n>", "the most tokens an answer may have", positiveInt, 512)
    .option("--temperature <t>", "0 answers greedily (the same answer each time); above 0 samples", temperature, 0)
    .option("--seed <n>", "the sampling seed, for answers that repeat when --temperature is above 0", nonNegativeInt)
    .option("--json-schema <task-or-file>", `answer only JSON of this schema, decoding constrained by a grammar: a task (${Object.keys(TASK_ANSWER_SCHEMAS).join(", ")}) or a .json JSON Schema file`)
    .addHelpText(
      "after",
      `
In a conversation: /reset clears it, /exit or Ctrl-D leaves, Ctrl-C stops the answer being written (another
Ctrl-C, or one at the prompt, exits with 130). Answers go to stdout, tokens/s to stderr (not with --quiet).
ATS_LORA_LLAMA_GPU=false keeps llama.cpp on the CPU even where it finds CUDA, Metal or Vulkan;
ATS_LORA_LLAMA_THREADS=N sets its CPU threads (default one per core; fewer when other work shares the CPU).
--json-schema keeps every answer to the schema's shape and bounds; constraints a grammar cannot hold (pattern,
a number's minimum and maximum) are named on stderr, to check afterwards.

Examples:
  $ ats-lora chat --model models/ats_lora_v3
  $ ats-lora chat --model base.gguf --prompt "Summarise this resume: …" --json
  $ echo "Name three interview questions for an SRE" | ats-lora chat --model models/ats_lora_v3 --max-tokens 200
  $ ats-lora chat --model models/ats_lora_v3 --json-schema resume_parse --max-tokens 700 < resume-prompt.txt`,
    )
    .action(async (flags: ChatFlags, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const prompt = flags.prompt ?? (process.stdin.isTTY ? undefined : await readAll(process.stdin));
      if (prompt === undefined && context.reporter.json) {
        throw new InputError("chat --json answers one prompt: pass --prompt TEXT or the prompt on stdin", { hint: "a conversation in the terminal is without --json" });
      }
      if (prompt !== undefined && prompt.trim() === "") throw new InputError("the prompt is empty", { hint: "pass --prompt TEXT, or text on stdin" });
      const { readJsonSchemaArgument } = await import("../json-schema-grammar.js");
      const jsonSchema = flags.jsonSchema === undefined ? undefined : readJsonSchemaArgument(flags.jsonSchema);
      if (jsonSchema !== undefined && jsonSchema.unenforced.length > 0) {
        context.reporter.info(`(${jsonSchema.source}: the grammar does not hold ${jsonSchema.unenforced.join("; ")}; check the answer against the schema)`);
      }
      const spec = await ports.resolveModel(flags.model, { base: flags.base }, context);
      const settings = { maxTokens: flags.maxTokens, temperature: flags.temperature, seed: flags.seed, jsonSchema: jsonSchema?.schema };
      const system: ChatMessage[] = flags.system === undefined ? [] : [{ role: "system", content: flags.system }];
      const { disposeLlama } = await import("../llama.js");
      try {
        if (prompt === undefined) {
          const { runChatSession } = await import("./chat-session.js");
          const ended = await runChatSession(spec, system, settings, context);
          if (ended === "interrupted") process.exitCode = ExitCode.interrupted;
          return;
        }
        const { chatOnce, stopNote } = await import("../chat.js");
        const events = renderEvents(context);
        const input = { model: spec, messages: [...system, { role: "user" as const, content: prompt }], ...settings };
        const answer = await withCtrlC((signal) => chatOnce(input, context, { signal, onEvent: events.onEvent })).finally(() => events.done());
        context.reporter.info(`(${answer.tokens} tokens, ${answer.tokens_per_second} tokens/s on ${answer.device}; ${stopNote(answer.stopped_by)})`);
        context.reporter.result(answer, () => answer.text);
      } finally {
        await disposeLlama();
      }
    });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString("utf8").trimEnd();
}
