import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as pty from "node-pty";
import { InputError } from "@ats-lora/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { disposeLlama } from "./llama.js";
import { LocalModel } from "./local-model.js";
import { chatProgram, tempDir, testModelFile } from "./test-support.js";

// Test files run side by side on few cores, where llama.cpp's spinning threads collapse when oversubscribed.
const BASE = await testModelFile();
const HERE = path.dirname(fileURLToPath(import.meta.url));
const TSX = path.resolve(HERE, "../../../node_modules/.bin/tsx");

/** `ats-lora chat …` in this process; what it printed. */
async function chat(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => (stdout.push(String(chunk)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => (stderr.push(String(chunk)), true));
  try {
    await chatProgram().parseAsync(args, { from: "user" });
  } finally {
    vi.restoreAllMocks();
  }
  return { stdout: stdout.join(""), stderr: stderr.join("") };
}

/** A script running the same program in a child process (stdin and terminals of its own). */
function programScript(): string {
  const script = path.join(tempDir(), "ats-lora.mts");
  fs.writeFileSync(script, `import { chatProgram } from ${JSON.stringify(path.join(HERE, "test-support.ts"))};\nawait chatProgram().parseAsync(process.argv.slice(2), { from: "user" });\n`);
  return script;
}

/** A pseudo-terminal running the program: waits for text, types lines. */
class Terminal {
  private output = "";
  private cursor = 0;
  readonly exited: Promise<number>;
  private readonly process: pty.IPty;

  constructor(args: string[]) {
    this.process = pty.spawn(TSX, ["--conditions=source", programScript(), ...args], { cols: 200, rows: 50, env: { ...process.env, NO_COLOR: "1" } as Record<string, string> });
    this.process.onData((data) => (this.output += data));
    this.exited = new Promise((resolve) => this.process.onExit(({ exitCode }) => resolve(exitCode)));
  }

  async waitFor(text: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.output.indexOf(text, this.cursor);
      if (at !== -1) {
        this.cursor = at + text.length;
        return;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(text)}; screen:\n${this.output.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  type(text: string): void {
    this.process.write(text);
  }

  /** What the terminal showed after the last text waited for. */
  get rest(): string {
    return this.output.slice(this.cursor);
  }
}

afterEach(() => vi.restoreAllMocks());

describe("ats-lora chat", () => {
  it("--prompt --json prints the answer and how it was made; without --json just the answer", async () => {
    const { stdout, stderr } = await chat("--json", "chat", "--model", BASE, "--prompt", "Say OK", "--max-tokens", "32");
    const answer = JSON.parse(stdout);
    expect(answer).toMatchObject({ model: "SmolLM2-135M-Instruct.Q4_1", base: BASE, adapters: [], prompt_tokens: 32, ended_with_eos: true, stopped_by: "eos" });
    expect(answer.text.length).toBeGreaterThan(0);
    expect(answer.tokens).toBeGreaterThan(1);
    expect(answer.tokens_per_second).toBeGreaterThan(0);
    expect(["cpu", "cuda", "metal", "vulkan"]).toContain(answer.device);
    expect(stderr).toContain(`(${answer.tokens} tokens, `);

    const human = await chat("chat", "--model", BASE, "--prompt", "Say OK", "--max-tokens", "32");
    expect(human.stdout).toBe(`${answer.text}\n`);

    const cut = await chat("--quiet", "--json", "chat", "--model", BASE, "--prompt", "Say OK", "--max-tokens", "3");
    expect(JSON.parse(cut.stdout)).toMatchObject({ tokens: 3, stopped_by: "max_tokens", ended_with_eos: false });
    expect(cut.stderr).toBe("");
  });

  it("--json-schema keeps the answer to a task's schema or a file's, and names a file it cannot use", async () => {
    const dir = tempDir();
    const colors = path.join(dir, "colors.json");
    fs.writeFileSync(colors, JSON.stringify({ type: "object", properties: { colors: { type: "array", items: { type: "string", maxLength: 12 }, maxItems: 3 } } }));
    const { stdout } = await chat("--json", "chat", "--model", BASE, "--prompt", "List thirty colors as JSON.", "--max-tokens", "60", "--json-schema", colors);
    const answer = JSON.parse(stdout);
    expect(answer).toMatchObject({ stopped_by: "json_complete", ended_with_eos: false });
    expect((JSON.parse(answer.text) as { colors: string[] }).colors.length).toBeLessThanOrEqual(3);

    // A task's schema: what its grammar cannot hold is named.
    const task = await chat("--json", "chat", "--model", BASE, "--prompt", "Parse: Ana Ruiz, Madrid", "--max-tokens", "4", "--json-schema", "resume_parse");
    expect(JSON.parse(task.stdout).text).toMatch(/^\{/);
    expect(task.stderr).toContain("(the resume_parse answer schema: the grammar does not hold experience[].start: pattern; experience[].end: pattern; check the answer against the schema)");

    const refused = async (value: string): Promise<string> => {
      const error = (await chat("chat", "--model", BASE, "--prompt", "Hi", "--json-schema", value).catch((caught: unknown) => caught)) as InputError;
      expect(error).toBeInstanceOf(InputError);
      return error.message;
    };
    const broken = path.join(dir, "broken.json");
    fs.writeFileSync(broken, '{"type": "object",');
    expect(await refused(broken)).toContain(`${broken} is not JSON: `);
    expect(await refused(path.join(dir, "absent.json"))).toBe(`no such JSON Schema file: ${path.join(dir, "absent.json")}`);
    const array = path.join(dir, "array.json");
    fs.writeFileSync(array, "[1, 2]");
    expect(await refused(array)).toBe(`${array}: the schema must be a JSON Schema object, not [1,2]`);
    expect(await refused("resume_parsing")).toBe("--json-schema resume_parsing is neither a task with a JSON answer (resume_parse, match_score) nor a .json file");
  });

  it("takes the prompt from stdin when it is not a terminal, and exits", () => {
    const run = spawnSync(TSX, ["--conditions=source", programScript(), "--json", "chat", "--model", BASE, "--max-tokens", "32"], { input: "Say OK\n", encoding: "utf8", timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ prompt_tokens: 32, ended_with_eos: true });
  });

  it("holds a conversation in a terminal: streams answers, keeps turns, /reset, Ctrl-C stops an answer, /exit leaves", async () => {
    const model = await LocalModel.load({ name: "smollm2", base: BASE, adapters: [] }, { contextSize: 1024 });
    const settings = { maxTokens: 32, temperature: 0 };
    const first = (await model.generate([[{ role: "user", content: "Say OK" }]], settings))[0]!.text;
    const second = (await model.generate([[{ role: "user", content: "Say OK" }, { role: "assistant", content: first }, { role: "user", content: "And again?" }]], settings))[0]!.text;
    await model.dispose();
    await disposeLlama();

    // Room for a long essay, so Ctrl-C comes while it is still being written however fast the CPU is (the short
    // answers end at EOS, or run on past the 32 tokens the references were cut at, which they start with).
    const terminal = new Terminal(["chat", "--model", BASE, "--max-tokens", "400"]);
    await terminal.waitFor("Ctrl-C stops an answer.");
    await terminal.waitFor("> ");
    terminal.type("Say OK\r");
    await terminal.waitFor(first);
    await terminal.waitFor(" tokens/s; ended at EOS)");
    await terminal.waitFor("> ");
    terminal.type("And again?\r");
    await terminal.waitFor(second);
    await terminal.waitFor("> ");
    terminal.type("/reset\r");
    await terminal.waitFor("(conversation cleared)");
    await terminal.waitFor("> ");
    terminal.type("Write a long essay about the history of computing.\r");
    await terminal.waitFor("\n");
    await new Promise((resolve) => setTimeout(resolve, 300));
    terminal.type("\u0003");
    await terminal.waitFor("(answer stopped; that question is left out of the conversation)");
    await terminal.waitFor("> ");
    terminal.type("Say OK\r");
    await terminal.waitFor(first);
    await terminal.waitFor("> ");
    terminal.type("/exit\r");
    expect(await terminal.exited).toBe(0);
  });

  it("leaves with 130 on Ctrl-C at the prompt, and with 0 on Ctrl-D", async () => {
    const interrupted = new Terminal(["chat", "--model", BASE]);
    await interrupted.waitFor("> ");
    interrupted.type("\u0003");
    expect(await interrupted.exited).toBe(130);

    const ended = new Terminal(["chat", "--model", BASE]);
    await ended.waitFor("> ");
    ended.type("\u0004");
    expect(await ended.exited).toBe(0);
  });
});
