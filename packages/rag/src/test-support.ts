import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig, type AtsConfig } from "@ats-lora/core";

/** Helpers shared by this package's tests (not part of the build). */

export const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "data", "ats_docs");
const base = loadConfig({ env: {} });
/** Small chunks: more of them from few documents, so stores build fast. */
export const config: AtsConfig = { ...base, rag: { ...base.rag, chunk_size: 128, chunk_overlap: 16 } };

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ats-rag-"));
}

export function copyDocs(names: string[], dir = tempDir()): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of names) fs.copyFileSync(path.join(DOCS, name), path.join(dir, name));
  return dir;
}

/** A pid that no process has: one of a child that has already exited. */
export function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString());
}

/** Every file under a folder with its content, for "nothing was touched" checks. */
export function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const visit = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) visit(full);
      else files[path.relative(dir, full)] = fs.readFileSync(full).toString("base64");
    }
  };
  visit(dir);
  return files;
}
