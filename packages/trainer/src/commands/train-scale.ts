import type { RunContext } from "@ats-lora/core";
import type { Launch } from "@ats-lora/worker";
import type { MemoryPlan } from "../scale.js";

const gib = (bytes: number | null | undefined): string => (bytes == null ? "–" : `${(bytes / 2 ** 30).toFixed(2)} GiB`);

/** `train --dry-run`: the memory plan, and the settings to change where it does not fit. */
export async function printMemoryPlan(context: RunContext): Promise<void> {
  const { planTraining } = await import("../scale.js");
  const plan = await planTraining(context);
  context.reporter.result({ event: "memory_plan", ...plan }, () => memoryPlanText(plan));
}

export function memoryPlanText(plan: MemoryPlan): string {
  const parts = Object.entries(plan.bytes)
    .filter(([name]) => name !== "total")
    .map(([name, bytes]) => `  ${name.padEnd(12)} ${gib(bytes)}`);
  const verdict =
    plan.fits === null ? "free memory unknown" : plan.fits ? `fits: ${gib(plan.free_bytes)} free` : `does not fit: ${gib(plan.free_bytes)} free`;
  return [
    `memory plan per device (${plan.device}, ${plan.quantization.mode}): estimated peak ${gib(plan.bytes.total)} (±${Math.round(plan.margin * 100)}%); ${verdict}`,
    ...parts,
    ...plan.advice.map((advice) => `  to fit: ${advice.change} → ${gib(advice.estimated_total_bytes)}`),
    ...plan.notes.map((note) => `  note: ${note}`),
  ].join("\n");
}

/** `train --nodes M --node-rank R` on a machine other than node 0: its processes follow node 0's run. */
export async function followNodeZero(context: RunContext, launch: Launch): Promise<void> {
  const { followTraining } = await import("../scale.js");
  context.reporter.info(`node ${launch.nodeRank} of ${launch.nodes}: ${launch.processes} processes joining ${launch.masterAddr}:${launch.masterPort ?? 29500}`);
  const result = await followTraining(launch, context, { onEvent: (event) => context.reporter.info(event.params.message) });
  context.reporter.result({ event: "result", status: "followed", ...result }, () => `node ${result.node_rank}: its ${result.processes} processes trained with node 0's run; log ${result.log_file}`);
}
