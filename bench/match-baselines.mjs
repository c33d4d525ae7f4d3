// Quality of the match-score baselines on the bundled data: every match_score interaction of
// data/samples/interactions.jsonl with a reviewer's reference score (metadata.reference_score) becomes a test row
// whose completion is {"match_score": reference}; the TF-IDF matcher is trained (`match train`) on the other
// bundled resumes and postings (data/samples/one_page_resumes.jsonl's match_score rows), so no test text shaped
// its vocabulary; `eval --baseline tfidf --baseline embedding` scores both baselines against the test rows.
// Run after `bash scripts/setup.sh`: node bench/match-baselines.mjs
// Prints the report's match_score metrics; the figures are quoted in README ("eval in detail").
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildPrompt, loadConfig } from "../packages/core/dist/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const config = loadConfig({ env: {} });
function matchRows(file) {
  const rows = [];
  for (const line of fs.readFileSync(path.join(root, "data", "samples", file), "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const interaction = JSON.parse(line);
    const reference = interaction.metadata?.reference_score;
    if (interaction.task !== "match_score" || typeof reference !== "number") continue;
    rows.push({
      prompt: buildPrompt({ task: interaction.task, query: interaction.query, context: interaction.context }, config.prompts),
      completion: JSON.stringify({ match_score: reference }),
      task: "match_score",
    });
  }
  return rows;
}
const rows = matchRows("interactions.jsonl");
const trainRows = matchRows("one_page_resumes.jsonl");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-match-"));
const testFile = path.join(dir, "match.jsonl");
const trainFile = path.join(dir, "matcher-train.jsonl");
fs.writeFileSync(testFile, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
fs.writeFileSync(trainFile, trainRows.map((row) => JSON.stringify(row)).join("\n") + "\n");
const trained = spawnSync(process.execPath, [path.join(root, "packages", "cli", "dist", "bin.js"), "--workdir", dir, "--quiet", "match", "train", "--data", trainFile, "--json"], { encoding: "utf8" });
if (trained.status !== 0) {
  process.stderr.write(trained.stderr);
  process.exit(trained.status ?? 1);
}
const matcher = JSON.parse(trained.stdout);
process.stdout.write(`TF-IDF matcher trained on ${trainRows.length} match-score rows (${matcher.card.metrics.vocabulary} terms); training-row Spearman ${matcher.card.metrics.train.spearman.toFixed(3)}\n`);
const run = spawnSync(
  process.execPath,
  [path.join(root, "packages", "cli", "dist", "bin.js"), "--workdir", dir, "--quiet", "eval", "--test_data", testFile, "--baseline", "tfidf", "--baseline", "embedding", "--json"],
  { encoding: "utf8" },
);
if (run.status !== 0) {
  process.stderr.write(run.stderr);
  process.exit(run.status ?? 1);
}
const report = JSON.parse(run.stdout);
const keys = ["n_scored", "mae", "rmse", "r2", "pearson", "spearman", "accuracy_within_0_2", "accuracy", "precision", "recall", "f1"];
process.stdout.write(`${rows.length} match-score interactions with a reference score\n\n| baseline | ${keys.join(" | ")} |\n| --- | ${keys.map(() => "---:").join(" | ")} |\n`);
for (const system of report.systems) {
  const metrics = system.metrics.match_score;
  process.stdout.write(`| ${system.name} | ${keys.map((key) => (typeof metrics[key] === "number" ? (Number.isInteger(metrics[key]) ? metrics[key] : metrics[key].toFixed(3)) : "–")).join(" | ")} |\n`);
}
const comparison = report.comparisons[0];
const spearman = comparison.metrics.find((metric) => metric.group === "match_score" && metric.metric === "spearman");
if (spearman) process.stdout.write(`\nSpearman ${comparison.system} − ${comparison.against}: ${spearman.delta.toFixed(3)} [${spearman.low.toFixed(3)}, ${spearman.high.toFixed(3)}]\n`);
