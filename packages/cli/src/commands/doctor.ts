import { Command } from "commander";
import { createRunContext, ExitCode, type GlobalOptions } from "@ats-lora/core";
import { inspectMachine, type MachineReport } from "../doctor.js";

/** `ats-lora doctor`: what this machine can do. */
export function doctorCommand(): Command {
  return new Command("doctor")
    .description("report Node, the worker's Python environment, torch, CUDA, bitsandbytes and disk")
    .addHelpText(
      "after",
      `
Example:
  $ ats-lora doctor --json`,
    )
    .action(async (_options: unknown, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const report = await inspectMachine({}, context);
      context.reporter.result(report, () => renderDoctor(report));
      if ("error" in report.worker) process.exitCode = ExitCode.failed;
    });
}

function renderDoctor(report: MachineReport): string {
  const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  const { disk } = report;
  const lines = [
    `node ${report.node} on ${report.platform}, ${report.cpus} CPUs, ${gib(report.memory_bytes)} memory`,
    `disk at ${disk.path}: ${gib(disk.free_bytes)} free of ${gib(disk.total_bytes)}`,
  ];
  if ("error" in report.worker) {
    lines.push(`worker: NOT AVAILABLE: ${report.worker.error}`, "  fix: bash scripts/setup.sh, or ATS_LORA_PYTHON=/path/to/python");
    return lines.join("\n");
  }
  const worker = report.worker;
  const packages = Object.entries(worker.packages)
    .map(([name, version]) => `${name} ${version ?? "missing"}`)
    .join(", ");
  lines.push(`worker: Python ${worker.python.version} (${worker.python.executable})`, `  ${packages}`);
  lines.push(
    worker.cuda.available
      ? `  CUDA ${worker.cuda.version}: ${worker.cuda.devices.map((d) => `${d.name} ${gib(d.total_memory_bytes)} (sm ${d.capability})`).join("; ")}`
      : "  CUDA: not available (training runs on the CPU)",
  );
  lines.push(`  bf16: ${worker.bf16 ? "yes" : "no"}`);
  const dist = worker.distributed;
  const devices = worker.cuda.available ? worker.cuda.devices.length : 1;
  lines.push(
    dist.available
      ? `  torch.distributed: gloo ${dist.gloo ? "yes" : "no"}, NCCL ${dist.nccl ? "yes" : "no"} → train --devices ${devices > 1 ? `up to ${devices} (one per GPU` : `N (CPU processes over gloo, ${dist.cpu_cores} cores`}), under torchrun`
      : "  torch.distributed: not built into this torch → train --devices 1 only",
  );
  const bnb = worker.bitsandbytes;
  lines.push(
    bnb.installed
      ? `  bitsandbytes ${bnb.version}: 4-bit on ${bnb.devices.join(", ") || "no device here"} → --quantization auto uses ${bnb.devices.includes(worker.device) ? "4-bit QLoRA" : "full-precision LoRA"}`
      : `  bitsandbytes: not installed (${bnb.error ?? ""}) → --quantization auto uses full-precision LoRA`,
  );
  return lines.join("\n");
}
