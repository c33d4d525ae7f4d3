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
