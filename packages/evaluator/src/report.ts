import fs from "node:fs";
import path from "node:path";
import { parsePrompt, type PromptConfig } from "@ats-lora/core";
import { fieldDifferences, parseJsonOutput, parseJsonOutputRepaired, type FieldDifference, type FieldStatus } from "./metrics.js";
import type { Comparison, EvalReport, ExampleRecord, MetricComparison, SystemReport, TrainingLog } from "./report-types.js";
import { SPEED_METRICS } from "./score.js";

export interface ReportFiles {
  dir: string;
  json: string;
  markdown: string;
  html: string;
  predictions: string;
}

export interface ReportOptions {
  /** The prompt layout the test prompts were built with: the examples then show their query and context apart. */
  prompts?: PromptConfig;
  /** Examples shown per task (default 2); predictions.jsonl has them all. */
  examplesPerTask?: number;
}

/** Writes report.json, report.md, report.html (self-contained: inline styles and SVG charts) and predictions.jsonl. */
export function writeReport(report: EvalReport, examples: readonly ExampleRecord[], dir: string, options: ReportOptions = {}): ReportFiles {
  fs.mkdirSync(dir, { recursive: true });
  const files: ReportFiles = {
    dir: path.resolve(dir),
    json: path.resolve(dir, "report.json"),
    markdown: path.resolve(dir, "report.md"),
    html: path.resolve(dir, "report.html"),
    predictions: path.resolve(dir, "predictions.jsonl"),
  };
  fs.writeFileSync(files.json, `${JSON.stringify(report, finiteOrNull, 2)}\n`);
  fs.writeFileSync(files.markdown, renderMarkdown(report, examples, options));
  fs.writeFileSync(files.html, renderHtml(report, examples, options));
  fs.writeFileSync(files.predictions, examples.map((example) => JSON.stringify(example, finiteOrNull)).join("\n") + "\n");
  return files;
}

/** NaN and infinity (an undefined correlation, say) are written as null, which JSON can say. */
function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? null : value;
}

export function formatValue(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(3);
}

/** A delta with its sign, as the tables and verdicts print it. */
export function signed(value: number): string {
  return Number.isFinite(value) ? `${value >= 0 ? "+" : ""}${formatValue(value)}` : "–";
}

const TASK_WORDS: Record<string, string> = {
  overall: "all tasks together",
  resume_parse: "resume parsing",
  match_score: "match scoring",
  interview_question: "interview questions",
  resume_analysis: "resume analysis",
};

/** A group (task) as a reader says it: "resume parsing". */
export function taskWords(group: string): string {
  return TASK_WORDS[group] ?? group.replace(/_/g, " ");
}

/** Metrics in words, most telling first: a verdict line names a task's clear metrics in this order. */
const METRIC_WORDS: Record<string, string> = {
  json_validity: "JSON validity",
  field_f1: "field F1",
  mae: "MAE",
  score_validity: "readable scores",
  specificity: "questions naming a detail of the resume",
  follow_up_addresses_vague_part: "follow-ups on the vague part",
  relevance: "relevance",
  hit_token_limit: "answers cut at the token limit",
  field_f1_repaired: "field F1 of the repaired JSON",
  semantic_similarity: "semantic similarity",
  rouge_l: "ROUGE-L",
  exact_match: "exact match",
  loss: "loss on the reference",
  perplexity: "perplexity",
  field_precision: "field precision",
  field_recall: "field recall",
  field_precision_repaired: "field precision of the repaired JSON",
  field_recall_repaired: "field recall of the repaired JSON",
  accuracy_within_0_2: "scores within ±0.2",
  rmse: "RMSE",
  spearman: "Spearman correlation",
  pearson: "Pearson correlation",
  r2: "R²",
  accuracy: "match accuracy",
  precision: "match precision",
  recall: "match recall",
  f1: "match F1",
  latency_p50_s: "median latency (s)",
  latency_p95_s: "95th-percentile latency (s)",
  tokens_per_second: "tokens per second",
};
const METRIC_ORDER = Object.keys(METRIC_WORDS);

export function metricWords(metric: string): string {
  return METRIC_WORDS[metric] ?? metric.replace(/_/g, " ");
}

/** Two decimals for people (0.41, 1.00), none from 100 on. */
function plainNumber(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(2);
}

function plainSigned(value: number): string {
  return Number.isFinite(value) ? `${value < 0 ? "−" : "+"}${plainNumber(Math.abs(value))}` : "–";
}

/**
 * A comparison in plain words, for a reader who does not read tables: one line per task (then all tasks
 * together) and direction where a counted metric's 95% interval excludes zero, naming the most telling
 * metrics first, e.g. "tuned is better than base on resume parsing: field F1 0.41 → 0.78 [+0.29, +0.45]"
 * (other's value → this system's, and the interval of the difference). Speed metrics are left out.
 */
export function plainVerdict(system: string, other: string, metrics: readonly MetricComparison[], perLine = 3): string[] {
  const rank = (metric: string) => (METRIC_ORDER.includes(metric) ? METRIC_ORDER.indexOf(metric) : METRIC_ORDER.length);
  const groups = [...new Set(metrics.map((metric) => metric.group))];
  const lines: string[] = [];
  for (const group of [...groups.filter((name) => name !== "overall"), ...groups.filter((name) => name === "overall")]) {
    for (const outcome of ["better", "worse"] as const) {
      const clear = metrics
        .filter((metric) => metric.group === group && metric.outcome === outcome && !SPEED_METRICS.has(metric.metric))
        .sort((a, b) => rank(a.metric) - rank(b.metric));
      if (clear.length === 0) continue;
      const named = clear.slice(0, perLine).map((metric) => `${metricWords(metric.metric)} ${plainNumber(metric.other)} → ${plainNumber(metric.value)} [${plainSigned(metric.low)}, ${plainSigned(metric.high)}]`);
      const more = clear.length > perLine ? ` (and ${clear.length - perLine} more metric${clear.length - perLine === 1 ? "" : "s"})` : "";
      lines.push(`${system} is ${outcome} than ${other} on ${taskWords(group)}: ${named.join("; ")}${more}`);
    }
  }
  if (lines.length === 0) lines.push(`${system} is not clearly different from ${other} on any task: every 95% interval includes zero`);
  return lines;
}

/** Groups in report order: overall first, then tasks as they appear. */
export function reportGroups(report: EvalReport): string[] {
  const groups = new Set<string>(["overall"]);
  for (const system of report.systems) for (const group of Object.keys(system.metrics)) groups.add(group);
  return [...groups].filter((group) => report.systems.some((system) => system.metrics[group]));
}

function metricNames(report: EvalReport, group: string): string[] {
  const names = new Set<string>();
  for (const system of report.systems) for (const name of Object.keys(system.metrics[group] ?? {})) names.add(name);
  return [...names];
}

interface Row {
  metric: string;
  values: string[];
  delta?: string;
}

/** A table per group: each system's value, and for the first comparison the delta with its interval and outcome. */
function groupRows(report: EvalReport, group: string): Row[] {
  const comparison = report.comparisons[0];
  return metricNames(report, group).map((metric) => {
    const found = comparison?.metrics.find((entry) => entry.group === group && entry.metric === metric);
    return {
      metric,
      values: report.systems.map((system) => formatValue(system.metrics[group]?.[metric])),
      ...(comparison
        ? { delta: found ? `${signed(found.delta)} [${signed(found.low)}, ${signed(found.high)}]${found.outcome === "unclear" ? "" : ` ${found.outcome}`}` : "" }
        : {}),
    };
  });
}

/** The generation settings in a line: the token limit of each task (one number where all are equal). */
function generationSettings(report: EvalReport): string {
  const settings = report.settings;
  const limits = Object.entries(settings.max_new_tokens_by_task ?? {});
  const same = limits.every(([, limit]) => limit === settings.max_new_tokens);
  const tokens = same ? `max_new_tokens ${settings.max_new_tokens}` : `max_new_tokens ${limits.map(([task, limit]) => `${task} ${limit}`).join(", ")}`;
  const schema = settings.json_schema ? ", +schema systems answer resume_parse and match_score under their JSON schema" : "";
  const rag = settings.rag ? `, rag ${settings.rag.store} (top ${settings.rag.top_k}, ${settings.rag.mode})` : "";
  return `greedy, ${tokens}, seed ${settings.seed}${rag}${schema}`;
}

/** The examples a report shows: the first `perTask` of each task, in test order. */
function shownExamples(examples: readonly ExampleRecord[], perTask: number): ExampleRecord[] {
  const count = new Map<string, number>();
  return examples.filter((example) => {
    const seen = count.get(example.task) ?? 0;
    count.set(example.task, seen + 1);
    return seen < perTask;
  });
}

/** What the model was asked: the query and the start of each context passage, or the start of the prompt. */
function inputExcerpt(prompt: string, prompts: PromptConfig | undefined): string {
  const clip = (text: string, length: number) => (text.length > length ? `${text.slice(0, length).trimEnd()}…` : text);
  const parsed = prompts ? parsePrompt(prompt, prompts) : undefined;
  if (!parsed) return clip(prompt, 600);
  return [clip(parsed.query, 300), ...parsed.context.map((passage) => clip(passage.trim(), 300))].join("\n\n");
}

/** An answer as JSON: its object (strict, else repaired), and how it parsed. */
function answerJson(text: string): { value: unknown; parse: "valid JSON" | "invalid JSON, fields read from the repaired answer" | "no JSON object" } {
  const isObject = (value: unknown) => value !== null && typeof value === "object" && !Array.isArray(value);
  const strict = parseJsonOutput(text);
  if (isObject(strict)) return { value: strict, parse: "valid JSON" };
  const repaired = parseJsonOutputRepaired(text);
  return isObject(repaired) ? { value: repaired, parse: "invalid JSON, fields read from the repaired answer" } : { value: {}, parse: "no JSON object" };
}

function referenceObject(example: ExampleRecord): Record<string, unknown> | undefined {
  const value = parseJsonOutput(example.reference);
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function showValue(value: unknown, length = 160): string {
  const text = value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value);
  return text.length > length ? `${text.slice(0, length)}…` : text;
}

/** One system's fields against the reference, by field name. */
function differencesOf(example: ExampleRecord, system: string, reference: Record<string, unknown>) {
  const { value, parse } = answerJson(example.outputs[system]!.text);
  return { parse, byField: new Map(fieldDifferences(value, reference).map((difference) => [difference.field, difference])) };
}

/** Every field either the reference or a system's answer has: the reference's first. */
function fieldRows(reference: Record<string, unknown>, answers: ReadonlyArray<{ byField: Map<string, FieldDifference> }>): string[] {
  const fields = new Set(Object.keys(reference));
  for (const answer of answers) for (const field of answer.byField.keys()) fields.add(field);
  return [...fields];
}

const STATUS_MARK: Record<FieldStatus, string> = { same: "✓", different: "≠", missing: "∅", extra: "+" };

const MARKDOWN_EXAMPLE_LEGEND = "✓ same as the reference · ≠ different · ∅ missing (in the reference, not the answer) · + extra (in the answer, not the reference)";

export function renderMarkdown(report: EvalReport, examples: readonly ExampleRecord[] = [], options: ReportOptions = {}): string {
  const lines: string[] = ["# ats-lora evaluation", ""];
  for (const comparison of report.comparisons) {
    lines.push(`## ${comparison.system} against ${comparison.against}`, "", ...(comparison.summary ?? []).map((line) => `- ${line}`), "", `_${comparison.verdict}_`, "");
  }
  lines.push(
    "## Settings",
    "",
    `- test data: ${report.test_data.file} (${report.test_data.examples} examples: ${Object.entries(report.test_data.tasks).map(([task, n]) => `${task} ${n}`).join(", ")})`,
    `- generation: ${generationSettings(report)}`,
    `- embedder: ${report.embedder.model} (${report.embedder.dtype})`,
    `- systems: ${report.systems.map((system) => `${system.name} (${describeSystem(system)})`).join("; ")}`,
    `- ${report.created_at}`,
    "",
  );
  const comparison = report.comparisons[0];
  for (const group of reportGroups(report)) {
    lines.push(`## ${group}`, "");
    const header = ["metric", ...report.systems.map((system) => system.name), ...(comparison ? [`Δ ${comparison.system} − ${comparison.against} [95% CI]`] : [])];
    lines.push(`| ${header.join(" | ")} |`, `| ${header.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`);
    for (const row of groupRows(report, group)) lines.push(`| ${[row.metric, ...row.values, ...(row.delta !== undefined ? [row.delta] : [])].join(" | ")} |`);
    lines.push("");
    if (group === "resume_parse") {
      const withFields = report.systems.filter((system) => system.fields);
      const fields = [...new Set(withFields.flatMap((system) => Object.keys(system.fields!)))];
      if (fields.length > 0) {
        lines.push("Field-level F1:", "", `| field | support | ${withFields.map((system) => system.name).join(" | ")} |`, `| --- | ---: | ${withFields.map(() => "---:").join(" | ")} |`);
        for (const field of fields) {
          const support = withFields.find((system) => system.fields![field])!.fields![field]!.support;
          lines.push(`| ${field} | ${support} | ${withFields.map((system) => formatValue(system.fields![field]?.f1)).join(" | ")} |`);
        }
        lines.push("");
      }
    }
  }
  for (const system of report.systems.filter((entry) => entry.training)) {
    const curve = system.training!.loss_curve.filter((point) => point.loss !== undefined);
    if (curve.length > 0) lines.push(`Training loss of ${system.name}: ${formatValue(curve[0]!.loss)} at step ${curve[0]!.step} → ${formatValue(curve.at(-1)!.loss)} at step ${curve.at(-1)!.step} (chart in report.html).`, "");
  }
  lines.push(...markdownExamples(report, examples, options));
  lines.push(
    "Metrics: semantic_similarity is the embedder's cosine of output and reference; rouge_l the longest-common-subsequence F1 of their words; loss and perplexity the model's on the reference; field_*_repaired the fields of the answer after repairing its JSON (an answer cut at the token limit keeps what it wrote); hit_token_limit the share of answers that used every new token allowed; for match scores, accuracy/precision/recall/f1 decide \"match\" at 0.5. Intervals: paired bootstrap over examples.",
    "",
  );
  return lines.join("\n");
}

/** The shown examples: the input, then the reference and each answer (JSON field by field, marked against the reference). */
function markdownExamples(report: EvalReport, examples: readonly ExampleRecord[], options: ReportOptions): string[] {
  const shown = shownExamples(examples, options.examplesPerTask ?? 2);
  if (shown.length === 0) return [];
  const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");
  const fence = (text: string) => ["```text", text.replace(/```/g, "ʼʼʼ"), "```"];
  const lines: string[] = ["## Examples", "", MARKDOWN_EXAMPLE_LEGEND, ""];
  for (const example of shown) {
    const systems = report.systems.filter((system) => example.outputs[system.name]).map((system) => system.name);
    lines.push(`### ${taskWords(example.task)} — test line ${example.line}`, "", "Input:", "", ...fence(inputExcerpt(example.prompt, options.prompts)), "");
    const reference = referenceObject(example);
    if (reference) {
      const answers = systems.map((name) => differencesOf(example, name, reference));
      lines.push(`| field | reference | ${systems.map((name, i) => `${name} (${answers[i]!.parse})`).join(" | ")} |`, `| --- | --- | ${systems.map(() => "---").join(" | ")} |`);
      for (const field of fieldRows(reference, answers)) {
        const cells = answers.map(({ byField }) => {
          const difference = byField.get(field);
          if (!difference) return "";
          if (difference.items) return difference.items.map((item) => `${showValue(item.value, 60)} ${STATUS_MARK[item.status]}`).join(", ");
          return difference.status === "missing" ? STATUS_MARK.missing : `${showValue(difference.predicted)} ${STATUS_MARK[difference.status]}`;
        });
        lines.push(`| ${[field, showValue(reference[field]), ...cells].map(cell).join(" | ")} |`);
      }
      lines.push("");
    } else {
      lines.push("Reference:", "", ...fence(example.reference), "");
      for (const name of systems) lines.push(`${name}:`, "", ...fence(example.outputs[name]!.text), "");
    }
  }
  return lines;
}

function describeSystem(system: SystemReport): string {
  if (system.model) return `${system.role}: ${system.model.model}${system.model.base ? ` on ${system.model.base}` : ""}${system.json_schema ? ", JSON answers under their schema" : ""}`;
  if (system.file) return `predictions: ${system.file}`;
  if (system.matcher) return `baseline: ${system.method} (${system.matcher.kind === "trained" ? `matcher ${system.matcher.path}` : `${system.matcher.kind}: ${system.matcher.path}`})`;
  return `baseline: ${system.method}`;
}

const PALETTE = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2"];

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** Metrics on a 0–1 scale, which share one bar chart per group. */
const BOUNDED = new Set([
  "semantic_similarity",
  "rouge_l",
  "exact_match",
  "json_validity",
  "field_precision",
  "field_recall",
  "field_f1",
  "field_precision_repaired",
  "field_recall_repaired",
  "field_f1_repaired",
  "hit_token_limit",
  "relevance",
  "specificity",
  "follow_up_addresses_vague_part",
  "score_validity",
  "accuracy_within_0_2",
  "accuracy",
  "precision",
  "recall",
  "f1",
]);

/** Bars per metric and system with each system's 95% interval as a whisker. */
function barChart(report: EvalReport, group: string): string {
  const metrics = metricNames(report, group).filter((metric) => BOUNDED.has(metric));
  if (metrics.length === 0) return "";
  const systems = report.systems.filter((system) => system.metrics[group]);
  const left = 40;
  const top = 12;
  const height = 200;
  const barWidth = 16;
  const cluster = systems.length * barWidth + 18;
  // Room on the right for the last label, which is drawn rotated past its bars.
  const width = left + metrics.length * cluster + 90;
  const y = (value: number) => top + height * (1 - Math.min(1, Math.max(0, value)));
  const parts: string[] = [];
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${left}" x2="${width}" y1="${y(tick)}" y2="${y(tick)}" class="grid"/><text x="${left - 6}" y="${y(tick) + 4}" text-anchor="end">${tick}</text>`);
  }
  metrics.forEach((metric, m) => {
    const x0 = left + m * cluster + 9;
    systems.forEach((system, s) => {
      const value = system.metrics[group]![metric];
      if (value === undefined || !Number.isFinite(value)) return;
      const x = x0 + s * barWidth;
      const color = PALETTE[report.systems.indexOf(system) % PALETTE.length];
      parts.push(
        `<rect class="bar" x="${x}" y="${y(value)}" width="${barWidth - 3}" height="${Math.max(0.5, y(0) - y(value))}" fill="${color}"><title>${escapeHtml(`${system.name} ${metric} ${formatValue(value)}`)}</title></rect>`,
      );
      const interval = system.intervals[group]?.[metric];
      if (interval && Number.isFinite(interval[0]) && Number.isFinite(interval[1])) {
        const cx = x + (barWidth - 3) / 2;
        parts.push(`<path class="whisker" d="M${cx} ${y(interval[0])}V${y(interval[1])}M${cx - 3} ${y(interval[0])}h6M${cx - 3} ${y(interval[1])}h6"/>`);
      }
    });
    parts.push(`<text class="label" transform="translate(${x0 + (systems.length * barWidth) / 2},${top + height + 10}) rotate(35)">${escapeHtml(metric)}</text>`);
  });
  return `<svg class="chart bars" data-group="${escapeHtml(group)}" viewBox="0 0 ${width} ${top + height + 110}" width="${width}" height="${top + height + 110}" role="img" aria-label="${escapeHtml(group)} metrics">${parts.join("")}</svg>`;
}

/** The training loss (and eval loss) against steps. */
function lossChart(name: string, training: TrainingLog, color: string): string {
  const train = training.loss_curve.filter((point) => point.loss !== undefined) as Array<{ step: number; loss: number }>;
  const evals = training.loss_curve.filter((point) => point.eval_loss !== undefined) as Array<{ step: number; eval_loss: number }>;
  if (train.length === 0 && evals.length === 0) return "";
  const values = [...train.map((point) => point.loss), ...evals.map((point) => point.eval_loss)];
  const steps = [...train, ...evals].map((point) => point.step);
  const [minStep, maxStep] = [Math.min(...steps), Math.max(...steps)];
  const [low, high] = [Math.min(...values) * 0.95, Math.max(...values) * 1.05];
  const left = 50;
  const top = 10;
  const width = 560;
  const height = 220;
  const x = (step: number) => left + (maxStep === minStep ? width / 2 : ((step - minStep) / (maxStep - minStep)) * width);
  const y = (value: number) => top + (high === low ? height / 2 : height * (1 - (value - low) / (high - low)));
  const parts: string[] = [];
  for (let i = 0; i <= 4; i += 1) {
    const value = low + ((high - low) * i) / 4;
    parts.push(`<line x1="${left}" x2="${left + width}" y1="${y(value)}" y2="${y(value)}" class="grid"/><text x="${left - 6}" y="${y(value) + 4}" text-anchor="end">${value.toFixed(2)}</text>`);
  }
  for (let i = 0; i <= 4; i += 1) {
    const step = Math.round(minStep + ((maxStep - minStep) * i) / 4);
    parts.push(`<text x="${x(step)}" y="${top + height + 16}" text-anchor="middle">${step}</text>`);
  }
  if (train.length > 0) {
    parts.push(`<polyline class="loss-line" fill="none" stroke="${color}" stroke-width="2" points="${train.map((point) => `${x(point.step).toFixed(1)},${y(point.loss).toFixed(1)}`).join(" ")}"/>`);
  }
  for (const point of evals) parts.push(`<circle class="eval-point" cx="${x(point.step)}" cy="${y(point.eval_loss)}" r="4" fill="#dc2626"><title>eval_loss ${formatValue(point.eval_loss)} at step ${point.step}</title></circle>`);
  parts.push(`<text x="${left + width / 2}" y="${top + height + 34}" text-anchor="middle">step</text>`);
  return `<figure><svg class="chart loss" viewBox="0 0 ${left + width + 10} ${top + height + 40}" width="${left + width + 10}" height="${top + height + 40}" role="img" aria-label="training loss of ${escapeHtml(name)}">${parts.join("")}</svg><figcaption>Training loss of ${escapeHtml(name)} (line) and eval loss (dots), from its loss_curve.jsonl</figcaption></figure>`;
}

/** The shown examples side by side: the input, the reference and each system's answer; JSON answers field by field, marked against the reference. */
function exampleSection(report: EvalReport, examples: readonly ExampleRecord[], options: ReportOptions): string {
  const perTask = options.examplesPerTask ?? 2;
  const shown = shownExamples(examples, perTask);
  if (shown.length === 0) return "";
  const clip = (text: string) => (text.length > 1500 ? `${text.slice(0, 1500)}…` : text);
  const cards = shown.map((example) => {
    const systems = report.systems.filter((system) => example.outputs[system.name]);
    const input = `<div class="input"><b>input</b><pre>${escapeHtml(inputExcerpt(example.prompt, options.prompts))}</pre></div>`;
    const reference = referenceObject(example);
    let body: string;
    if (reference) {
      const answers = systems.map((system) => differencesOf(example, system.name, reference));
      const head = `<tr><th>field</th><th>reference</th>${systems
        .map((system, i) => {
          const cut = example.outputs[system.name]!.scores.hit_token_limit === 1 ? "; cut at the token limit" : "";
          return `<th>${escapeHtml(system.name)}<br><small>${escapeHtml(answers[i]!.parse + cut)}</small></th>`;
        })
        .join("")}</tr>`;
      const rows = fieldRows(reference, answers).map((field) => {
        const cells = answers.map(({ byField }) => {
          const difference = byField.get(field);
          if (!difference) return "<td></td>";
          const content = difference.items
            ? difference.items.map((item) => `<span class="item ${item.status}" title="${item.status}">${escapeHtml(showValue(item.value, 80))}</span>`).join(" ")
            : difference.status === "missing"
              ? ""
              : escapeHtml(showValue(difference.predicted));
          return `<td class="field ${difference.status}">${content} <i class="tag">${difference.status}</i></td>`;
        });
        const expected = reference[field];
        const shownReference = Array.isArray(expected) ? expected.map((item) => `<span class="item">${escapeHtml(showValue(item, 80))}</span>`).join(" ") : escapeHtml(showValue(expected));
        return `<tr><th>${escapeHtml(field)}</th><td>${shownReference}</td>${cells.join("")}</tr>`;
      });
      const raw = systems.map((system) => `<div class="output"><b>${escapeHtml(system.name)}</b><pre>${escapeHtml(clip(example.outputs[system.name]!.text))}</pre></div>`).join("");
      body = `<table class="fields"><thead>${head}</thead><tbody>${rows.join("")}</tbody></table><details><summary>the answers as written</summary>${raw}</details>`;
    } else {
      const columns = [
        `<div class="output"><b>reference</b><pre>${escapeHtml(clip(example.reference))}</pre></div>`,
        ...systems.map((system) => {
          const output = example.outputs[system.name]!;
          const cut = output.scores.hit_token_limit === 1 ? ", cut at the token limit" : "";
          return `<div class="output"><b>${escapeHtml(system.name)}</b> <small>similarity ${formatValue(output.scores.semantic_similarity)}, ROUGE-L ${formatValue(output.scores.rouge_l)}${cut}</small><pre>${escapeHtml(clip(output.text))}</pre></div>`;
        }),
      ];
      body = `<div class="side" style="grid-template-columns:repeat(${columns.length},minmax(0,1fr))">${columns.join("")}</div>`;
    }
    return `<section class="example"><h3>${escapeHtml(taskWords(example.task))} — test line ${example.line}</h3>${input}${body}</section>`;
  });
  const legend = `<p class="legend"><span class="field same">same as the reference</span> <span class="field different">different</span> <span class="field missing">missing</span> (in the reference, not the answer) <span class="field extra">extra</span> (in the answer, not the reference)</p>`;
  return `<h2>Examples</h2><p><small>The first ${perTask} of each task; every example with its scores is in predictions.jsonl.</small></p>${legend}${cards.join("\n")}`;
}

export function renderHtml(report: EvalReport, examples: readonly ExampleRecord[] = [], options: ReportOptions = {}): string {
  const comparison: Comparison | undefined = report.comparisons[0];
  const legend = report.systems
    .map((system, i) => `<span class="key"><i style="background:${PALETTE[i % PALETTE.length]}"></i>${escapeHtml(system.name)} <small>${escapeHtml(describeSystem(system))}</small></span>`)
    .join("");
  const verdicts = report.comparisons.map((entry) => {
    const lines = (entry.summary ?? []).map((line) => `<li class="${line.startsWith(`${entry.system} is better`) ? "up" : line.startsWith(`${entry.system} is worse`) ? "down" : ""}">${escapeHtml(line)}</li>`);
    return `<div class="verdict"><ul>${lines.join("")}</ul><small>${escapeHtml(entry.verdict)}</small></div>`;
  });
  const sections = reportGroups(report).map((group) => {
    const header = ["metric", ...report.systems.map((system) => system.name), ...(comparison ? [`Δ ${comparison.system} − ${comparison.against} [95% CI]`] : [])];
    const rows = groupRows(report, group)
      .map((row) => `<tr><th>${escapeHtml(row.metric)}</th>${row.values.map((value) => `<td>${value}</td>`).join("")}${row.delta !== undefined ? `<td class="${/better$/.test(row.delta) ? "up" : /worse$/.test(row.delta) ? "down" : ""}">${escapeHtml(row.delta)}</td>` : ""}</tr>`)
      .join("");
    return `<section><h2>${escapeHtml(group === "overall" ? "all tasks" : taskWords(group))} <small>${escapeHtml(group)}</small></h2>${barChart(report, group)}<table><thead><tr>${header.map((cell) => `<th>${escapeHtml(cell)}</th>`).join("")}</tr></thead><tbody>${rows}</tbody></table></section>`;
  });
  const training = report.systems
    .filter((system) => system.training)
    .map((system) => lossChart(system.name, system.training!, PALETTE[report.systems.indexOf(system) % PALETTE.length]!))
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ats-lora evaluation</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#111;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}h3{font-size:1rem;margin:.2rem 0 .4rem}
.verdict{background:#f1f5f9;border-left:4px solid #2563eb;padding:.6rem .9rem;margin:.5rem 0}.verdict ul{margin:0 0 .4rem;padding-left:1.2rem;font-size:15px}
li.up{color:#047857}li.down{color:#b91c1c}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}th:first-child{text-align:left}
td.up{color:#047857}td.down{color:#b91c1c}
svg text{font-size:11px;fill:#333}.grid{stroke:#e5e7eb}.whisker{stroke:#111;stroke-width:1.2}
.key{margin-right:1rem;white-space:nowrap}.key i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
small{color:#555}figure{margin:1rem 0}figcaption{color:#555;font-size:12px}
.example{margin:1rem 0;border:1px solid #e5e7eb;padding:.5rem .8rem}.example summary{cursor:pointer;color:#555}
.input pre{white-space:pre-wrap;background:#fffbeb;padding:.4rem;margin:.2rem 0 .6rem;font-size:12px;max-height:10rem;overflow:auto}
.side{display:grid;gap:.6rem}.output pre{white-space:pre-wrap;background:#f8fafc;padding:.4rem;margin:.2rem 0 .6rem;font-size:12px;max-height:16rem;overflow:auto}
table.fields{width:100%;table-layout:fixed}table.fields td,table.fields th{text-align:left;vertical-align:top;font-size:12px;word-break:break-word}
.field.same{background:#ecfdf5}.field.different{background:#fef3c7}.field.missing{background:#fee2e2}.field.extra{background:#e0f2fe}
.legend .field{padding:0 .3rem}.tag{font-style:normal;font-size:10px;color:#555;margin-left:.2rem}
.item{display:inline-block;padding:0 .25rem;margin:1px;border-radius:3px;background:#f1f5f9}.item.same{background:#a7f3d0}.item.extra{background:#bae6fd}.item.missing{background:#fecaca;text-decoration:line-through}
</style></head><body>
<h1>ats-lora evaluation</h1>
${verdicts.join("\n")}
<p>${report.test_data.examples} examples from <code>${escapeHtml(report.test_data.file)}</code> (${Object.entries(report.test_data.tasks).map(([task, n]) => `${escapeHtml(task)} ${n}`).join(", ")}); ${escapeHtml(generationSettings(report))}; embedder ${escapeHtml(report.embedder.model)}; ${escapeHtml(report.created_at)}</p>
<p>${legend}</p>
${training ? `<h2>Training</h2>${training}` : ""}
${sections.join("\n")}
${exampleSection(report, examples, options)}
<p><small>Bars: each system's metric with its 95% bootstrap interval. Δ: paired bootstrap over the same examples; "better"/"worse" where the interval excludes zero.</small></p>
</body></html>
`;
}

/** The comparison as a compact table for the terminal, then the verdicts in plain words. */
export function renderSummary(report: EvalReport): string {
  const lines: string[] = [];
  const comparison = report.comparisons[0];
  for (const group of reportGroups(report)) {
    lines.push(`${group}:`);
    const rows = groupRows(report, group).filter((row) => row.metric !== "n");
    const width = Math.max(...rows.map((row) => row.metric.length), 6);
    lines.push(`  ${"metric".padEnd(width)}  ${report.systems.map((system) => system.name.padStart(10)).join(" ")}${comparison ? `  Δ ${comparison.system} − ${comparison.against} [95% CI]` : ""}`);
    for (const row of rows) lines.push(`  ${row.metric.padEnd(width)}  ${row.values.map((value) => value.padStart(10)).join(" ")}${row.delta ? `  ${row.delta}` : ""}`);
  }
  for (const entry of report.comparisons) lines.push("", entry.verdict, ...(entry.summary ?? []).map((line) => `  ${line}`));
  return lines.join("\n");
}
