import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { interruptedError, isProcessAlive, RunError, sha256File, throwIfAborted, type OperationEvent, type OperationOptions } from "@ats-lora/core";

export interface LlamaCppSource {
  /** The checkout: convert_lora_to_gguf.py, convert_hf_to_gguf.py and gguf-py. */
  path: string;
  /** The node-llama-cpp version whose bundle it was cloned from. */
  node_llama_cpp: string;
  /** false: an earlier clone was reused. */
  cloned: boolean;
}

export interface LlamaCppSourceOptions extends OperationOptions<OperationEvent> {
  /** Where checkouts are kept; default $ATS_LORA_CACHE, else $XDG_CACHE_HOME/ats-lora or ~/.cache/ats-lora. */
  cacheDir?: string;
}

/** The cache folder the project's scripts share (scripts/build-faiss-node.sh uses the same). */
export function cacheRoot(): string {
  return process.env.ATS_LORA_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "ats-lora");
}

/** node-llama-cpp's folder and version (its exports do not include package.json, so found from its entry point). */
function nodeLlamaCppPackage(): { dir: string; version: string } {
  let dir = path.dirname(createRequire(import.meta.url).resolve("node-llama-cpp"));
  for (;;) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest)) {
      const parsed = JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: string; version?: string };
      if (parsed.name === "node-llama-cpp" && parsed.version) return { dir, version: parsed.version };
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new RunError("node-llama-cpp's package.json was not found above its entry point", { hint: "reinstall: pnpm install" });
    dir = parent;
  }
}

/**
 * A checkout of the llama.cpp source node-llama-cpp ships (llama/gitRelease.bundle): the converters export runs,
 * of the very llama.cpp release that node-llama-cpp loads models with. Cloned once per bundle into the cache
 * (llama.cpp-VERSION-SHA12), under a temporary name renamed into place, so an interrupted clone is never used.
 */
export async function llamaCppSource(options: LlamaCppSourceOptions = {}): Promise<LlamaCppSource> {
  const { dir: packageDir, version } = nodeLlamaCppPackage();
  const bundle = path.join(packageDir, "llama", "gitRelease.bundle");
  if (!fs.existsSync(bundle)) {
    throw new RunError(`node-llama-cpp ${version} has no llama.cpp source bundle (${bundle})`, { hint: "reinstall it: pnpm install" });
  }
  const cache = options.cacheDir ?? cacheRoot();
  const checkout = path.join(cache, `llama.cpp-${version}-${sha256File(bundle).slice(0, 12)}`);
  if (fs.existsSync(path.join(checkout, "convert_lora_to_gguf.py"))) return { path: checkout, node_llama_cpp: version, cloned: false };

  throwIfAborted(options.signal, "cloning llama.cpp");
  fs.mkdirSync(cache, { recursive: true });
  removeAbandonedClones(checkout);
  const temporary = `${checkout}.tmp-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
  options.onEvent?.({ type: "info", message: `cloning llama.cpp's converters from node-llama-cpp ${version} into ${checkout} (once)` });
  try {
    await git(["clone", "-q", bundle, temporary], options.signal);
    try {
      fs.renameSync(temporary, checkout);
    } catch (error) {
      // Another process finished the same clone first: use that one.
      if (!fs.existsSync(path.join(checkout, "convert_lora_to_gguf.py"))) throw error;
    }
  } finally {
    fs.rmSync(temporary, { recursive: true, force: true });
  }
  return { path: checkout, node_llama_cpp: version, cloned: true };
}

/** Temporary clones left by processes that were killed mid-clone (their pid is in the name). */
function removeAbandonedClones(checkout: string): void {
  const prefix = `${path.basename(checkout)}.tmp-`;
  for (const name of fs.readdirSync(path.dirname(checkout))) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split("-")[0]);
    if (!isProcessAlive(pid)) fs.rmSync(path.join(path.dirname(checkout), name), { recursive: true, force: true });
  }
}

function git(args: string[], signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const onAbort = (): void => void child.kill("SIGTERM");
    signal?.addEventListener("abort", onAbort, { once: true });
    child.once("error", (error: NodeJS.ErrnoException) => {
      signal?.removeEventListener("abort", onAbort);
      if (error.code === "ENOENT") {
        reject(new RunError("git is missing: it clones llama.cpp's converters from the bundle node-llama-cpp ships", { hint: "install it: sudo apt-get install -y git" }));
      } else reject(new RunError(`cannot run git: ${error.message}`));
    });
    child.once("close", (code) => {
      signal?.removeEventListener("abort", onAbort);
      if (signal?.aborted) reject(interruptedError("cloning llama.cpp"));
      else if (code === 0) resolve();
      else reject(new RunError(`git ${args.join(" ")} failed (exit ${code})`, { details: stderr.trim().split("\n").slice(-5), hint: "check the disk space of the cache folder (about 210 MB)" }));
    });
  });
}
