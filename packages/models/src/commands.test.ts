import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Command, CommanderError } from "commander";
import { InputError, sha256File, writeModelCard } from "@ats-lora/core";
import { afterAll, describe, expect, it } from "vitest";
import { exportCommand, listCommand, pullCommand } from "./command.js";

/** The commands as the cli mounts them, under a program with the global options; no worker needed. */

const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-models-commands-"));
afterAll(() => fs.rmSync(workdir, { recursive: true, force: true }));

function program(): Command {
  const models = new Command("models").addCommand(pullCommand()).addCommand(listCommand());
  const root = new Command("ats-lora").option("--workdir <dir>").option("--config <file>").option("--json").option("--quiet").addCommand(models).addCommand(exportCommand());
  // Usage errors thrown rather than exiting, and kept off the terminal.
  const quiet = (command: Command): void => {
    command.exitOverride().configureOutput({ writeErr: () => undefined });
    command.commands.forEach(quiet);
  };
  quiet(root);
  return root;
}

/** Runs the program and returns what it wrote to stdout. */
async function run(args: string[]): Promise<string> {
  const written: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: unknown) => written.push(String(chunk)) > 0) as typeof process.stdout.write;
  try {
    await program().parseAsync(["--workdir", workdir, "--quiet", ...args], { from: "user" });
  } finally {
    process.stdout.write = write;
  }
  return written.join("");
}

function help(command: Command): string {
  let text = "";
  command.configureOutput({ writeOut: (chunk) => (text += chunk) });
  command.outputHelp();
  return text;
}

describe("the models commands", () => {
  it("models list: a table, or the listing as JSON", async () => {
    expect(await run(["models", "list"])).toMatch(/^no models in .*\(try: ats-lora models pull smollm2-135m-instruct\)\n$/);
    const folder = path.join(workdir, "models", "little");
    fs.mkdirSync(folder, { recursive: true });
    const file = path.join(folder, "little.gguf");
    fs.writeFileSync(file, Buffer.alloc(2_500_000));
    writeModelCard(folder, { kind: "base", name: "little", format: "gguf", file: "little.gguf", sha256: sha256File(file), size_bytes: 2_500_000, source: { kind: "file", path: file }, license: null, pulled_at: "2025-01-01T00:00:00.000Z" });
    const table = (await run(["models", "list"])).split("\n");
    expect(table[0]).toMatch(/^NAME\s+KIND\s+FORMAT\s+SIZE\s+BASE\s+EXPORTS\s+STAGE$/);
    expect(table[1]).toMatch(/^little\s+base\s+gguf\s+2\.5 MB\s+-\s+-\s+-$/);
    const json = JSON.parse(await run(["--json", "models", "list"])) as { models: Array<{ name: string; size_bytes: number }> };
    expect(json.models.map((model) => [model.name, model.size_bytes])).toEqual([["little", 2_500_000]]);
  });

  it("export: the formats and quants are choices; the operation's refusals come through", async () => {
    const wrongFormat = await run(["export", workdir, "--format", "onnx"]).catch((caught: unknown) => caught);
    expect(wrongFormat).toBeInstanceOf(CommanderError);
    expect((wrongFormat as CommanderError).message).toMatch(/gguf-lora, gguf, hf-merged/);
    const noFormat = await run(["export", workdir]).catch((caught: unknown) => caught);
    expect((noFormat as CommanderError).message).toMatch(/--format <format>' not specified/);
    const notAdapter = await run(["export", workdir, "--format", "gguf-lora", "--quant", "q8_0"]).catch((caught: unknown) => caught);
    expect(notAdapter).toBeInstanceOf(InputError);
    expect((notAdapter as InputError).message).toBe(`${workdir} is not a PEFT adapter: it has no adapter_config.json`);
  });

  it("has help with examples, and the catalogue in pull's", () => {
    const pull = help(pullCommand());
    expect(pull).toContain("smollm2-135m-instruct    SmolLM2-135M-Instruct Q4_1 GGUF, 98.4 MB, Apache-2.0");
    for (const command of [pullCommand(), listCommand(), exportCommand()]) expect(help(command)).toMatch(/Examples?:\n {2}\$ ats-lora /);
  });
});
