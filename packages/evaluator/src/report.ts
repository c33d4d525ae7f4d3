import fs from "node:fs";
import path from "node:path";
import type { Comparison, EvalReport, ExampleRecord, SystemReport, TrainingLog } from "./report-types.js";

export interface ReportFiles {
  dir: string;
  json: string;
  markdown: string;
  html: string;
  predictions: string;
}

/** Writes report.json, report.md, report.html (self-contained: inline styles and SVG charts) and predictions.jsonl. */
export function writeReport(report: EvalReport, examples: readonly ExampleRecord[], dir: string): ReportFiles {
  fs.mkdirSync(dir, { recursive: true });
  const files: ReportFiles = {
    dir: path.resolve(dir),
    json: path.resolve(dir, "report.json"),
    markdown: path.resolve(dir, "report.md"),
    html: path.resolve(dir, "report.html"),
    predictions: path.resolve(dir, "predictions.jsonl"),
  };
  fs.writeFileSync(files.json, `${JSON.stringify(report, finiteOrNull, 2)}\n`);
  fs.writeFileSync(files.markdown, renderMarkdown(report));
  fs.writeFileSync(files.html, renderHtml(report, examples));
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

export function renderMarkdown(report: EvalReport): string {
  const lines: string[] = [
    "# ats-lora evaluation",
    "",
    `- test data: ${report.test_data.file} (${report.test_data.examples} examples: ${Object.entries(report.test_data.tasks).map(([task, n]) => `${task} ${n}`).join(", ")})`,
    `- generation: greedy, max_new_tokens ${report.settings.max_new_tokens}, seed ${report.settings.seed}${report.settings.rag ? `, rag ${report.settings.rag.store} (top ${report.settings.rag.top_k}, ${report.settings.rag.mode})` : ""}`,
    `- embedder: ${report.embedder.model} (${report.embedder.dtype})`,
    `- systems: ${report.systems.map((system) => `${system.name} (${describeSystem(system)})`).join("; ")}`,
    `- ${report.created_at}`,
    "",
  ];
  for (const comparison of report.comparisons) lines.push(`**${comparison.verdict}**`, "");
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
  lines.push(
    "Metrics: semantic_similarity is the embedder's cosine of output and reference; rouge_l the longest-common-subsequence F1 of their words; loss and perplexity the model's on the reference; for match scores, accuracy/precision/recall/f1 decide \"match\" at 0.5. Intervals: paired bootstrap over examples.",
    "",
  );
  return lines.join("\n");
}

function describeSystem(system: SystemReport): string {
  if (system.model) return `${system.role}: ${system.model.model}${system.model.base ? ` on ${system.model.base}` : ""}`;
  if (system.file) return `predictions: ${system.file}`;
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

/** A few examples per task with every system's output beside the reference: what the numbers summarise. */
function exampleSection(report: EvalReport, examples: readonly ExampleRecord[], perTask = 2): string {
  const shown: ExampleRecord[] = [];
  const count = new Map<string, number>();
  for (const example of examples) {
    if ((count.get(example.task) ?? 0) >= perTask) continue;
    count.set(example.task, (count.get(example.task) ?? 0) + 1);
    shown.push(example);
  }
  if (shown.length === 0) return "";
  const clip = (text: string) => (text.length > 700 ? `${text.slice(0, 700)}…` : text);
  const cards = shown.map((example) => {
    const cells = report.systems
      .filter((system) => example.outputs[system.name])
      .map((system) => {
        const output = example.outputs[system.name]!;
        return `<div class="output"><b>${escapeHtml(system.name)}</b> <small>similarity ${formatValue(output.scores.semantic_similarity)}, ROUGE-L ${formatValue(output.scores.rouge_l)}</small><pre>${escapeHtml(clip(output.text))}</pre></div>`;
      })
      .join("");
    return `<details class="example"><summary>${escapeHtml(example.task)} — test line ${example.line}</summary><div class="output"><b>reference</b><pre>${escapeHtml(clip(example.reference))}</pre></div>${cells}</details>`;
  });
  return `<h2>Examples</h2><p><small>The first ${perTask} of each task; every example with its scores is in predictions.jsonl.</small></p>${cards.join("\n")}`;
}

export function renderHtml(report: EvalReport, examples: readonly ExampleRecord[] = []): string {
  const comparison: Comparison | undefined = report.comparisons[0];
  const legend = report.systems
    .map((system, i) => `<span class="key"><i style="background:${PALETTE[i % PALETTE.length]}"></i>${escapeHtml(system.name)} <small>${escapeHtml(describeSystem(system))}</small></span>`)
    .join("");
  const sections = reportGroups(report).map((group) => {
    const header = ["metric", ...report.systems.map((system) => system.name), ...(comparison ? [`Δ ${comparison.system} − ${comparison.against} [95% CI]`] : [])];
    const rows = groupRows(report, group)
      .map((row) => `<tr><th>${escapeHtml(row.metric)}</th>${row.values.map((value) => `<td>${value}</td>`).join("")}${row.delta !== undefined ? `<td class="${/better$/.test(row.delta) ? "up" : /worse$/.test(row.delta) ? "down" : ""}">${escapeHtml(row.delta)}</td>` : ""}</tr>`)
      .join("");
    return `<section><h2>${escapeHtml(group)}</h2>${barChart(report, group)}<table><thead><tr>${header.map((cell) => `<th>${escapeHtml(cell)}</th>`).join("")}</tr></thead><tbody>${rows}</tbody></table></section>`;
  });
  const training = report.systems
    .filter((system) => system.training)
    .map((system) => lossChart(system.name, system.training!, PALETTE[report.systems.indexOf(system) % PALETTE.length]!))
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ats-lora evaluation</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1000px;color:#111;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.verdict{background:#f1f5f9;border-left:4px solid #2563eb;padding:.6rem .9rem;margin:.5rem 0}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}th:first-child{text-align:left}
td.up{color:#047857}td.down{color:#b91c1c}
svg text{font-size:11px;fill:#333}.grid{stroke:#e5e7eb}.whisker{stroke:#111;stroke-width:1.2}
.key{margin-right:1rem;white-space:nowrap}.key i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
small{color:#555}figure{margin:1rem 0}figcaption{color:#555;font-size:12px}
.example{margin:.4rem 0;border:1px solid #e5e7eb;padding:.3rem .6rem}.example summary{cursor:pointer;font-weight:600}
.output pre{white-space:pre-wrap;background:#f8fafc;padding:.4rem;margin:.2rem 0 .6rem;font-size:12px;max-height:16rem;overflow:auto}
</style></head><body>
<h1>ats-lora evaluation</h1>
<p>${report.test_data.examples} examples from <code>${escapeHtml(report.test_data.file)}</code> (${Object.entries(report.test_data.tasks).map(([task, n]) => `${escapeHtml(task)} ${n}`).join(", ")}); greedy generation, max_new_tokens ${report.settings.max_new_tokens}, seed ${report.settings.seed}; embedder ${escapeHtml(report.embedder.model)}; ${escapeHtml(report.created_at)}</p>
<p>${legend}</p>
${report.comparisons.map((entry) => `<p class="verdict">${escapeHtml(entry.verdict)}</p>`).join("\n")}
${training ? `<h2>Training</h2>${training}` : ""}
${sections.join("\n")}
${exampleSection(report, examples)}
<p><small>Bars: each system's metric with its 95% bootstrap interval. Δ: paired bootstrap over the same examples; "better"/"worse" where the interval excludes zero.</small></p>
</body></html>
`;
}

/** The comparison as a compact table for the terminal. */
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
  for (const entry of report.comparisons) lines.push("", entry.verdict);
  return lines.join("\n");
}
