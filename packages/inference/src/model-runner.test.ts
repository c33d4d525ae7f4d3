import path from "node:path";
import { ExitCode, promptMessages, type AtsError } from "@ats-lora/core";
import { afterAll, describe, expect, it } from "vitest";
import { disposeLlama } from "./llama.js";
import { LocalModel, type LocalModelSpec } from "./local-model.js";
import { llamaModelRunner, type RunnerModelRef } from "./model-runner.js";
import { tempDir, testModelFile, writeLoraAdapter } from "./test-support.js";

// Test files run side by side on few cores, where llama.cpp's spinning threads collapse when oversubscribed.
process.env.ATS_LORA_LLAMA_THREADS ??= "1";
const BASE = await testModelFile();

afterAll(() => disposeLlama());

describe("llamaModelRunner (the evaluator's ModelRunner on node-llama-cpp)", () => {
  it("generates and scores built prompts as one user turn, keeps the model while the same one is asked for, cancels", async () => {
    const adapter = await writeLoraAdapter(path.join(tempDir(), "zero.gguf"), BASE, { bScale: 0 });
    const resolved: RunnerModelRef[] = [];
    const resolve = async (ref: RunnerModelRef): Promise<LocalModelSpec> => {
      resolved.push(ref);
      return ref.base ? { name: "tuned", base: ref.base, adapters: [{ name: "zero", path: ref.model }] } : { name: "base", base: ref.model, adapters: [] };
    };
    const runner = llamaModelRunner(resolve, { sequences: 2, contextSize: 1024, gpu: false });
    const base = { model: BASE };
    const tuned = { model: adapter, base: BASE };
    const prompts = ["Say OK", "What is 2+2?", "Name a color."];
    try {
      const progress: number[] = [];
      const generations = await runner.generate(base, prompts, { maxNewTokens: 24, seed: 1 }, (done) => progress.push(done));
      expect(progress).toEqual([1, 2, 3]);
      const scores = await runner.score(base, prompts, ["OK", "4", "Blue"]);
      expect(resolved).toEqual([base]);
      // The zero adapter changes nothing: the same answers, through a second model.
      expect((await runner.generate(tuned, prompts, { maxNewTokens: 24, seed: 1 })).map((generation) => generation.text)).toEqual(generations.map((generation) => generation.text));
      expect(resolved).toEqual([base, tuned]);

      // The same as the model answers the prompt framed by core's promptMessages.
      const direct = await LocalModel.load({ name: "base", base: BASE, adapters: [] }, { contextSize: 1024, gpu: false });
      try {
        expect((await direct.generate(prompts.map(promptMessages), { maxTokens: 24, temperature: 0 })).map((generation) => generation.text)).toEqual(generations.map((generation) => generation.text));
        expect(await direct.score(prompts.map(promptMessages), ["OK", "4", "Blue"])).toEqual(scores);
      } finally {
        await direct.dispose();
      }

      const running = runner.generate(tuned, ["Write a long essay about the history of computing."], { maxNewTokens: 600, seed: 1 });
      setTimeout(() => runner.cancel(), 300);
      const error = (await running.catch((caught: unknown) => caught)) as AtsError;
      expect(error.exitCode).toBe(ExitCode.interrupted);
      expect((await runner.generate(tuned, ["Say OK"], { maxNewTokens: 24, seed: 1 }))[0]!.text).toBe(generations[0]!.text);
      expect(resolved).toEqual([base, tuned]);

      const colors = { type: "object", properties: { colors: { type: "array", items: { type: "string", maxLength: 12 }, maxItems: 3 } } };
      const [json] = await runner.generate(tuned, ["List thirty colors as JSON."], { maxNewTokens: 60, seed: 1, jsonSchema: colors });
      expect(json!.stoppedBy).toBe("json_complete");
      expect((JSON.parse(json!.text) as { colors: string[] }).colors.length).toBeLessThanOrEqual(3);
    } finally {
      await runner.close();
    }
  });
});
