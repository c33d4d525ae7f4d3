import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildPrompt, fingerprintBase, loadConfig, workdirPaths, writeModelCard, type OperationContext } from "@ats-lora/core";
import { feedbackStats, importFeedback, listInteractions, modelRatings } from "@ats-lora/feedback";
import { LocalModel, type LocalModelSpec, type PromptInput } from "@ats-lora/inference";
import { testModelFile, writeLoraAdapter } from "@ats-lora/inference/test-support";
import { promoteModel, rollbackModel } from "@ats-lora/models";
import OpenAI from "openai";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INTERACTION_ID_HEADER, MODEL_HEADER } from "./app.js";
import { isLoopback, startServer, type RunningServer } from "./serve.js";

// A real server on an ephemeral loopback port, SmolLM2-135M-Instruct (GGUF) as the base and a LoRA GGUF adapter
// on it, called through the official openai client and plain fetch.

let base: LocalModelSpec;
let adapter: LocalModelSpec;
let server: RunningServer;
let context: OperationContext;
let client: OpenAI;

beforeAll(async () => {
  const modelFile = await testModelFile();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-serve-"));
  // A random update of every query projection: answers that differ from the base's.
  const adapterFile = await writeLoraAdapter(path.join(dir, "noisy.gguf"), modelFile, { bScale: 1 });
  base = { name: "smollm2", base: modelFile, adapters: [] };
  adapter = { name: "noisy", base: modelFile, adapters: [{ name: "noisy", path: adapterFile }] };
  context = { paths: workdirPaths(path.join(dir, "workdir")), config: loadConfig({ env: {} }) };
  server = await startServer({ host: "127.0.0.1", port: 0, base, adapters: [adapter], token: null, version: "test" }, context);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "not-needed-on-loopback", maxRetries: 0 });
}, 180_000);

afterAll(async () => {
  await server?.close();
});

/** The inference room's own greedy answer, from a model loaded apart from the server's. */
async function directAnswer(spec: LocalModelSpec, prompt: PromptInput, maxTokens: number): Promise<string> {
  const model = await LocalModel.load(spec);
  try {
    const [generation] = await model.generate([prompt], { maxTokens, temperature: 0 });
    return generation!.text;
  } finally {
    await model.dispose();
  }
}

async function post(route: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${server.url}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown>, headers: response.headers };
}

const QUESTION_TEXT = "Name one programming language.";
const QUESTION = [{ role: "user" as const, content: QUESTION_TEXT }];

describe("serve: OpenAI-compatible completions", () => {
  it("lists the base and each adapter", async () => {
    const models = await client.models.list();
    // The router's id last: an A/B split, a model per task, else the base.
    expect(models.data.map((model) => model.id)).toEqual(["smollm2", "noisy", "ats"]);
    expect(models.data[1]).toMatchObject({ object: "model", owned_by: "ats-lora", parent: "smollm2" });
  });

  it("answers greedily as the inference room does, from the base and from the adapter, never mixing them up", async () => {
    const [fromBase, fromAdapter] = await Promise.all([
      client.chat.completions.create({ model: "smollm2", messages: QUESTION, max_tokens: 24, temperature: 0 }),
      client.chat.completions.create({ model: "noisy", messages: QUESTION, max_tokens: 24, temperature: 0 }),
    ]);
    const baseText = fromBase.choices[0]!.message.content!;
    const adapterText = fromAdapter.choices[0]!.message.content!;
    expect(baseText).toBe(await directAnswer(base, QUESTION, 24));
    expect(adapterText).toBe(await directAnswer(adapter, QUESTION, 24));
    expect(adapterText).not.toBe(baseText);
    expect(fromAdapter.model).toBe("noisy");
    expect(fromBase.usage!.prompt_tokens).toBeGreaterThan(5);
    expect(fromBase.usage!.total_tokens).toBe(fromBase.usage!.prompt_tokens + fromBase.usage!.completion_tokens);
    expect(["stop", "length"]).toContain(fromBase.choices[0]!.finish_reason);
  });

  it("streams the same answer as server-sent events, with the interaction id in the header and the chunks", async () => {
    const whole = await client.chat.completions.create({ model: "smollm2", messages: QUESTION, max_tokens: 24 });
    const { data: stream, response } = await client.chat.completions.create({ model: "smollm2", messages: QUESTION, max_tokens: 24, stream: true, stream_options: { include_usage: true } }).withResponse();
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    const ids = new Set<unknown>();
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
      ids.add((chunk as unknown as { interaction_id: unknown }).interaction_id);
    }
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    expect(usage).toEqual(whole.usage);
    const id = response.headers.get(INTERACTION_ID_HEADER);
    expect(id).toMatch(/^ix_/);
    expect([...ids]).toEqual([id]);
    const stored = (await listInteractions({ status: "all" }, context)).find(({ interaction }) => interaction.id === id);
    expect(stored?.interaction).toMatchObject({ response: text, model: "smollm2", query: QUESTION_TEXT });
  });

  it("continues a raw prompt on /v1/completions as the inference room does", async () => {
    const prompt = "The three primary colours are";
    const completion = await client.completions.create({ model: "smollm2", prompt, max_tokens: 12 });
    expect(completion.choices[0]!.text).toBe(await directAnswer(base, { raw: prompt }, 12));
    expect(completion.choices[0]!.finish_reason).toBe("length");
    expect(completion.usage!.completion_tokens).toBe(12);
  });

  it("honours stop texts", async () => {
    const completion = await client.completions.create({ model: "smollm2", prompt: "Count: 1, 2, 3, 4, 5,", max_tokens: 20, stop: ["8"] });
    expect(completion.choices[0]!.text).not.toContain("8");
    expect(completion.choices[0]!.finish_reason).toBe("stop");
  });
});

describe("serve: interactions and feedback", () => {
  it("stores each answer as an interaction whose id takes a review, which the stats count", async () => {
    const before = await feedbackStats({}, context);
    const { data, response } = await client.chat.completions.create({ model: "noisy", messages: QUESTION, max_tokens: 8 }).withResponse();
    const id = (data as unknown as { interaction_id: string }).interaction_id;
    expect(response.headers.get(INTERACTION_ID_HEADER)).toBe(id);
    const review = await post("/api/feedback", { interaction_id: id, rating: 2, correct_points: ["names a language"], incorrect_points: ["too long"], ideal_response: "Python.", reviewer: "ana" });
    expect(review.status).toBe(201);
    expect(review.json).toEqual({ status: "success", feedback_id: expect.stringMatching(/^fb_/) });
    const after = await feedbackStats({}, context);
    expect(after.interactions).toBe(before.interactions + 1);
    expect(after.feedback).toBe(before.feedback + 1);
    expect(after.reviewed).toBe(before.reviewed + 1);
    const stats = await (await fetch(`${server.url}/api/stats`)).json();
    expect(stats).toMatchObject({ feedback: after.feedback, reviewed: after.reviewed });
  });

  it("takes the task from the body, the X-ATS-Task header or the prompt's instruction, and the prompt apart into context and query", async () => {
    const resume = "ANA LIMA\nSão Paulo | ana@example.com\nSKILLS\nSQL, Python";
    const built = buildPrompt({ task: "resume_parse", query: "Parse this resume.", context: [resume] }, context.config.prompts);
    const fromPrompt = await post("/v1/chat/completions", { model: "smollm2", messages: [{ role: "user", content: built }], max_tokens: 4 });
    const fromHeader = await post("/v1/chat/completions", { model: "smollm2", messages: QUESTION, max_tokens: 4 }, { "x-ats-task": "interview_question" });
    const fromBody = await post("/v1/completions", { model: "smollm2", prompt: "Score: ", max_tokens: 4, task: "match_score" });
    const stored = new Map((await listInteractions({ status: "all" }, context)).map(({ interaction }) => [interaction.id, interaction]));
    expect(stored.get(fromPrompt.json.interaction_id as string)).toMatchObject({ task: "resume_parse", query: "Parse this resume.", context: [resume] });
    expect(stored.get(fromHeader.json.interaction_id as string)).toMatchObject({ task: "interview_question", query: QUESTION_TEXT, context: [] });
    expect(stored.get(fromBody.json.interaction_id as string)).toMatchObject({ task: "match_score", query: "Score: ", metadata: expect.objectContaining({ source: "serve", endpoint: "/v1/completions", completion_tokens: 4 }) });
    const queue = await fetch(`${server.url}/api/interactions?status=unreviewed&task=match_score`);
    const listed = (await queue.json()) as { data: Array<{ id: string; task: string; feedback: unknown[] }> };
    expect(listed.data.map((row) => row.id)).toContain(fromBody.json.interaction_id);
    expect(listed.data.every((row) => row.task === "match_score" && row.feedback.length === 0)).toBe(true);
  });

  it("records an answer produced elsewhere, and stores nothing when asked not to", async () => {
    const before = await feedbackStats({}, context);
    const recorded = await post("/api/interactions", { task: "match_score", query: "Score the candidate.", context: ["Job: SRE", "Resume: …"], response: '{"match_score": 0.4}', model: "ats-api-v1" });
    expect(recorded.status).toBe(201);
    const unstored = await post("/v1/chat/completions", { model: "smollm2", messages: QUESTION, max_tokens: 4, store: false });
    expect(unstored.status).toBe(200);
    expect(unstored.json.interaction_id).toBeNull();
    expect(unstored.headers.get(INTERACTION_ID_HEADER)).toBeNull();
    const after = await feedbackStats({}, context);
    expect(after.interactions).toBe(before.interactions + 1);
    const stored = (await listInteractions({ status: "unreviewed", task: "match_score" }, context)).find(({ interaction }) => interaction.id === recorded.json.interaction_id);
    expect(stored?.interaction).toMatchObject({ model: "ats-api-v1", context: ["Job: SRE", "Resume: …"], metadata: { source: "api" } });
  });

  it("answers bad requests with the status and field, and writes nothing", async () => {
    const { data } = await client.chat.completions.create({ model: "smollm2", messages: QUESTION, max_tokens: 2 }).withResponse();
    const id = (data as unknown as { interaction_id: string }).interaction_id;
    const before = await feedbackStats({}, context);
    const cases: Array<[string, unknown, number, string | null]> = [
      ["/api/feedback", { interaction_id: id, rating: 6 }, 422, "rating"],
      ["/api/feedback", { interaction_id: id, rating: "5" }, 422, "rating"],
      ["/api/feedback", { interaction_id: id, rating: 3, correct_points: "good" }, 422, "correct_points"],
      ["/api/feedback", { interaction_id: id, rating: 3, ideal_response: "" }, 422, "ideal_response"],
      ["/api/feedback", { rating: 3 }, 422, "interaction_id"],
      ["/api/feedback", { interaction_id: "ix_nothing", rating: 3 }, 404, null],
      ["/api/feedback", "{not json", 400, null],
      ["/api/interactions", { query: "q" }, 422, "response"],
      ["/v1/chat/completions", { model: "gpt-4o", messages: QUESTION }, 404, "model"],
      ["/v1/chat/completions", { model: "smollm2", messages: [] }, 422, "messages"],
      ["/v1/chat/completions", { model: "smollm2", messages: QUESTION, n: 2 }, 422, "n"],
      ["/v1/chat/completions", { model: "smollm2", messages: QUESTION, temperature: -1 }, 422, "temperature"],
      ["/v1/completions", { model: "smollm2", prompt: "x".repeat(1_100_000) }, 413, null],
      ["/v1/completions", { model: "smollm2", prompt: "word ".repeat(5000), max_tokens: 4 }, 400, null],
    ];
    for (const [route, body, status, param] of cases) {
      const answer = await post(route, body);
      expect({ route, body: typeof body === "string" ? body : JSON.stringify(body).slice(0, 80), status: answer.status }).toEqual({ route, body: typeof body === "string" ? body : JSON.stringify(body).slice(0, 80), status });
      const error = answer.json.error as { message: string; type: string; param: string | null };
      expect(error.message.length).toBeGreaterThan(5);
      if (param !== null) expect(error.param).toBe(param);
    }
    const after = await feedbackStats({}, context);
    expect(after.interactions).toBe(before.interactions);
    expect(after.feedback).toBe(before.feedback);
  });

  it("publishes an OpenAPI document generated from the schemas", async () => {
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, Record<string, unknown>> } }> } }>> };
    expect(document.openapi).toMatch(/^3\./);
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(["/v1/models", "/v1/chat/completions", "/v1/completions", "/api/feedback", "/api/interactions", "/api/stats"]));
    const feedback = document.paths["/api/feedback"]!.post!.requestBody!.content["application/json"]!.schema;
    expect(feedback.properties.rating).toMatchObject({ type: "integer", minimum: 1, maximum: 5 });
  });
});

describe("serve: access", () => {
  it("needs the bearer token when given one, and refuses an address other machines reach without one", async () => {
    const guarded = await startServer({ host: "127.0.0.1", port: 0, base, adapters: [], token: "a-long-enough-test-token", version: "test" }, context);
    try {
      const models = (headers: Record<string, string>) => fetch(`${guarded.url}/v1/models`, { headers }).then((response) => response.status);
      expect(await models({})).toBe(401);
      expect(await models({ authorization: "Bearer wrong-token-of-some-length" })).toBe(401);
      expect(await models({ authorization: "Bearer a-long-enough-test-token" })).toBe(200);
      expect((await fetch(`${guarded.url}/health`)).status).toBe(200);
      const guardedClient = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: "a-long-enough-test-token", maxRetries: 0 });
      expect((await guardedClient.models.list()).data.map((model) => model.id)).toEqual(["smollm2", "ats"]);
    } finally {
      await guarded.close();
    }
    await expect(startServer({ host: "0.0.0.0", port: 0, base, adapters: [], token: null, version: "test" }, context)).rejects.toThrow(/reachable from other machines/);
    expect([isLoopback("127.0.0.1"), isLoopback("::1"), isLoopback("localhost"), isLoopback("0.0.0.0"), isLoopback("10.0.0.2")]).toEqual([true, true, true, false, false]);
  });
});

const SAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "data", "samples", "one_page_resumes.jsonl");

async function getJson(route: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${server.url}${route}`);
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** Polls a job until `done` says so, keeping every stage it was seen in. */
async function watchJob(id: string, done: (job: Record<string, unknown>) => boolean): Promise<{ job: Record<string, unknown>; stages: Set<unknown> }> {
  const stages = new Set<unknown>();
  for (;;) {
    const { json: job } = await getJson(`/api/jobs/${id}`);
    stages.add(job.stage);
    if (done(job)) return { job, stages };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const SMALL_RUN = { max_steps: 2, batch_size: 1, grad_accum: 1, max_seq_length: 256, quantization: "none" };

describe("serve: fine-tuning jobs", () => {
  it("builds the data, trains, exports and serves the adapter, which the adapter manager's routes then answer with", async () => {
    // 40 reviewed one-page resumes and scores: enough for build-db's splits.
    const sample = path.join(path.dirname(context.paths.feedbackSqlite), "..", "sample.jsonl");
    fs.writeFileSync(sample, fs.readFileSync(SAMPLES, "utf8").split("\n").slice(0, 40).join("\n") + "\n");
    await importFeedback({ files: [sample] }, context);
    const created = await post("/api/jobs", { name: "tuned-1", ...SMALL_RUN });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ status: "running", stage: "build-db", request: { name: "tuned-1" } });
    const { job, stages } = await watchJob(created.json.id as string, (candidate) => candidate.status !== "running");
    expect(job).toMatchObject({ status: "succeeded", stage: "done", model: "tuned-1", step: 2, total: 2, error: null });
    expect(stages).toContain("train");
    expect(fs.readdirSync(job.adapter as string).some((file) => file.endsWith(".gguf"))).toBe(true);
    expect((await client.models.list()).data.map((model) => model.id)).toContain("tuned-1");
    const answer = await client.chat.completions.create({ model: "tuned-1", messages: QUESTION, max_tokens: 8 });
    expect(answer.model).toBe("tuned-1");

    const status = await getJson("/fine-tuning/status");
    expect(status.json).toMatchObject({ status: "success", served_adapter: "tuned-1", job: { id: job.id, status: "succeeded" } });
    const query = await post("/fine-tuning/query", { query: QUESTION_TEXT, max_tokens: 8 });
    expect(query.status).toBe(200);
    expect(query.json).toMatchObject({ status: "success", model: "tuned-1", response: answer.choices[0]!.message.content });

    const loaded = await post("/api/adapters", { name: "tuned-1-again", path: job.adapter });
    expect(loaded.status).toBe(201);
    expect((await post("/api/adapters", { name: "tuned-1-again", path: job.adapter })).status).toBe(409);
    expect((await post("/api/adapters", { name: "not-an-adapter", path: base.base })).status).toBe(400);
    expect((await client.models.list()).data.map((model) => model.id)).toEqual(["smollm2", "noisy", "tuned-1", "tuned-1-again", "ats"]);
  }, 400_000);

  it("runs one job at a time, and cancels a running one, leaving a checkpoint to resume from", async () => {
    const setup = await post("/fine-tuning/setup", { name: "tuned-2", ...SMALL_RUN, max_steps: 400, save_steps: 1 });
    expect(setup.status).toBe(201);
    const id = setup.json.job_id as string;
    const second = await post("/api/jobs", { ...SMALL_RUN });
    expect(second.status).toBe(409);
    expect((second.json.error as { message: string }).message).toContain(id);
    await watchJob(id, (job) => (job.step as number) >= 2 || job.status !== "running");
    const response = await fetch(`${server.url}/api/jobs/${id}`, { method: "DELETE" });
    const job = (await response.json()) as Record<string, unknown>;
    expect(response.status).toBe(200);
    expect(job).toMatchObject({ status: "cancelled", model: null });
    expect(job.step as number).toBeLessThan(400);
    expect(fs.existsSync(job.checkpoint as string)).toBe(true);
    expect((await client.models.list()).data.map((model) => model.id)).not.toContain("tuned-2");
    expect((await getJson("/api/jobs/job_unknown")).status).toBe(404);
    expect((await post("/api/jobs", { epochs: -1 })).status).toBe(422);
  }, 400_000);

  it("stops a running job with a checkpoint when the server closes (what SIGTERM does)", async () => {
    const other = await startServer({ host: "127.0.0.1", port: 0, base, adapters: [], token: null, version: "test" }, context);
    const started = other.jobs.start({ name: "tuned-3", ...SMALL_RUN, quantization: "none", max_steps: 400, save_steps: 1 });
    while ((other.jobs.get(started.id)!.step < 2) && other.jobs.get(started.id)!.status === "running") await new Promise((resolve) => setTimeout(resolve, 250));
    await other.close();
    const job = other.jobs.get(started.id)!;
    expect(job).toMatchObject({ status: "cancelled" });
    expect(job.step).toBeGreaterThanOrEqual(2);
    expect(fs.existsSync(job.checkpoint!)).toBe(true);
  }, 400_000);
});

describe("serve: routing by task and A/B splits", () => {
  const ask = async (url: string, body: Record<string, unknown>) => {
    const response = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "ats", messages: QUESTION, max_tokens: 1, ...body }) });
    const json = (await response.json()) as { model: string; interaction_id: string };
    expect(response.status).toBe(200);
    expect(response.headers.get(MODEL_HEADER)).toBe(json.model);
    return json;
  };

  it("answers the router's id with the task's model, else the base", async () => {
    const routed = await startServer({ host: "127.0.0.1", port: 0, base, adapters: [adapter], routing: { taskModels: { resume_parse: "noisy" } }, token: null, version: "test" }, context);
    try {
      expect((await ask(routed.url, { task: "resume_parse" })).model).toBe("noisy");
      expect((await ask(routed.url, { task: "match_score" })).model).toBe("smollm2");
      const listed = (await (await fetch(`${routed.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      expect(listed.data.map((model) => model.id)).toEqual(["smollm2", "noisy", "ats"]);
    } finally {
      await routed.close();
    }
    await expect(startServer({ host: "127.0.0.1", port: 0, base, adapters: [], routing: { ab: [{ model: "smollm2", weight: 1 }, { model: "v9", weight: 1 }] }, token: null, version: "test" }, context)).rejects.toThrow(/does not serve: v9/);
  });

  it("keeps each caller on one version of the split, records which answered, and collect stats --by-model compares their ratings", async () => {
    const split = await startServer({ host: "127.0.0.1", port: 0, base, adapters: [adapter], routing: { ab: [{ model: "smollm2", weight: 50 }, { model: "noisy", weight: 50 }] }, token: null, version: "test" }, context);
    const byCaller = new Map<string, Set<string>>();
    try {
      for (let caller = 0; caller < 16; caller += 1) {
        for (const how of ["user", "header"] as const) {
          const answer = how === "user" ? await ask(split.url, { user: `caller-${caller}` }) : await postRouted(split.url, `caller-${caller}`);
          byCaller.set(`caller-${caller}`, (byCaller.get(`caller-${caller}`) ?? new Set()).add(answer.model));
          // Reviewers like the base's answers better than the noisy adapter's.
          const review = await fetch(`${split.url}/api/feedback`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ interaction_id: answer.interaction_id, rating: answer.model === "smollm2" ? 4 : 2 }) });
          expect(review.status).toBe(201);
        }
      }
    } finally {
      await split.close();
    }
    expect([...byCaller.values()].every((models) => models.size === 1)).toBe(true);
    const arms = new Set([...byCaller.values()].flatMap((models) => [...models]));
    expect(arms).toEqual(new Set(["smollm2", "noisy"]));
    const stored = (await listInteractions({ status: "reviewed" }, context)).filter(({ interaction }) => interaction.metadata.routed_by === "ab");
    expect(stored).toHaveLength(32);
    const ratings = await modelRatings({}, context);
    const pair = ratings.comparisons.find((candidate) => new Set([candidate.a, candidate.b]).size === 2 && [candidate.a, candidate.b].every((model) => model === "smollm2" || model === "noisy"))!;
    expect(pair.verdict).toBe(pair.b === "smollm2" ? "better" : "worse");
    expect(Math.abs(pair.delta)).toBeGreaterThan(1);
  });

  async function postRouted(url: string, caller: string) {
    const response = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", "x-ats-caller": caller }, body: JSON.stringify({ model: "ats", messages: QUESTION, max_tokens: 1 }) });
    expect(response.status).toBe(200);
    return (await response.json()) as { model: string; interaction_id: string };
  }
});

describe("serve: the production adapter", () => {
  it("answers the router's id with the production adapter of models/registry.json, following promote and rollback without a restart", async () => {
    const modelFile = await testModelFile();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-serve-prod-"));
    const prodContext: OperationContext = { paths: workdirPaths(dir), config: loadConfig({ env: {} }) };
    // Two adapter folders as train and export leave them: model.json with the base's fingerprint, the LoRA GGUF.
    const reference = fingerprintBase(modelFile);
    for (const [name, bScale] of [["v1", 1], ["v2", 0.5]] as const) {
      const folder = path.join(prodContext.paths.models, name);
      fs.mkdirSync(folder, { recursive: true });
      fs.writeFileSync(path.join(folder, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", base_model_name_or_path: modelFile, r: 8 }));
      writeModelCard(folder, { kind: "adapter", base: reference, training_format: "sft", created_at: new Date().toISOString() });
      await writeLoraAdapter(path.join(folder, "adapter-f16.gguf"), modelFile, { bScale });
    }
    await promoteModel({ name: "v1" }, prodContext);
    const running = await startServer({ host: "127.0.0.1", port: 0, base: { name: "smollm2", base: modelFile, adapters: [] }, adapters: [], token: null, version: "test" }, prodContext);
    const answeredBy = async () => {
      const response = await fetch(`${running.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "ats", messages: QUESTION, max_tokens: 1, store: false }) });
      expect(response.status).toBe(200);
      return response.headers.get(MODEL_HEADER);
    };
    const until = async (model: string) => {
      for (let tries = 0; tries < 100 && (await answeredBy()) !== model; tries += 1) await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await answeredBy()).toBe(model);
    };
    try {
      expect(running.production.error).toBeNull();
      expect(await answeredBy()).toBe("v1");
      await promoteModel({ name: "v2" }, prodContext);
      await until("v2");
      const listed = (await (await fetch(`${running.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      expect(listed.data.map((model) => model.id)).toEqual(["smollm2", "v1", "v2", "ats"]);
      await rollbackModel({}, prodContext);
      await until("v1");
      const overview = (await (await fetch(`${running.url}/api/overview`)).json()) as { serving: unknown };
      expect(overview.serving).toEqual({ production: "v1", error: null });
    } finally {
      await running.close();
    }
  }, 120_000);
});
