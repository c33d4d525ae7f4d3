import { describe, expect, it } from "vitest";
import { watchTerminal } from "./testing.js";

describe("watchTerminal", () => {
  it("catches stdout, stderr and console writes, and restores them", () => {
    const write = process.stdout.write;
    const log = console.log; // eslint-disable-line no-console
    const watch = watchTerminal();
    process.stdout.write("out\n");
    process.stderr.write("err\n");
    console.warn("careful", 2); // eslint-disable-line no-console
    expect(watch.stop()).toEqual(["stdout: out\n", "stderr: err\n", "console.warn: careful 2"]);
    expect(process.stdout.write).toBe(write);
    expect(console.log).toBe(log); // eslint-disable-line no-console
  });
});
