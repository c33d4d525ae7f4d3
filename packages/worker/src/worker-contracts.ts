import path from "node:path";
import { fileURLToPath } from "node:url";
import { trainingPairsJsonSchema } from "@ats-lora/core";
import { protocolJsonSchema } from "./protocol.js";
import { pythonProtocolTypes } from "./python-types.js";

/**
 * The contracts the Python worker ships inside its package (ats_lora_worker/contracts), generated from the
 * TypeScript definitions: the protocol's JSON Schema and the Python types and constants made from it, and core's
 * training-pairs JSON Schema, against which the worker checks every row it trains on. write-worker-contracts.ts
 * writes them (pnpm --filter @ats-lora/worker worker-contracts); protocol.test.ts fails when they are stale.
 */

/** packages/worker/python/ats_lora_worker/contracts (this file sits in src/ or dist/ of packages/worker). */
export function workerContractsDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "python", "ats_lora_worker", "contracts");
}

const json = (document: unknown): string => `${JSON.stringify(document, null, 2)}\n`;

/** Each generated file's name in workerContractsDir() and its text. */
export function workerContractFiles(): Record<string, string> {
  const protocol = protocolJsonSchema();
  return {
    "protocol.schema.json": json(protocol),
    "protocol_types.py": pythonProtocolTypes(protocol),
    "training-pairs.schema.json": json(trainingPairsJsonSchema()),
  };
}
