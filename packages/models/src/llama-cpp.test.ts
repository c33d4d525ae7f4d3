import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { RunError } from "@ats-lora/core";
import { afterAll, describe, expect, it } from "vitest";
import { llamaCppSource } from "./llama-cpp.js";

const cache = fs.mkdtempSync(path.join(os.tmpdir(), "ats-llama-cpp-"));
afterAll(() => fs.rmSync(cache, { recursive: true, force: true }));

describe("llamaCppSource", () => {
  it("clones node-llama-cpp's bundle once, under a temporary name, and reuses the checkout", async () => {
    const events: string[] = [];
    const first = await llamaCppSource({ cacheDir: cache, onEvent: (event) => events.push(event.type) });
    expect(first.cloned).toBe(true);
    expect(path.basename(first.path)).toMatch(new RegExp(`^llama\\.cpp-${first.node_llama_cpp.replace(/\./g, "\\.")}-[0-9a-f]{12}$`));
    for (const file of ["convert_lora_to_gguf.py", "convert_hf_to_gguf.py", "gguf-py/gguf/__init__.py"]) expect(fs.existsSync(path.join(first.path, file)), file).toBe(true);
    expect(events).toEqual(["info"]);
    // Nothing but the checkout: the temporary clone was renamed into place.
    expect(fs.readdirSync(cache)).toEqual([path.basename(first.path)]);

    const inode = fs.statSync(first.path).ino;
    const second = await llamaCppSource({ cacheDir: cache });
    expect(second).toEqual({ ...first, cloned: false });
    expect(fs.statSync(second.path).ino).toBe(inode);
  }, 120_000);

  it("never uses an interrupted clone, and removes what a killed clone left", async () => {
    const { path: checkout } = await llamaCppSource({ cacheDir: cache });
    fs.rmSync(checkout, { recursive: true, force: true });
    // What a clone killed halfway leaves: a temporary folder whose process is gone.
    const abandoned = `${checkout}.tmp-999999999-0badc0de`;
    fs.mkdirSync(path.join(abandoned, "gguf-py"), { recursive: true });
    const again = await llamaCppSource({ cacheDir: cache });
    expect(again.cloned).toBe(true);
    expect(fs.existsSync(path.join(again.path, "convert_lora_to_gguf.py"))).toBe(true);
    expect(fs.existsSync(abandoned)).toBe(false);
  }, 120_000);

  it("says how to install git when it is missing", async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "ats-no-git-"));
    const saved = process.env.PATH;
    process.env.PATH = empty;
    try {
      const error = await llamaCppSource({ cacheDir: path.join(empty, "cache") }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RunError);
      expect((error as RunError).message).toMatch(/git is missing/);
      expect((error as RunError).hint).toMatch(/apt-get install -y git/);
    } finally {
      process.env.PATH = saved;
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
