import fs from "node:fs";
import os from "node:os";
import { throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import type { ResultOf } from "@ats-lora/worker";

export interface InspectMachineInput {
  /** The worker's Python; default $ATS_LORA_PYTHON, else the project's .venv. */
  python?: string;
}

/** What `doctor --json` prints: this machine, and the worker's environment or why it does not start. */
export interface MachineReport {
  node: string;
  platform: string;
  cpus: number;
  memory_bytes: number;
  disk: { path: string; free_bytes: number; total_bytes: number };
  /** Absent when no Python environment for the worker was found. */
  python_executable?: string;
  worker: ResultOf<"initialize"> | { error: string };
}

/**
 * Node, the platform, CPUs, memory, the workdir's disk, and the worker started once for what it reports (Python,
 * torch, CUDA, bitsandbytes). A worker that does not start is part of the report, not an error.
 */
export async function inspectMachine(input: InspectMachineInput, context: OperationContext, options: OperationOptions = {}): Promise<MachineReport> {
  const disk = fs.statfsSync(fs.existsSync(context.paths.workdir) ? context.paths.workdir : process.cwd());
  const report: Omit<MachineReport, "worker"> = {
    node: process.versions.node,
    platform: `${os.platform()} ${os.arch()}`,
    cpus: os.cpus().length,
    memory_bytes: os.totalmem(),
    disk: { path: context.paths.workdir, free_bytes: disk.bavail * disk.bsize, total_bytes: disk.blocks * disk.bsize },
  };
  throwIfAborted(options.signal, "doctor");
  const { WorkerClient, workerPython } = await import("@ats-lora/worker");
  try {
    report.python_executable = workerPython(input.python);
    const { client, info } = await WorkerClient.start({ python: input.python });
    await client.close();
    return { ...report, worker: info };
  } catch (error) {
    return { ...report, worker: { error: (error as Error).message } };
  }
}
