// Benchmark: the knowledge store's FAISS index through faiss-node (as ats-lora builds it: scripts/build-faiss-node.sh
// and patches/faiss-node@0.5.1.patch), side by side in one run with Python faiss-cpu on the same vectors:
// index build time, single-query latency p50/p95, and HNSW recall@10 against exact search.
// Run after `bash scripts/setup.sh`: node bench/rag.mjs [--sizes 10000,100000] [--queries 200]
// Prints a Markdown table; paste it into docs/benchmarks.md with the machine it ran on.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { addVectors, loadFaiss, searchVector } from "../packages/rag/dist/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, fallback) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback);
const sizes = arg("--sizes", "10000,100000").split(",").map(Number);
const queryCount = Number(arg("--queries", "200"));
const DIM = 384;
const K = 10;
const EF_SEARCH = [16, 64];

// Embedding-like vectors: sentence embeddings vary along far fewer directions than their 384 dimensions, so
// these are a seeded random projection of 32-dimensional latent points plus a little noise, normalised
// (isotropic random vectors would make every neighbour almost equally near and any ANN index look broken).
const LATENT = 32;
function vectors(count, seed) {
  const random = (s) => {
    let state = s >>> 0;
    const uniform = () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  };
  const projection = new Float32Array(DIM * LATENT).map(random(1)); // the same for data and queries
  const normal = random(seed);
  const out = new Float32Array(count * DIM);
  const latent = new Float32Array(LATENT);
  for (let i = 0; i < count; i += 1) {
    for (let j = 0; j < LATENT; j += 1) latent[j] = normal();
    let norm = 0;
    for (let d = 0; d < DIM; d += 1) {
      let value = 0.3 * normal();
      for (let j = 0; j < LATENT; j += 1) value += projection[d * LATENT + j] * latent[j];
      out[i * DIM + d] = value;
      norm += value * value;
    }
    norm = Math.sqrt(norm);
    for (let d = 0; d < DIM; d += 1) out[i * DIM + d] /= norm;
  }
  return out;
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const row = (i, data) => data.subarray(i * DIM, (i + 1) * DIM);

function latencies(index, queries, k) {
  const times = [];
  const results = [];
  for (let q = 0; q < queryCount; q += 1) {
    const start = performance.now();
    results.push(searchVector(index, row(q, queries), k).map(([label]) => label));
    times.push(performance.now() - start);
  }
  return { p50: percentile(times, 50), p95: percentile(times, 95), results };
}

function recall(approximate, exact) {
  let found = 0;
  approximate.forEach((labels, q) => (found += labels.filter((label) => exact[q].includes(label)).length));
  return found / (exact.length * K);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-bench-rag-"));
const faiss = loadFaiss();
const results = { node: {}, python: {} };
for (const size of sizes) {
  const data = vectors(size, 7);
  const queries = vectors(queryCount, 99);
  fs.writeFileSync(path.join(dir, `data-${size}.f32`), data);
  fs.writeFileSync(path.join(dir, `queries-${size}.f32`), queries);
  const figures = {};
  let start = performance.now();
  const flat = faiss.Index.fromFactory(DIM, "Flat", faiss.MetricType.METRIC_INNER_PRODUCT);
  addVectors(flat, data);
  figures.flat_build_s = (performance.now() - start) / 1000;
  latencies(flat, queries, K); // warm-up
  const exact = latencies(flat, queries, K);
  figures.flat_query_p50_ms = exact.p50;
  figures.flat_query_p95_ms = exact.p95;
  if (size === sizes[0]) {
    // faiss-node's original input path (one N-API call per number), for the record.
    start = performance.now();
    new faiss.IndexFlatIP(DIM).add(Array.from(data));
    figures.flat_build_plain_array_s = (performance.now() - start) / 1000;
  }
  start = performance.now();
  const hnsw = faiss.Index.fromFactory(DIM, "HNSW32,Flat", faiss.MetricType.METRIC_INNER_PRODUCT);
  addVectors(hnsw, data);
  figures.hnsw_build_s = (performance.now() - start) / 1000;
  for (const ef of EF_SEARCH) {
    hnsw.setParameter("efSearch", ef);
    latencies(hnsw, queries, K);
    const approximate = latencies(hnsw, queries, K);
    figures[`hnsw_ef${ef}_query_p50_ms`] = approximate.p50;
    figures[`hnsw_ef${ef}_query_p95_ms`] = approximate.p95;
    figures[`hnsw_ef${ef}_recall_at_10`] = recall(approximate.results, exact.results);
  }
  results.node[size] = figures;
}

const python = spawnSync(path.join(root, ".venv", "bin", "python"), [path.join(root, "bench", "rag_faiss.py"), dir, sizes.join(","), String(queryCount)], {
  encoding: "utf8",
  stdio: ["ignore", "pipe", "inherit"],
});
if (python.status !== 0) throw new Error(`bench/rag_faiss.py failed (${python.status})`);
const py = JSON.parse(python.stdout);
results.python = py.results;

const label = {
  flat_build_s: "Flat: add all vectors (s)",
  flat_build_plain_array_s: "Flat: add from a plain JS Array, faiss-node's original path (s)",
  flat_query_p50_ms: "Flat: exact top-10 query p50 (ms)",
  flat_query_p95_ms: "Flat: exact top-10 query p95 (ms)",
  hnsw_build_s: "HNSW32: build (s)",
};
for (const ef of EF_SEARCH) {
  label[`hnsw_ef${ef}_query_p50_ms`] = `HNSW32 efSearch ${ef}: query p50 (ms)`;
  label[`hnsw_ef${ef}_query_p95_ms`] = `HNSW32 efSearch ${ef}: query p95 (ms)`;
  label[`hnsw_ef${ef}_recall_at_10`] = `HNSW32 efSearch ${ef}: recall@10 vs exact`;
}
const format = (key, value) => (value === undefined ? "–" : key.includes("recall") ? value.toFixed(3) : key.endsWith("_s") ? value.toFixed(3) : value.toFixed(3));
const lines = [
  `${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, faiss-node 0.5.1 (patched) on faiss 1.7.3 built by scripts/build-faiss-node.sh; Python faiss-cpu ${py.version} (${py.compile_options.trim()}); ${DIM} dimensions, ${queryCount} queries one at a time, top ${K}.`,
  "",
];
for (const size of sizes) {
  lines.push(`**${size.toLocaleString("en-US")} vectors**`, "", "| figure | ats-lora (faiss-node) | faiss-cpu (Python) | ratio |", "|---|---:|---:|---:|");
  for (const key of Object.keys(label)) {
    const ours = results.node[size][key];
    const theirs = results.python[size][key];
    if (ours === undefined) continue;
    if (key.includes("build")) {
      const perSecond = (seconds) => (seconds === undefined ? "" : ` (${Math.round(size / seconds).toLocaleString("en-US")}/s)`);
      lines.push(`| ${label[key]} | ${format(key, ours)}${perSecond(ours)} | ${theirs === undefined ? "–" : `${format(key, theirs)}${perSecond(theirs)}`} | ${theirs === undefined || key.includes("plain") ? `${(ours / results.python[size].flat_build_s).toFixed(0)}× faiss-cpu's add` : `${(ours / theirs).toFixed(2)}×`} |`);
    } else if (key.includes("recall")) {
      lines.push(`| ${label[key]} | ${format(key, ours)} | ${format(key, theirs)} | ${(ours - theirs >= 0 ? "+" : "") + (ours - theirs).toFixed(3)} |`);
    } else {
      lines.push(`| ${label[key]} | ${format(key, ours)} | ${format(key, theirs)} | ${(ours / theirs).toFixed(2)}× |`);
    }
  }
  lines.push("");
}
process.stdout.write(`${lines.join("\n")}\n`);
fs.rmSync(dir, { recursive: true, force: true });
