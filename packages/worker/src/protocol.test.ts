import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { METHODS, NOTIFICATIONS, protocolJsonSchema, REGENERATE, RpcNotification, RpcResponse } from "./protocol.js";
import { pythonProtocolTypes } from "./python-types.js";
import { workerContractFiles, workerContractsDir } from "./worker-contracts.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const examples = JSON.parse(fs.readFileSync(path.join(here, "protocol-examples.json"), "utf8")) as Array<{
  kind: "request" | "response" | "notification" | "error";
  method: string;
  message: Record<string, unknown>;
}>;

describe("the worker protocol", () => {
  it("ships the worker the contract files the TypeScript definitions generate (JSON Schemas, Python types)", () => {
    const generated = workerContractFiles();
    expect(Object.keys(generated).sort()).toEqual(["protocol.schema.json", "protocol_types.py", "training-pairs.schema.json"]);
    for (const [name, text] of Object.entries(generated)) {
      const committed = fs.readFileSync(path.join(workerContractsDir(), name), "utf8");
      expect(committed, `${name} is stale: ${REGENERATE}`).toBe(text);
    }
  });

  it("writes as Python only the JSON Schema it can render faithfully, naming the rest", () => {
    const document = protocolJsonSchema();
    const train = document.$defs.TrainParams!;
    const properties = train.properties as Record<string, unknown>;
    const withOneOf = { ...train, properties: { ...properties, seed: { oneOf: [{ type: "integer" }, { type: "string" }] } } };
    expect(() => pythonProtocolTypes({ ...document, $defs: { ...document.$defs, TrainParams: withOneOf } })).toThrow(
      "TrainParams.seed: the keyword oneOf has no Python rendering",
    );
    const withKeyword = { ...train, properties: { ...properties, from: { type: "string" } } };
    expect(() => pythonProtocolTypes({ ...document, $defs: { ...document.$defs, TrainParams: withKeyword } })).toThrow(
      "TrainParams.from: not a Python field name",
    );
  });

  it("accepts every example message (the same file pytest validates)", () => {
    expect(examples.length).toBeGreaterThan(10);
    for (const example of examples) {
      const { message, method } = example;
      if (example.kind === "request") {
        expect(message.jsonrpc).toBe("2.0");
        METHODS[method as keyof typeof METHODS].params.parse(message.params);
      } else if (example.kind === "response") {
        RpcResponse.parse(message);
        METHODS[method as keyof typeof METHODS].result.parse(message.result);
      } else if (example.kind === "notification") {
        RpcNotification.parse(message);
        NOTIFICATIONS[method as keyof typeof NOTIFICATIONS].parse(message.params);
      } else {
        RpcResponse.parse(message);
      }
    }
  });

  it("rejects what the worker would reject", () => {
    const train = examples.find((example) => example.kind === "request" && example.method === "train")!.message.params as Record<string, unknown>;
    expect(METHODS.train.params.safeParse({ ...train, format: "ppo" }).success).toBe(false);
    expect(METHODS.train.params.safeParse({ ...train, lora_r: 0 }).success).toBe(false);
    expect(METHODS.train.params.safeParse({ ...train, unknown: 1 }).success).toBe(false);
  });
});
