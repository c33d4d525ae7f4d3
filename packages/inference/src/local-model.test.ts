import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ExitCode, InputError, ResumeParseAnswerSchema, taskAnswerJsonSchema, type AtsError, type ChatMessage } from "@ats-lora/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeLlama } from "./llama.js";
import { LocalModel, type LocalModelSpec } from "./local-model.js";
import { tempDir, testModelFile, writeGguf, writeLoraAdapter } from "./test-support.js";

// Test files run side by side on few cores, where llama.cpp's spinning threads collapse when oversubscribed.
const BASE = await testModelFile();
const spec = (base = BASE, adapters: LocalModelSpec["adapters"] = []): LocalModelSpec => ({ name: "smollm2", base, adapters });
const user = (content: string): ChatMessage[] => [{ role: "user", content }];
const DEFAULT_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n";

let model: LocalModel;

beforeAll(async () => {
  model = await LocalModel.load(spec(), { sequences: 4, contextSize: 1024, gpu: false });
});

afterAll(async () => {
  await model?.dispose();
  await disposeLlama();
});

async function failure(promise: Promise<unknown>): Promise<AtsError> {
  try {
    await promise;
  } catch (error) {
    return error as AtsError;
  }
  throw new Error("expected a rejection");
}

describe("LocalModel on SmolLM2-135M-Instruct (GGUF)", () => {
  it("renders the GGUF's own ChatML template, and its tokens are the ones HF's tokenizer gives", () => {
    expect(model.chatTemplate).toContain("<|im_start|>");
    expect(model.device).toBe("cpu");
    const rendered = model.renderChat(user("Say OK"));
    // The template adds its default system prompt when the conversation has none.
    expect(rendered).toBe(`${DEFAULT_SYSTEM}<|im_start|>user\nSay OK<|im_end|>\n<|im_start|>assistant\n`);
    expect(model.renderChat([{ role: "system", content: "Be brief." }, ...user("Hi"), { role: "assistant", content: "Hello." }, ...user("Bye")])).toBe(
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
    );
    // From transformers' AutoTokenizer(gguf_file=…): apply_chat_template(add_generation_prompt=True), then
    // tokenizer(text, add_special_tokens=False); and tokenizer(reference + eos_token, add_special_tokens=False).
    expect(model.tokenize(rendered)).toEqual([1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198, 1, 4093, 198, 36218, 15310, 2, 198, 1, 520, 9531, 198]);
    expect(model.tokenize('{"name": "Ana Ruiz", "skills": ["Go", "SQL"]}<|im_end|>')).toEqual([39428, 1245, 1799, 476, 2089, 81, 20139, 463, 1002, 476, 41894, 1799, 9523, 6044, 1002, 476, 15933, 3222, 109, 2]);
    expect(model.tokenize("Café — naïve résumé\n\n- item<|im_end|>")).toEqual([51, 1939, 2756, 1841, 15486, 46494, 412, 2756, 5422, 2756, 198, 198, 29, 5033, 2]);
  });

  it("generates greedily: the same answer twice, ended at EOS (not in the text)", async () => {
    const [first] = await model.generate([user("Say OK")], { maxTokens: 64, temperature: 0 });
    const [second] = await model.generate([user("Say OK")], { maxTokens: 64, temperature: 0 });
    expect(first!.text.length).toBeGreaterThan(0);
    expect(first!.text).not.toContain("<|im_end|>");
    expect(first).toMatchObject({ endedWithEos: true, stoppedBy: "eos", promptTokens: 32 });
    expect(second!.text).toBe(first!.text);
    expect(second!.tokens).toBe(first!.tokens);
    // The EOS is counted, as the worker counts it.
    expect(model.tokenize(first!.text).length + 1).toBe(first!.tokens);
  });

  it("answers several conversations at once exactly as one at a time (4 sequences, 6 conversations queued)", async () => {
    const questions = ["Say OK", "What is 2+2?", "Name a color.", "Write a haiku about rain.", "What is the opposite of hot?", "Spell the word cat."];
    const options = { maxTokens: 24, temperature: 0 };
    const alone: string[] = [];
    for (const question of questions) alone.push((await model.generate([user(question)], options))[0]!.text);
    const progress: number[] = [];
    // Two rounds: sequences whose sampling raced took each other's tokens in most rounds (see serial-sampling.ts).
    for (let round = 0; round < 2; round += 1) {
      const together = await model.generate(questions.map(user), { ...options, onProgress: (done) => progress.push(done) });
      expect(together.map((generation) => generation.text)).toEqual(alone);
    }
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
  });

  it("cuts the answer before a stop text, and streams the same text in pieces", async () => {
    const [full] = await model.generate([user("Write a haiku about rain.")], { maxTokens: 40, temperature: 0 });
    const stop = " rain";
    const at = full!.text.indexOf(stop);
    expect(at).toBeGreaterThan(0);
    const [cut] = await model.generate([user("Write a haiku about rain.")], { maxTokens: 40, temperature: 0, stop: [stop] });
    expect(cut).toMatchObject({ text: full!.text.slice(0, at), stoppedBy: "stop", endedWithEos: false });

    const pieces: string[] = [];
    let summary;
    for await (const event of model.stream(user("Write a haiku about rain."), { maxTokens: 40, temperature: 0, stop: [stop] })) {
      if (event.type === "text") pieces.push(event.text);
      else summary = event.result;
    }
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(cut!.text);
    expect(summary).toMatchObject({ text: cut!.text, stoppedBy: "stop" });
  });

  it("samples reproducibly with a seed, and stops at max tokens", async () => {
    const options = { maxTokens: 12, temperature: 0.9, seed: 11 };
    const [a, b] = await model.generate([user("Tell me about cats."), user("Tell me about cats.")], options);
    expect(a).toMatchObject({ tokens: 12, stoppedBy: "max_tokens", endedWithEos: false });
    expect(b!.text).toBe(a!.text);
  });

  it("stops when aborted: the stream ends within a token, generate rejects with exit 130, the model still answers", async () => {
    const controller = new AbortController();
    const pieces: string[] = [];
    const streamed = (async () => {
      for await (const event of model.stream(user("Write a long essay about the history of computing."), { maxTokens: 600, temperature: 0, signal: controller.signal })) {
        if (event.type !== "text") continue;
        pieces.push(event.text);
        if (pieces.length === 3) controller.abort();
      }
    })();
    const streamError = await failure(streamed);
    expect(streamError.exitCode).toBe(ExitCode.interrupted);
    expect(pieces.length).toBe(3);

    const stop = new AbortController();
    const running = model.generate([user("Write a long essay about the history of computing."), user("List twenty fruits.")], { maxTokens: 600, temperature: 0, signal: stop.signal });
    setTimeout(() => stop.abort(), 300);
    const error = await failure(running);
    expect(error.exitCode).toBe(ExitCode.interrupted);
    expect(error.message).toBe("generation interrupted");

    const [after] = await model.generate([user("Say OK")], { maxTokens: 64, temperature: 0 });
    expect(after!.endedWithEos).toBe(true);
  });

  it("decodes under a task's JSON Schema: the answer parses, validates and ends where the JSON is complete", async () => {
    // Two parsed resumes, then a third: the base model follows the shape, and its list that runs on ends at maxItems.
    const parse = (resume: string) => user(`Parse this resume into the ATS JSON schema.\n\n${resume}`)[0]!;
    const answered = (resume: string, name: string, email: string, location: string, skills: string[]): ChatMessage[] => [
      parse(resume),
      { role: "assistant", content: JSON.stringify({ name, email, phone: null, location, summary: null, skills, experience: [], education: [], certifications: [], languages: [] }) },
    ];
    const conversation: ChatMessage[] = [
      ...answered("Ana Ruiz\nana.ruiz@example.com | Madrid, Spain\nSkills: SQL, Python", "Ana Ruiz", "ana.ruiz@example.com", "Madrid, Spain", ["SQL", "Python"]),
      ...answered("Li Wei\nli.wei@example.com | Shanghai, China\nSkills: Java, Kotlin", "Li Wei", "li.wei@example.com", "Shanghai, China", ["Java", "Kotlin"]),
      parse("Tom Berg\ntom.berg@example.com | Oslo, Norway\nSkills: Go, Rust"),
    ];
    const options = { maxTokens: 200, temperature: 0, jsonSchema: taskAnswerJsonSchema("resume_parse") };
    const [answer] = await model.generate([conversation], options);
    expect(answer).toMatchObject({ stoppedBy: "json_complete", endedWithEos: false });
    expect(answer!.tokens).toBeLessThan(200);
    const parsed = ResumeParseAnswerSchema.safeParse(JSON.parse(answer!.text));
    expect(parsed.error).toBeUndefined();
    expect(parsed.data).toMatchObject({ name: "Tom Berg", email: "tom.berg@example.com" });

    const pieces: string[] = [];
    for await (const event of model.stream(conversation, options)) if (event.type === "text") pieces.push(event.text);
    expect(pieces.join("")).toBe(answer!.text);
  });

  it("holds the schema's bounds where the model would go on, batched as one at a time", async () => {
    const colors = {
      type: "object",
      properties: { colors: { type: "array", items: { type: "string", maxLength: 12 }, maxItems: 3 } },
      required: ["colors"],
      additionalProperties: false,
    };
    const questions = ["List thirty colors as JSON.", "Name every color of the rainbow, in JSON.", "Give me 20 shades of blue as JSON."];
    const options = { maxTokens: 80, temperature: 0, jsonSchema: colors };
    const together = await model.generate(questions.map(user), options);
    for (const answer of together) {
      expect(answer.stoppedBy).toBe("json_complete");
      const parsed = JSON.parse(answer.text) as { colors: string[] };
      expect(Object.keys(parsed)).toEqual(["colors"]);
      expect(parsed.colors.length).toBeLessThanOrEqual(3);
      for (const color of parsed.colors) expect(color.length).toBeLessThanOrEqual(12);
    }
    const alone: string[] = [];
    for (const question of questions) alone.push((await model.generate([user(question)], options))[0]!.text);
    expect(together.map((answer) => answer.text)).toEqual(alone);
    // Without the grammar the model answers with no JSON at all.
    const [free] = await model.generate([user(questions[0]!)], { maxTokens: 80, temperature: 0 });
    expect(() => JSON.parse(free!.text)).toThrow(SyntaxError);

    const tooLong = await failure(model.generate([user("Hi")], { ...options, jsonSchema: { type: "string", maxLength: 5000 } }));
    expect(tooLong).toBeInstanceOf(InputError);
    expect(tooLong.message).toBe("the JSON Schema: the schema has maxLength 5000; llama.cpp's grammar parser repeats at most 1999 times: lower it");
  });

  it("scores a likely reference lower than gibberish, over the reference's tokens and EOS", async () => {
    const conversation = user("What is 2+2?");
    const [likely, gibberish] = await model.score([conversation, conversation], ["The answer is 4.", "zxqv wrrbl ptang 12!!"]);
    expect(likely!.tokens).toBe(model.tokenize("The answer is 4.<|im_end|>").length);
    expect(gibberish!.tokens).toBe(14);
    expect(likely!.loss).toBeGreaterThan(0);
    expect(likely!.loss).toBeLessThan(gibberish!.loss - 2);
    // Concurrent scoring gives the same numbers as scoring alone.
    const [alone] = await model.score([conversation], ["The answer is 4."]);
    expect(alone!.loss).toBeCloseTo(likely!.loss, 6);
    await expect(model.score([conversation], [])).rejects.toBeInstanceOf(InputError);
  });

  it("refuses a conversation that does not fit the context", async () => {
    const error = await failure(model.generate([user("word ".repeat(1100))], { maxTokens: 16, temperature: 0 }));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toMatch(/conversation 1 is \d+ tokens; with 16 more it does not fit the context of 1024 tokens/);
  });
});

describe("LocalModel.load errors (exit 2, naming the files)", () => {
  it("a missing file, a cut-short GGUF, a text file named .gguf, an adapter, a GGUF llama.cpp refuses", async () => {
    const dir = tempDir();
    const missing = await failure(LocalModel.load(spec(path.join(dir, "absent.gguf")), { gpu: false }));
    expect(missing).toBeInstanceOf(InputError);
    expect(missing.message).toBe(`no such model file: ${path.join(dir, "absent.gguf")}`);

    const truncated = path.join(dir, "truncated.gguf");
    fs.writeFileSync(truncated, fs.readFileSync(BASE).subarray(0, 50_000_000));
    const cut = await failure(LocalModel.load(spec(truncated), { gpu: false }));
    expect(cut.exitCode).toBe(ExitCode.badInput);
    expect(cut.message).toBe(`${truncated} is not a complete GGUF model: it has 50000000 bytes, its header describes ${fs.statSync(BASE).size}`);

    const text = path.join(dir, "notes.gguf");
    fs.writeFileSync(text, "these are notes, not a model\n");
    const notModel = await failure(LocalModel.load(spec(text), { gpu: false }));
    expect(notModel.exitCode).toBe(ExitCode.badInput);
    expect(notModel.message).toMatch(new RegExp(`^${text} is not a valid GGUF model: Invalid GGUF magic`));

    const adapterAsBase = await writeLoraAdapter(path.join(dir, "adapter.gguf"), BASE, { bScale: 1 });
    const wrongKind = await failure(LocalModel.load(spec(adapterAsBase), { gpu: false }));
    expect(wrongKind.message).toBe(`${adapterAsBase} is a LoRA adapter, not a base model`);

    // A well-formed GGUF without the llama hyperparameters: llama.cpp itself refuses it (and afterAll's
    // disposeLlama must still return, though node-llama-cpp then holds a dispose guard forever).
    const hollow = writeGguf(path.join(dir, "hollow.gguf"), [["general.architecture", "llama"], ["general.type", "model"]], []);
    const refused = await failure(LocalModel.load(spec(hollow), { gpu: false }));
    expect(refused.exitCode).toBe(ExitCode.badInput);
    expect(refused.message).toBe(`${hollow} is not a valid or complete GGUF model: llama.cpp could not load it`);
    expect(refused.details.join("\n")).toMatch(/llama\.context_length/);
  });

  it("settings from the environment that are not settings", async () => {
    const saved = { gpu: process.env.ATS_LORA_LLAMA_GPU, threads: process.env.ATS_LORA_LLAMA_THREADS };
    try {
      process.env.ATS_LORA_LLAMA_GPU = "fast";
      expect((await failure(LocalModel.load(spec()))).message).toBe("ATS_LORA_LLAMA_GPU=fast is not a GPU setting");
      delete process.env.ATS_LORA_LLAMA_GPU;
      process.env.ATS_LORA_LLAMA_THREADS = "two";
      const threads = await failure(LocalModel.load(spec(), { gpu: false }));
      expect(threads).toBeInstanceOf(InputError);
      expect(threads.message).toBe("ATS_LORA_LLAMA_THREADS=two is not a number of threads");
    } finally {
      for (const [name, value] of [["ATS_LORA_LLAMA_GPU", saved.gpu], ["ATS_LORA_LLAMA_THREADS", saved.threads]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it("applies a LoRA adapter; one made for another base is refused naming both files", async () => {
    const dir = tempDir();
    const conversation = [user("Say OK")];
    const options = { maxTokens: 16, temperature: 0 };
    const [baseAnswer] = await model.generate(conversation, options);

    const zero = await LocalModel.load(spec(BASE, [{ name: "zero", path: await writeLoraAdapter(path.join(dir, "zero.gguf"), BASE, { bScale: 0 }) }]), { gpu: false, contextSize: 1024 });
    const random = await LocalModel.load(spec(BASE, [{ name: "random", path: await writeLoraAdapter(path.join(dir, "random.gguf"), BASE, { bScale: 1 }) }]), { gpu: false, contextSize: 1024 });
    try {
      // A zero update leaves the base's answer; a random one changes it.
      expect((await zero.generate(conversation, options))[0]!.text).toBe(baseAnswer!.text);
      expect((await random.generate(conversation, options))[0]!.text).not.toBe(baseAnswer!.text);
    } finally {
      await zero.dispose();
      await random.dispose();
    }

    const other = await writeLoraAdapter(path.join(dir, "other-base.gguf"), BASE, { bScale: 1, extraWidth: 64 });
    const error = await failure(LocalModel.load(spec(BASE, [{ name: "other", path: other }]), { gpu: false, contextSize: 1024 }));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(`the LoRA adapter ${other} does not fit the base model ${BASE}`);
    expect(error.details.join("\n")).toMatch(/incorrect shape/);

    const missing = await failure(LocalModel.load(spec(BASE, [{ name: "gone", path: path.join(dir, "gone.gguf") }]), { gpu: false }));
    expect(missing.message).toBe(`no such LoRA adapter file: ${path.join(dir, "gone.gguf")}`);
    const baseAsAdapter = await failure(LocalModel.load(spec(BASE, [{ name: "base", path: BASE }]), { gpu: false }));
    expect(baseAsAdapter.message).toBe(`${BASE} is a GGUF model, not a LoRA adapter`);
  });
});

describe("process exit", () => {
  it("a script that disposes its model and the Llama exits by itself", () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const script = path.join(tempDir(), "answer.mts");
    fs.writeFileSync(
      script,
      `import { LocalModel, disposeLlama } from ${JSON.stringify(path.join(here, "index.ts"))};
const model = await LocalModel.load({ name: "m", base: ${JSON.stringify(BASE)}, adapters: [] }, { gpu: false, contextSize: 512 });
const [answer] = await model.generate([[{ role: "user", content: "Say OK" }]], { maxTokens: 8, temperature: 0 });
process.stdout.write(JSON.stringify(answer));
await model.dispose();
await disposeLlama();
`,
    );
    const tsx = path.resolve(here, "../../../node_modules/.bin/tsx");
    const run = spawnSync(tsx, ["--conditions=source", script], { encoding: "utf8", timeout: 45_000 });
    expect(run.error, "the script did not exit on its own").toBeUndefined();
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).tokens).toBe(8);
    // llama.cpp's log goes to the model's errors, not the terminal.
    expect(run.stderr).toBe("");
  });
});
