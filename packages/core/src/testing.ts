/* eslint-disable no-console -- it swaps console's methods to watch them */
import fs from "node:fs";
import path from "node:path";
import { bundledDataDir } from "./paths.js";
import { buildPrompt, type PromptConfig } from "./prompt.js";

/**
 * Test support (the `@ats-lora/core/testing` entry): what an operation writes to the terminal, the browser
 * the page and report tests drive, and the bundled samples as training rows. Operations never
 * print; their tests watch process.stdout, process.stderr and console (which test runners do not route through
 * process.stdout) and expect nothing.
 */
export interface TerminalWatch {
  /** Restores the streams and console, and returns what was written while watching, each line tagged with where. */
  stop(): string[];
}

const CONSOLE_METHODS = ["log", "info", "warn", "error", "debug"] as const;

export function watchTerminal(): TerminalWatch {
  const written: string[] = [];
  const streams = [
    ["stdout", process.stdout],
    ["stderr", process.stderr],
  ] as const;
  const originalWrites = streams.map(([, stream]) => stream.write);
  for (const [name, stream] of streams) {
    stream.write = ((chunk: unknown) => {
      written.push(`${name}: ${String(chunk)}`);
      return true;
    }) as typeof stream.write;
  }
  const originalConsole = CONSOLE_METHODS.map((method) => console[method]);
  for (const method of CONSOLE_METHODS) console[method] = (...args: unknown[]) => void written.push(`console.${method}: ${args.map(String).join(" ")}`);
  return {
    stop() {
      streams.forEach(([, stream], i) => (stream.write = originalWrites[i]!));
      CONSOLE_METHODS.forEach((method, i) => (console[method] = originalConsole[i]!));
      return written;
    },
  };
}

/** Chromium or Chrome on this machine ($CHROMIUM_PATH first): the report and reviewer-page tests drive a real browser. */
export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"];
  const found = candidates.find((candidate): candidate is string => !!candidate && fs.existsSync(candidate));
  if (!found) throw new Error("no Chromium or Chrome found: run scripts/setup.sh (it installs chromium), or set CHROMIUM_PATH");
  return found;
}

/** One task's interactions of a bundled samples file as build-db's rows: the prompt eval sends, the reviewer's ideal answer (else the model's). */
export function bundledTaskRows(file: string, task: string, prompts: PromptConfig): Array<{ task: string; prompt: string; completion: string }> {
  return fs
    .readFileSync(path.join(bundledDataDir(), "samples", file), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { task: string; query: string; context: string[]; response: string; feedback?: { ideal_response?: string | null } })
    .filter((row) => row.task === task)
    .map((row) => ({ task, prompt: buildPrompt({ task, query: row.query, context: row.context }, prompts), completion: row.feedback?.ideal_response ?? row.response }));
}
