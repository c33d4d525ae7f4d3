import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { abandonBuild, BUILD_MARKER_FILE, commitBuild, recoverInterruptedBuilds, startBuild, type BuildFolderKind } from "./build-folder.js";
import { InputError } from "./errors.js";

const kind: BuildFolderKind = { name: "test pairs", option: "--output", entries: ["a.jsonl", "manifest.json"] };

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ats-build-folder-"));
}

function build(target: string, content: string): void {
  const staged = startBuild(target, kind);
  fs.writeFileSync(path.join(staged.staging, "a.jsonl"), content);
  commitBuild(staged);
}

/** A pid that no process has: one of a child that has already exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString());
}

describe("build folders", () => {
  it("builds into a new folder, then replaces its own build", () => {
    const target = path.join(tempDir(), "out");
    build(target, "one");
    build(target, "two");
    expect(fs.readFileSync(path.join(target, "a.jsonl"), "utf8")).toBe("two");
    expect(JSON.parse(fs.readFileSync(path.join(target, BUILD_MARKER_FILE), "utf8")).kind).toBe("test pairs");
    expect(fs.readdirSync(path.dirname(target))).toEqual(["out"]);
  });

  it("refuses to replace a folder holding anything else, and deletes nothing", () => {
    const target = tempDir();
    fs.writeFileSync(path.join(target, "feedback.sqlite"), "precious");
    expect(() => startBuild(target, kind)).toThrow(InputError);
    expect(() => startBuild(target, kind)).toThrow(/not empty and does not hold an earlier test pairs build \(it has feedback\.sqlite\)/);
    expect(fs.readFileSync(path.join(target, "feedback.sqlite"), "utf8")).toBe("precious");
    expect(fs.readdirSync(path.dirname(target)).filter((name) => name.startsWith(`.${path.basename(target)}.`))).toEqual([]);
  });

  it("refuses when something foreign appears while the build runs", () => {
    const target = path.join(tempDir(), "out");
    build(target, "one");
    const staged = startBuild(target, kind);
    fs.writeFileSync(path.join(target, "notes.txt"), "mine");
    expect(() => commitBuild(staged)).toThrow(InputError);
    abandonBuild(staged);
    expect(fs.readFileSync(path.join(target, "notes.txt"), "utf8")).toBe("mine");
    expect(fs.readFileSync(path.join(target, "a.jsonl"), "utf8")).toBe("one");
  });

  it("replaces an earlier build without a marker (made before markers existed) and keeps .gitkeep", () => {
    const target = tempDir();
    fs.writeFileSync(path.join(target, "a.jsonl"), "old");
    fs.writeFileSync(path.join(target, ".gitkeep"), "");
    build(target, "new");
    expect(fs.readdirSync(target).sort()).toEqual([".ats-lora-build.json", ".gitkeep", "a.jsonl"]);
  });

  it("refuses a file as the target", () => {
    const file = path.join(tempDir(), "out");
    fs.writeFileSync(file, "x");
    expect(() => startBuild(file, kind)).toThrow(/--output .* is a file/);
  });

  it("puts back the earlier build when a run died between the swap's two renames, and drops dead staging folders", () => {
    const parent = tempDir();
    const target = path.join(parent, "out");
    build(target, "good");
    const pid = deadPid();
    fs.renameSync(target, path.join(parent, `.out.previous-${pid}-0badf00d`));
    const staging = path.join(parent, `.out.staging-${pid}-12345678`);
    fs.mkdirSync(staging);
    fs.writeFileSync(path.join(staging, BUILD_MARKER_FILE), JSON.stringify({ kind: "test pairs", pid, created_at: "" }));
    // Someone else's hidden folder that merely looks alike is not touched.
    const foreign = path.join(parent, `.out.staging-${pid}-abcdef12`);
    fs.mkdirSync(foreign);

    const recovered = recoverInterruptedBuilds(target, kind);
    expect(recovered.restored).toBe(true);
    expect(recovered.removed).toEqual([staging]);
    expect(fs.readFileSync(path.join(target, "a.jsonl"), "utf8")).toBe("good");
    expect(fs.readdirSync(parent).sort()).toEqual([".out.staging-" + pid + "-abcdef12", "out"]);
  });

  it("puts back an earlier build without a marker when a run died between the swap's two renames", () => {
    const parent = tempDir();
    const target = path.join(parent, "out");
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, "a.jsonl"), "unmarked");
    const staged = startBuild(target, kind);
    fs.writeFileSync(path.join(staged.staging, "a.jsonl"), "new");
    // Killed between the renames: the first rename (the earlier build aside) happens, nothing after it does.
    const originalRename = fs.renameSync;
    let renames = 0;
    fs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
      renames += 1;
      if (renames >= 2) throw new Error("killed");
      originalRename(from, to);
    }) as typeof fs.renameSync;
    try {
      expect(() => commitBuild(staged)).toThrow("killed");
    } finally {
      fs.renameSync = originalRename;
    }
    const aside = fs.readdirSync(parent).find((name) => name.startsWith(".out.previous-"))!;
    expect(fs.existsSync(target)).toBe(false);
    // As if its process had died: rename it with a dead pid.
    const pid = deadPid();
    fs.renameSync(path.join(parent, aside), path.join(parent, `.out.previous-${pid}-0badf00d`));
    expect(recoverInterruptedBuilds(target, kind).restored).toBe(true);
    expect(fs.readFileSync(path.join(target, "a.jsonl"), "utf8")).toBe("unmarked");
    abandonBuild(staged);
  });

  it("refuses a folder marked as a build of another kind", () => {
    const target = path.join(tempDir(), "out");
    const other: BuildFolderKind = { name: "vector store", option: "--output", entries: ["manifest.json"] };
    const staged = startBuild(target, other);
    commitBuild(staged);
    expect(() => startBuild(target, kind)).toThrow(/holds a vector store build, not test pairs/);
  });

  it("leaves the folders of a live run alone", () => {
    const parent = tempDir();
    const target = path.join(parent, "out");
    const staged = startBuild(target, kind);
    expect(recoverInterruptedBuilds(target, kind).removed).toEqual([]);
    expect(fs.existsSync(staged.staging)).toBe(true);
    abandonBuild(staged);
    expect(fs.readdirSync(parent)).toEqual([]);
  });
});
