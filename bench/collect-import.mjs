// Benchmark: `collect import` throughput and peak memory at growing file sizes (flat memory = peak RSS that
// does not grow with the file). Run after `pnpm build`: node bench/collect-import.mjs [--sizes 10000,100000,300000]
// Prints a Markdown table; paste it into docs/benchmarks.md with the machine it ran on.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const sizesArg = process.argv.indexOf("--sizes");
const sizes = (sizesArg === -1 ? "10000,100000,300000" : process.argv[sizesArg + 1]).split(",").map(Number);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-bench-import-"));

const resume = (i) =>
  `Candidate ${i}\ncandidate${i}@example.com | +1 415 555 ${String(i % 10000).padStart(4, "0")}\n` +
  "Senior data engineer with seven years of Spark, Airflow and Kafka; led a migration of 40 pipelines to " +
  "Kubernetes and cut batch latency by 35%. ".repeat(6);

function writeFile(n) {
  const file = path.join(dir, `interactions-${n}.jsonl`);
  const fd = fs.openSync(file, "w");
  let buffer = "";
  for (let i = 0; i < n; i += 1) {
    buffer += `${JSON.stringify({
      id: `bench-${i}`,
      created_at: "2026-10-01T08:00:00Z",
      task: "resume_analysis",
      query: "Analyse this resume for the Senior Data Engineer position: strengths, gaps, red flags and fit.",
      context: [resume(i), "Senior Data Engineer: Spark, Airflow and Kubernetes required; Kafka a plus."],
      response: "Strengths: seven years of Spark and Airflow. Gaps: none on the must-haves. Fit: strong.",
      model: "mistral-7b-ats-v0",
      metadata: { n: i },
      feedback: { rating: (i % 5) + 1, correct_points: ["Spark"], incorrect_points: [], ideal_response: null, reviewer: "bench" },
    })}\n`;
    if (buffer.length > 1 << 20) {
      fs.writeSync(fd, buffer);
      buffer = "";
    }
  }
  fs.writeSync(fd, buffer);
  fs.closeSync(fd);
  return file;
}

const rows = [];
for (const n of sizes) {
  const file = writeFile(n);
  const db = path.join(dir, `store-${n}`, "feedback.sqlite");
  const importOnce = (nodeFlags) => {
    fs.rmSync(path.dirname(db), { recursive: true, force: true });
    const run = spawnSync(process.execPath, [...nodeFlags, path.join(here, "import-once.mjs"), file, db], { encoding: "utf8" });
    if (run.status !== 0) throw new Error(run.stderr);
    return JSON.parse(run.stdout);
  };
  const free = importOnce([]);
  // The same import with the JavaScript heap capped at 32 MB: it only completes if nothing grows with the file.
  const capped = importOnce(["--max-old-space-size=32"]);
  rows.push({ n, mb: fs.statSync(file).size / 1e6, ...free, cappedRssKb: capped.maxRssKb });
  fs.rmSync(file);
  fs.rmSync(path.dirname(db), { recursive: true });
}

console.log(`collect import, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.version}\n`);
console.log("| lines | file MB | seconds | lines/s | MB/s | peak RSS MB | peak RSS MB, JS heap capped at 32 MB |");
console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const row of rows) {
  console.log(
    `| ${row.n.toLocaleString("en")} | ${row.mb.toFixed(0)} | ${row.seconds.toFixed(2)} | ${Math.round(row.n / row.seconds).toLocaleString("en")} | ${(row.mb / row.seconds).toFixed(0)} | ${(row.maxRssKb / 1024).toFixed(0)} | ${(row.cappedRssKb / 1024).toFixed(0)} |`,
  );
}
fs.rmSync(dir, { recursive: true, force: true });
