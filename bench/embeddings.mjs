// Benchmark: embedding throughput on this machine, ats-lora's embedder (transformers.js + onnxruntime-node,
// int8 and fp32) side by side in one run with Python sentence-transformers (PyTorch) on the same model and
// the same texts. Run after `bash scripts/setup.sh`: node bench/embeddings.mjs [--texts 1000]
// Prints a Markdown table; paste it into docs/benchmarks.md with the machine it ran on.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Embedder } from "../packages/embeddings/dist/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const count = Number(process.argv[process.argv.indexOf("--texts") + 1]) || 1000;

// Deterministic resume-like texts of about 200 tokens, each different.
const words = fs
  .readFileSync(path.join(root, "data", "ats_docs", "role-backend-engineer.md"), "utf8")
  .split(/\s+/)
  .filter((word) => /^[A-Za-z][A-Za-z,.;-]*$/.test(word));
let state = 12345;
const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31);
const texts = Array.from({ length: count }, (_, i) => {
  const picked = Array.from({ length: 150 }, () => words[next() % words.length]);
  return `Candidate ${i}: ${picked.join(" ")}`;
});
const textsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ats-bench-emb-")), "texts.json");
fs.writeFileSync(textsFile, JSON.stringify(texts));

const rows = [];
let tokens = 0;
for (const dtype of ["int8", "fp32"]) {
  const embedder = await Embedder.load({ dtype, batchSize: 32 });
  if (dtype === "int8") tokens = texts.reduce((sum, text) => sum + embedder.countTokens(text), 0) / texts.length;
  await embedder.embed(texts.slice(0, 32)); // warm-up
  const start = performance.now();
  const result = await embedder.embed(texts);
  const seconds = (performance.now() - start) / 1000;
  rows.push({ name: `ats-lora embedder (transformers.js, onnxruntime-node), ${dtype}`, seconds, truncated: result.truncated });
  await embedder.close();
}

const python = spawnSync(path.join(root, ".venv", "bin", "python"), [path.join(root, "bench", "embeddings_st.py"), textsFile], {
  encoding: "utf8",
});
if (python.status === 0) {
  const result = JSON.parse(python.stdout.trim().split("\n").pop());
  rows.push({ name: `Python sentence-transformers ${result.version} (PyTorch ${result.torch}, ${result.threads} threads), fp32`, seconds: result.seconds, truncated: result.truncated });
} else {
  rows.push({ name: "Python sentence-transformers", error: python.stderr.split("\n").slice(-3).join(" ") });
}

console.log(`${count} texts of ${tokens.toFixed(0)} tokens on average (MiniLM tokenizer), batch 32, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}\n`);
console.log("| embedder | seconds | texts/s | ratio to sentence-transformers |");
console.log("| --- | ---: | ---: | ---: |");
const reference = rows.find((row) => row.name.startsWith("Python") && row.seconds);
for (const row of rows) {
  if (row.error) console.log(`| ${row.name} | failed: ${row.error} | | |`);
  else console.log(`| ${row.name} | ${row.seconds.toFixed(2)} | ${(count / row.seconds).toFixed(1)} | ${reference ? (reference.seconds / row.seconds).toFixed(2) + "×" : "–"} |`);
}
