import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig, workdirPaths, writeRegistry } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { productionToCompare } from "./gate.js";

describe("eval --gate's default opponent", () => {
  it("is the production adapter, unless that is the model evaluated or there is none", () => {
    const context = { paths: workdirPaths(fs.mkdtempSync(path.join(os.tmpdir(), "ats-gate-prod-"))), config: loadConfig({ env: {} }) };
    for (const name of ["v1", "v2"]) fs.mkdirSync(path.join(context.paths.models, name), { recursive: true });
    expect(productionToCompare(path.join(context.paths.models, "v2"), context)).toBeUndefined();
    writeRegistry(context.paths.models, { format_version: 1, production: "v1", staging: null, history: [] });
    expect(productionToCompare(path.join(context.paths.models, "v2"), context)).toBe(path.join(context.paths.models, "v1"));
    expect(productionToCompare("v2", context)).toBe(path.join(context.paths.models, "v1"));
    expect(productionToCompare("v1", context)).toBeUndefined();
    expect(productionToCompare(undefined, context)).toBeUndefined();
  });
});
