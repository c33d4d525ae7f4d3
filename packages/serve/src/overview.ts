import fs from "node:fs";
import path from "node:path";
import type { OperationContext } from "@ats-lora/core";
import type { DriftStats, TrainingPairsManifest } from "@ats-lora/dataset-builder";
import { withFeedbackStore, type FeedbackStats } from "@ats-lora/feedback";
import { listModels } from "@ats-lora/models";
import type { Job } from "./jobs.js";

// The reviewer page's overview: the loop's state read from the workdir (the store, the last build-db, the adapters
// and their eval reports) and the server's jobs.

/** One `eval` run under the workdir's eval/ folder, as far as the overview shows it. */
export interface EvalRun {
  /** The run's folder name under eval/. */
  run: string;
  created_at: string;
  examples: number;
  /** Each comparison of the evaluated system with another, in plain words. */
  comparisons: Array<{ system: string; against: string; verdict: string; summary: string[]; improved: number; worsened: number; unclear: number }>;
  /** The model folders or files the run evaluated. */
  models: string[];
  /** Served at this path (GET), or null when the run wrote no HTML report. */
  report_html: string | null;
}

export interface LoopOverview {
  /** The feedback store's figures (collect stats), or null before anything is stored. */
  stats: FeedbackStats | null;
  /** The last build-db: its counts and the drift of reviewers' corrections; null before the first. */
  training_data: {
    built_at: string;
    /** Rows per format and split. */
    rows: TrainingPairsManifest["counts"];
    drift: DriftStats;
    min_samples: TrainingPairsManifest["min_samples"];
  } | null;
  adapters: Array<{ name: string; path: string; base: string | null; created_at: string; exports: string[]; stage: string | null; evals: EvalRun[] }>;
  /** Eval runs of no adapter under models/ (a base, a predictions file, a baseline). */
  other_evals: EvalRun[];
  jobs: Job[];
}

/** The path under which the server answers with an eval run's report files. */
export const REPORTS_PREFIX = "/reports";

export function evalRunsDir(context: OperationContext): string {
  return path.join(context.paths.workdir, "eval");
}

/** The loop at a glance: what the overview page shows. */
export function loopOverview(context: OperationContext, jobs: Job[]): LoopOverview {
  const { paths, config } = context;
  const stats = fs.existsSync(paths.feedbackSqlite) ? withFeedbackStore(paths.feedbackSqlite, { readonly: true }, (store) => store.stats(config.feedback.min_samples)) : null;
  const runs = evalRuns(context);
  const adapters = listModels(context)
    .models.filter((model) => model.kind === "adapter")
    .map((adapter) => ({
      name: adapter.name,
      path: adapter.path,
      base: adapter.base,
      created_at: adapter.created_at,
      exports: adapter.exports,
      stage: adapter.stage,
      evals: runs.filter((run) => run.models.some((model) => within(model, adapter.path))),
    }));
  return {
    stats,
    training_data: trainingData(paths.trainingPairs),
    adapters,
    other_evals: runs.filter((run) => !adapters.some((adapter) => adapter.evals.includes(run))),
    jobs,
  };
}

function within(file: string, folder: string): boolean {
  const relative = path.relative(folder, path.resolve(file));
  return relative === "" || (!relative.startsWith("..") && !path.isAbsolute(relative));
}

function trainingData(folder: string): LoopOverview["training_data"] {
  const file = path.join(folder, "manifest.json");
  if (!fs.existsSync(file)) return null;
  const manifest = readJson(file) as TrainingPairsManifest;
  return {
    built_at: fs.statSync(file).mtime.toISOString(),
    rows: manifest.counts,
    drift: manifest.drift,
    min_samples: manifest.min_samples,
  };
}

interface ReportFile {
  created_at: string;
  test_data: { examples: number };
  systems: Array<{ name: string; model?: { model: string } }>;
  comparisons: Array<{ system: string; against: string; verdict: string; summary?: string[]; improved: number; worsened: number; unclear: number }>;
}

/** The eval runs with a readable report.json, newest first; a folder without one is not a run. */
function evalRuns(context: OperationContext): EvalRun[] {
  const dir = evalRunsDir(context);
  if (!fs.existsSync(dir)) return [];
  const runs: EvalRun[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const reportFile = path.join(dir, entry.name, "report.json");
    if (!entry.isDirectory() || !fs.existsSync(reportFile)) continue;
    let report: ReportFile;
    try {
      report = readJson(reportFile) as ReportFile;
    } catch {
      continue; // a report being written, or not one of ours: the overview shows what it can read
    }
    runs.push({
      run: entry.name,
      created_at: report.created_at,
      examples: report.test_data?.examples ?? 0,
      comparisons: (report.comparisons ?? []).map(({ system, against, verdict, summary, improved, worsened, unclear }) => ({ system, against, verdict, summary: summary ?? [], improved, worsened, unclear })),
      models: (report.systems ?? []).flatMap((system) => (system.model === undefined ? [] : [system.model.model])),
      report_html: fs.existsSync(path.join(dir, entry.name, "report.html")) ? `${REPORTS_PREFIX}/${encodeURIComponent(entry.name)}/report.html` : null,
    });
  }
  return runs.sort((a, b) => b.created_at.localeCompare(a.created_at));
}

function readJson(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}
