import path from "node:path";
import os from "node:os";
import fs from "node:fs";
import { InputError } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { workerModelRunner } from "./model-runner.js";
import { WorkerClient } from "./worker-client.js";

describe("workerModelRunner", () => {
  it("refuses decoding constrained to a JSON Schema, which only node-llama-cpp has, before asking the worker", async () => {
    const { client } = await WorkerClient.start({ logFile: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ats-worker-")), "worker.log") });
    try {
      const refused = await workerModelRunner(client)
        .generate({ model: "absent-model" }, ["Parse this"], { maxNewTokens: 8, seed: 1, jsonSchema: { type: "object" } })
        .catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(InputError);
      expect((refused as InputError).message).toBe("--json-schema needs node-llama-cpp: a GGUF model or an adapter on one");
    } finally {
      await client.close();
    }
  });
});
