import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { buildPrompt, parsePrompt } from "./prompt.js";

const prompts = loadConfig({ env: {} }).prompts;

describe("buildPrompt", () => {
  it("renders the task's instruction, the context section and the query", () => {
    const prompt = buildPrompt({ task: "match_score", query: "Score this match.", context: ["Job: SRE", "Resume: {\"a\": 1}"] }, prompts);
    expect(prompt).toBe(
      `### Instruction:\n${prompts.instructions.match_score}\n\n### Context:\nJob: SRE\n\n---\n\nResume: {"a": 1}\n\n### Input:\nScore this match.\n\n### Response:\n`,
    );
  });

  it("drops the context section when there is no context, and falls back to the default instruction", () => {
    expect(buildPrompt({ task: "my_task", query: "Hi", context: ["  "] }, prompts)).toBe(
      `### Instruction:\n${prompts.instructions.default}\n\n### Input:\nHi\n\n### Response:\n`,
    );
  });

  it("appends retrieved passages after the interaction's context", () => {
    const prompt = buildPrompt({ task: "resume_parse", query: "q", context: ["resume"], retrieved: ["schema doc"] }, prompts);
    expect(prompt).toContain("resume\n\n---\n\nschema doc");
  });

  it("follows a configured template", () => {
    const custom = { ...prompts, template: "<s>[INST] {instruction}\n{context}{query} [/INST]", context_section: "{items}\n" };
    expect(buildPrompt({ task: "x", query: "q", context: ["c"] }, custom)).toBe(`<s>[INST] ${prompts.instructions.default}\nc\nq [/INST]`);
  });
});

describe("parsePrompt", () => {
  it("takes a built prompt apart into instruction, context passages and query", () => {
    const input = { task: "match_score", query: "Score this match.", context: ["Resume: Go, {\"a\": 1}", "Job: SRE"], retrieved: ["rubric"] };
    expect(parsePrompt(buildPrompt(input, prompts), prompts)).toEqual({
      instruction: prompts.instructions.match_score,
      context: ["Resume: Go, {\"a\": 1}", "Job: SRE", "rubric"],
      query: "Score this match.",
    });
  });

  it("reads a prompt without context, a custom template, and refuses a prompt built otherwise", () => {
    expect(parsePrompt(buildPrompt({ task: "x", query: "Hi\nthere" }, prompts), prompts)).toEqual({ instruction: prompts.instructions.default, context: [], query: "Hi\nthere" });
    const custom = { ...prompts, template: "<s>[INST] {instruction}\n{context}{query} [/INST]", context_section: "{items}\n" };
    expect(parsePrompt(buildPrompt({ task: "x", query: "q", context: ["c"] }, custom), custom)?.context).toEqual(["c"]);
    expect(parsePrompt("Tell me a joke", prompts)).toBeUndefined();
  });
});
