import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { METHODS, NOTIFICATIONS, protocolJsonSchema, RpcNotification, RpcResponse } from "./protocol.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const examples = JSON.parse(fs.readFileSync(path.join(here, "protocol-examples.json"), "utf8")) as Array<{
  kind: "request" | "response" | "notification" | "error";
  method: string;
  message: Record<string, unknown>;
}>;

describe("the worker protocol", () => {
  it("has a committed JSON Schema identical to the one the zod definitions generate", () => {
    const committed = JSON.parse(fs.readFileSync(path.join(here, "protocol.schema.json"), "utf8"));
    expect(committed).toEqual(protocolJsonSchema());
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
