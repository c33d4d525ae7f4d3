import { getLlama, LlamaLogLevel, NoBinaryFoundError, type Llama } from "node-llama-cpp";
import { InputError, RunError } from "@ats-lora/core";

/** "auto": CUDA, Metal or Vulkan when node-llama-cpp finds one, else the CPU; false: the CPU only. */
export type GpuSetting = "auto" | false;
export type Device = "cpu" | "cuda" | "metal" | "vulkan";

/** One Llama per GPU setting for the whole process: loading the native binding twice wastes memory and time. */
const llamas = new Map<GpuSetting, Promise<Llama>>();

/**
 * Llamas whose dispose() would never settle: node-llama-cpp 3.21.1 leaves a dispose guard held when llama.cpp fails
 * to load a model or make a context (the half-made object is dropped without being disposed).
 */
const leaked = new WeakSet<Llama>();

export function markLeaked(llama: Llama): void {
  leaked.add(llama);
}

interface LogLine {
  index: number;
  level: LlamaLogLevel;
  message: string;
}

// llama.cpp's own words go here instead of stderr (operations never print); a failed load quotes them.
const log: LogLine[] = [];
let logged = 0;
const LOG_LINES_KEPT = 200;

function record(level: LlamaLogLevel, message: string): void {
  log.push({ index: logged++, level, message: message.trim() });
  if (log.length > LOG_LINES_KEPT) log.splice(0, log.length - LOG_LINES_KEPT);
}

/** A mark in llama.cpp's log: `errorsSince(mark)` gives the error lines logged after it. */
export function logMark(): number {
  return logged;
}

export function errorsSince(mark: number): string[] {
  return log.filter((line) => line.index >= mark && line.level === LlamaLogLevel.error).map((line) => line.message);
}

/** The GPU setting asked for, else ATS_LORA_LLAMA_GPU (auto | false), else "auto". */
export function gpuSetting(requested?: GpuSetting): GpuSetting {
  if (requested !== undefined) return requested;
  const value = process.env.ATS_LORA_LLAMA_GPU?.trim().toLowerCase();
  if (value === undefined || value === "" || value === "auto") return "auto";
  if (value === "false" || value === "cpu" || value === "off" || value === "0") return false;
  throw new InputError(`ATS_LORA_LLAMA_GPU=${process.env.ATS_LORA_LLAMA_GPU} is not a GPU setting`, {
    hint: "set it to auto (use a GPU when node-llama-cpp finds one, the default) or false (CPU only)",
  });
}

/** The process-wide Llama for a GPU setting, created on first use from node-llama-cpp's prebuilt binaries. */
export function sharedLlama(gpu: GpuSetting): Promise<Llama> {
  let llama = llamas.get(gpu);
  if (llama === undefined) {
    // build: "never": a missing prebuilt binary is an error here, never a compile at run time.
    llama = getLlama({ gpu, build: "never", progressLogs: false, logLevel: LlamaLogLevel.warn, logger: record }).catch((error: unknown) => {
      llamas.delete(gpu);
      throw new RunError(`node-llama-cpp could not start llama.cpp${gpu === false ? " on the CPU" : ""}: ${(error as Error).message}`, {
        cause: error,
        hint:
          error instanceof NoBinaryFoundError
            ? "no prebuilt llama.cpp binary fits this machine; reinstall the dependencies (pnpm install) on a supported platform"
            : "try ATS_LORA_LLAMA_GPU=false to run on the CPU",
      });
    });
    llamas.set(gpu, llama);
  }
  return llama;
}

/**
 * Threads for llama.cpp's CPU work: the asked number, else ATS_LORA_LLAMA_THREADS, else one per math core.
 * Fewer pay off when other work shares the CPU: llama.cpp's threads spin while they wait for each other, and
 * with a training run busy on the same 2 cores, 2 threads made 1.2 tokens/s where 1 made 75.
 */
export function threadCount(llama: Llama, requested?: number): number {
  if (requested !== undefined) return requested;
  const value = process.env.ATS_LORA_LLAMA_THREADS?.trim();
  if (value === undefined || value === "") return llama.cpuMathCores;
  if (!/^\d+$/.test(value) || Number(value) === 0) {
    throw new InputError(`ATS_LORA_LLAMA_THREADS=${value} is not a number of threads`, { hint: `set a whole number from 1 (this machine has ${llama.cpuMathCores} math cores)` });
  }
  return Number(value);
}

export function deviceOf(llama: Llama): Device {
  return llama.gpu === false ? "cpu" : llama.gpu;
}

/**
 * Releases the process-wide Llama instances (call at exit, after every LocalModel is disposed): node-llama-cpp's
 * native threads keep Node alive until then.
 */
export async function disposeLlama(): Promise<void> {
  const pending = [...llamas.values()];
  llamas.clear();
  for (const llama of await Promise.allSettled(pending)) {
    if (llama.status !== "fulfilled" || llama.value.disposed) continue;
    // A leaked guard would keep this await from ever returning; the dispose still frees what it can.
    if (leaked.has(llama.value)) void llama.value.dispose().catch(() => undefined);
    else await llama.value.dispose();
  }
}
