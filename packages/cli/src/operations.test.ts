import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig, workdirPaths } from "@ats-lora/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { watchTerminal, type TerminalWatch } from "@ats-lora/core/testing";
import { inspectMachine } from "./doctor.js";

/** The cli's own operation (doctor's), on this machine and its real worker: a typed report, not a byte printed. */

let terminal: TerminalWatch;
beforeEach(() => {
  terminal = watchTerminal();
});
afterEach(() => {
  expect(terminal.stop(), "the operation wrote to the terminal").toEqual([]);
});

describe("inspectMachine", () => {
  it("reports Node, the disk and the worker's environment", async () => {
    const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-doctor-"));
    const report = await inspectMachine({}, { paths: workdirPaths(workdir), config: loadConfig({ env: {} }) });
    expect(report.node).toBe(process.versions.node);
    expect(report.disk.free_bytes).toBeGreaterThan(0);
    expect(report.worker).toHaveProperty("python.version");
  }, 120_000);

  it("reports a worker that does not start as part of the report, not as an error", async () => {
    const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-doctor-"));
    const report = await inspectMachine({ python: path.join(workdir, "no-python") }, { paths: workdirPaths(workdir), config: loadConfig({ env: {} }) });
    expect(report.worker).toHaveProperty("error");
  });
});
