import type { ChatMessage, OperationContext, OperationOptions } from "@ats-lora/core";
import { LocalModel, type LocalModelSpec, type StopReason } from "./local-model.js";

export interface ChatInput {
  model: LocalModelSpec;
  messages: ChatMessage[];
  maxTokens: number;
  temperature: number;
  seed?: number;
  /** Decoding constrained to this JSON Schema (readJsonSchemaArgument's schema). */
  jsonSchema?: Record<string, unknown>;
}

/** What `ats-lora chat --json` prints. */
export interface ChatAnswer {
  model: string;
  base: string;
  adapters: Array<{ name: string; path: string }>;
  text: string;
  tokens: number;
  prompt_tokens: number;
  ended_with_eos: boolean;
  stopped_by: StopReason;
  seconds: number;
  tokens_per_second: number;
  device: string;
}

/** One answer to one conversation: loads the model, generates, disposes the model (the shared Llama stays). */
export async function chatOnce(input: ChatInput, _context: OperationContext, options: OperationOptions = {}): Promise<ChatAnswer> {
  options.onEvent?.({ type: "stage", message: `loading ${describeSpec(input.model)}` });
  const model = await LocalModel.load(input.model, { signal: options.signal });
  try {
    options.onEvent?.({ type: "stage", message: `generating on ${model.device}` });
    const [generation] = await model.generate([input.messages], {
      maxTokens: input.maxTokens,
      temperature: input.temperature,
      seed: input.seed,
      jsonSchema: input.jsonSchema,
      signal: options.signal,
    });
    const result = generation!;
    return {
      model: input.model.name,
      base: input.model.base,
      adapters: input.model.adapters.map((adapter) => ({ name: adapter.name, path: adapter.path })),
      text: result.text,
      tokens: result.tokens,
      prompt_tokens: result.promptTokens,
      ended_with_eos: result.endedWithEos,
      stopped_by: result.stoppedBy,
      seconds: round(result.seconds, 3),
      tokens_per_second: round(result.tokensPerSecond, 1),
      device: model.device,
    };
  } finally {
    await model.dispose();
  }
}

/** Why an answer ended, for the note after it. */
export function stopNote(stoppedBy: StopReason): string {
  if (stoppedBy === "eos") return "ended at EOS";
  if (stoppedBy === "stop") return "ended at a stop text";
  if (stoppedBy === "json_complete") return "ended where the JSON is complete";
  return "cut at --max-tokens";
}

/** "NAME (BASE + ADAPTER, …)" for notes. */
export function describeSpec(spec: LocalModelSpec): string {
  const parts = [spec.base, ...spec.adapters.map((adapter) => adapter.path)];
  return `${spec.name} (${parts.join(" + ")})`;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
