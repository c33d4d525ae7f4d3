import type { AtsConfig } from "./config.js";

/** What a prompt is built from: the interaction's task, its context passages and the query. */
export interface PromptInput {
  task: string;
  query: string;
  context?: readonly string[];
  /** Passages retrieved from the knowledge base, placed after the interaction's own context. */
  retrieved?: readonly string[];
}

export type PromptConfig = AtsConfig["prompts"];

/**
 * The one prompt builder build-db, train and eval share, so a model is trained and evaluated on exactly the
 * prompts it will see: the task's instruction, the context section (omitted when empty) and the query,
 * rendered through `prompts.template` of the configuration.
 */
export function buildPrompt(input: PromptInput, prompts: PromptConfig): string {
  const instruction = prompts.instructions[input.task] ?? prompts.instructions.default!;
  const passages = [...(input.context ?? []), ...(input.retrieved ?? [])].filter((passage) => passage.trim() !== "");
  const context = passages.length === 0 ? "" : fill(prompts.context_section, { items: passages.join(prompts.context_separator) });
  return fill(prompts.template, { instruction, context, query: input.query });
}

/** Replaces {name} placeholders in one pass, so braces inside the values (JSON, code) are left alone. */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (match, name: string) => values[name] ?? match);
}

/** A built prompt taken apart again: what evaluation needs (the resume, the job, the query) from a test row. */
export interface ParsedPrompt {
  instruction: string;
  /** The context passages in order: the interaction's own first, then any retrieved ones. */
  context: string[];
  query: string;
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The inverse of `buildPrompt` under the same configuration; undefined when the prompt was not built with
 * this template. A passage that itself contains the separator comes back split in two (the separator is the
 * only boundary a rendered prompt keeps).
 */
export function parsePrompt(prompt: string, prompts: PromptConfig): ParsedPrompt | undefined {
  const [sectionHead, sectionTail] = prompts.context_section.split("{items}") as [string, string];
  // Placeholders become lazy groups; {context} is optional because an empty context renders as nothing.
  let pattern = "";
  const order: string[] = [];
  for (const part of prompts.template.split(/(\{instruction\}|\{context\}|\{query\})/)) {
    if (part === "{instruction}" || part === "{query}") {
      pattern += "([\\s\\S]*?)";
      order.push(part.slice(1, -1));
    } else if (part === "{context}") {
      pattern += `(?:${escapeRegExp(sectionHead)}([\\s\\S]*?)${escapeRegExp(sectionTail)})?`;
      order.push("context");
    } else {
      pattern += escapeRegExp(part);
    }
  }
  const match = new RegExp(`^${pattern}$`).exec(prompt);
  if (!match) return undefined;
  const groups = Object.fromEntries(order.map((name, index) => [name, match[index + 1]]));
  const items = groups.context;
  return {
    instruction: groups.instruction ?? "",
    context: items === undefined || items === "" ? [] : prompts.context_separator === "" ? [items] : items.split(prompts.context_separator),
    query: groups.query ?? "",
  };
}

/** A chat message as chat templates take them. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/**
 * The messages a built prompt is sent as: one user turn, which the model's own chat template frames. Training and
 * the worker's generation (format_prompt in the worker) send exactly this; so do `chat`, `eval --engine llama`
 * and `serve` through the inference room.
 */
export function promptMessages(prompt: string): ChatMessage[] {
  return [{ role: "user", content: prompt }];
}
