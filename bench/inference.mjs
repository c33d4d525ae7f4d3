// Greedy generation speed, node-llama-cpp against the Python worker, side by side in one run: the same model
// (SmolLM2-135M-Instruct: its Q4_1 GGUF in node-llama-cpp, the same weights dequantized to fp32 in transformers),
// the same chat-templated prompts, the same token limit, on this machine. Run after `bash scripts/setup.sh`:
//   node bench/inference.mjs [--prompts 12] [--max-tokens 64]
// Prints a Markdown table for docs/benchmarks.md.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadConfig, promptMessages, workdirPaths } from "../packages/core/dist/index.js";
import { disposeLlama, LocalModel } from "../packages/inference/dist/index.js";
import { pullModel } from "../packages/models/dist/index.js";
import { WorkerClient } from "../packages/worker/dist/index.js";

const { values } = parseArgs({ options: { prompts: { type: "string", default: "12" }, "max-tokens": { type: "string", default: "64" }, workdir: { type: "string" } } });
const count = Number(values.prompts);
const maxTokens = Number(values["max-tokens"]);
const workdir = values.workdir ?? fs.mkdtempSync(path.join(os.tmpdir(), "ats-bench-inference-"));
const context = { paths: workdirPaths(workdir), config: loadConfig({ env: {} }) };

const roles = ["backend engineer", "nurse", "data analyst", "UX designer", "accountant", "warehouse supervisor", "teacher", "site reliability engineer"];
const asks = ["Write two interview questions for a", "List the key skills of a", "Describe a strong resume summary for a", "What should a cover letter say for a"];
const prompts = Array.from({ length: count }, (_, i) => `${asks[i % asks.length]} ${roles[i % roles.length]}.`);

const pulled = await pullModel({ name: "smollm2-135m-instruct" }, context);
const rows = [];

// node-llama-cpp: one conversation at a time, then four at once over one context's sequences.
for (const sequences of [1, 4]) {
  const model = await LocalModel.load({ name: pulled.name, base: pulled.weights, adapters: [] }, { sequences, gpu: false });
  await model.generate([promptMessages("Warm up.")], { maxTokens: 8, temperature: 0 });
  const started = performance.now();
  const generated = await model.generate(prompts.map((prompt) => promptMessages(prompt)), { maxTokens, temperature: 0 });
  const seconds = (performance.now() - started) / 1000;
  const tokens = generated.reduce((sum, generation) => sum + generation.tokens, 0);
  rows.push({ engine: `node-llama-cpp 3.21.1, Q4_1 GGUF, ${sequences} sequence${sequences > 1 ? "s" : ""}`, seconds, tokens, device: model.device });
  await model.dispose();
}

// The worker: transformers + PyTorch, one prompt at a time (how eval --engine worker generates).
const { client, info } = await WorkerClient.start({ logFile: path.join(workdir, "bench-worker.log") });
await client.request("generate", { model: pulled.path, prompts: ["Warm up."], max_new_tokens: 8, temperature: 0, seed: 1 });
const started = performance.now();
const result = await client.request("generate", { model: pulled.path, prompts, max_new_tokens: maxTokens, temperature: 0, seed: 1 });
const seconds = (performance.now() - started) / 1000;
rows.push({
  engine: `Python worker: transformers ${info.packages.transformers}, torch ${info.packages.torch}, fp32`,
  seconds,
  tokens: result.outputs.reduce((sum, output) => sum + output.tokens, 0),
  device: info.device,
});
await client.close();
await disposeLlama();

const worker = rows.at(-1);
const workerRate = worker.tokens / worker.seconds;
console.log(`${count} prompts, greedy, at most ${maxTokens} new tokens each; ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), Node ${process.version}\n`);
console.log("| engine | device | seconds | tokens | tokens/s | × the worker |");
console.log("| --- | --- | ---: | ---: | ---: | ---: |");
for (const row of rows) {
  const rate = row.tokens / row.seconds;
  console.log(`| ${row.engine} | ${row.device} | ${row.seconds.toFixed(2)} | ${row.tokens} | ${rate.toFixed(1)} | ${(rate / workerRate).toFixed(2)}× |`);
}
