import path from "node:path";
import { readModelCard, type AtsConfig, type MlflowRun } from "@ats-lora/core";
import { numericMetrics, paramValues, TrackedRun } from "@ats-lora/tracking";
import type { GateResult } from "./gate.js";
import type { ReportFiles } from "./report.js";
import type { EvalReport } from "./report-types.js";

/**
 * An eval as an MLflow run (where tracking is configured): the settings and systems as parameters; every system's
 * metric per task (`SYSTEM.TASK.METRIC`), every comparison's delta and interval (`SYSTEM_vs_OTHER.TASK.METRIC.delta`,
 * `.low`, `.high`) and the gate's outcome as metrics; the report's files as artifacts. An evaluated adapter's
 * training run is named in the tag `ats_lora.adapter_run_id`.
 */
export async function trackEval(
  config: AtsConfig,
  report: EvalReport,
  files: ReportFiles,
  gate: GateResult | undefined,
  warn: (message: string) => void,
): Promise<MlflowRun | undefined> {
  const outDir = path.dirname(files.json);
  const evaluated = report.systems[0]?.model?.model;
  const adapterRun = evaluated !== undefined ? adapterRunId(evaluated) : undefined;
  const tracked = await TrackedRun.start(
    config,
    {
      name: `eval ${path.basename(outDir)}`,
      params: {
        test_data: report.test_data.file,
        examples: report.test_data.examples,
        tasks: report.test_data.tasks,
        systems: Object.fromEntries(report.systems.map((system) => [system.name, system.model?.model ?? system.file ?? system.method ?? system.role])),
        ...report.settings,
        embedder: report.embedder.model,
      },
      tags: { "ats_lora.kind": "eval", "ats_lora.report": files.json, ...(adapterRun ? { "ats_lora.adapter_run_id": adapterRun } : {}) },
      localRecord: outDir,
    },
    warn,
  );
  if (tracked === undefined) return undefined;
  for (const system of report.systems) tracked.logMetrics(numericMetrics(system.metrics, 0, `${system.name}.`));
  for (const comparison of report.comparisons) {
    const prefix = `${comparison.system}_vs_${comparison.against}.`;
    tracked.logMetrics(numericMetrics({ improved: comparison.improved, worsened: comparison.worsened, unclear: comparison.unclear }, 0, prefix));
    for (const metric of comparison.metrics) {
      tracked.logMetrics(numericMetrics({ delta: metric.delta, low: metric.low, high: metric.high }, 0, `${prefix}${metric.group}.${metric.metric}.`));
    }
  }
  if (gate !== undefined) {
    tracked.logMetrics(numericMetrics({ passed: gate.passed, failed: gate.failed.length }, 0, "gate."));
    await tracked.logParams(paramValues({ gate_summary: gate.summary }));
  }
  await tracked.logArtifacts([files.json, files.markdown, files.html, files.predictions], "report");
  return tracked.finish("FINISHED");
}

/** The MLflow run that trained an adapter folder, when its card records one. */
function adapterRunId(model: string): string | undefined {
  try {
    const card = readModelCard(model);
    return card?.kind === "adapter" ? card.mlflow?.run.run_id : undefined;
  } catch {
    return undefined;
  }
}
