import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { installRoot } from "@ats-lora/core";
import { afterEach, describe, expect, it } from "vitest";
import { newDemoWorkdir } from "./demo.js";

describe("the checkout", () => {
  let made: string[] = [];
  afterEach(() => {
    for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
    made = [];
  });

  it("stays clean in git status after `ats-lora demo` runs from it (the README's main job)", () => {
    const root = installRoot();
    // The folders the demo makes, named by the demo itself: a first run and a second one in the same second.
    for (const now of [new Date(), new Date()]) {
      const dir = newDemoWorkdir(root, now);
      made.push(dir);
      fs.mkdirSync(`${dir}/feedback_db`, { recursive: true });
      fs.writeFileSync(`${dir}/feedback_db/feedback.sqlite`, "");
    }
    const status = execFileSync("git", ["status", "--porcelain", "--untracked-files=all", "--", ...made], { cwd: root, encoding: "utf8" });
    expect(status).toBe("");
  });
});
