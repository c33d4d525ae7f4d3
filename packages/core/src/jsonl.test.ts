import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "./errors.js";
import { readJsonl, readRecords } from "./jsonl.js";
import { z } from "zod";

function tempFile(content: string | Buffer): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ats-jsonl-")), "f.jsonl");
  fs.writeFileSync(file, content);
  return file;
}

describe("readJsonl", () => {
  it("numbers lines as an editor does, skipping blank ones", () => {
    const file = tempFile('{"a":1}\n\n   \n{"a":2}\r\n{"a":3}');
    const lines = [...readJsonl(file)];
    expect(lines.map((line) => line.lineNumber)).toEqual([1, 4, 5]);
    expect(lines.map((line) => (line.ok ? line.value : null))).toEqual([{ a: 1 }, { a: 2 }, { a: 3 }]);
  });

  it("assembles lines longer than the read buffer", () => {
    const long = "x".repeat(10_000);
    const file = tempFile(`{"a":"${long}"}\n{"b":"é€😀"}\n`);
    const lines = [...readJsonl(file, { chunkBytes: 7 })];
    expect(lines).toHaveLength(2);
    expect(lines[0]!.ok && (lines[0]!.value as { a: string }).a.length).toBe(10_000);
    expect(lines[1]!.ok && lines[1]!.value).toEqual({ b: "é€😀" });
  });

  it("reports invalid UTF-8 and invalid JSON without stopping", () => {
    const file = tempFile(Buffer.concat([Buffer.from('{"a":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n{oops}\n{"ok":true}\n')]));
    const lines = [...readJsonl(file)];
    expect(lines[0]).toMatchObject({ lineNumber: 1, ok: false, problem: "not valid UTF-8 (byte 10 of the line)" });
    expect(lines[1]).toMatchObject({ lineNumber: 2, ok: false });
    expect(lines[1]!.ok ? "" : lines[1]!.problem).toMatch(/^not valid JSON/);
    expect(lines[2]).toMatchObject({ lineNumber: 3, ok: true, value: { ok: true } });
  });

  it("tolerates a byte-order mark and names a missing file", () => {
    expect([...readJsonl(tempFile('\ufeff{"a":1}\n'))][0]).toMatchObject({ ok: true, value: { a: 1 } });
    expect(() => [...readJsonl("/nonexistent/f.jsonl")]).toThrow("cannot read /nonexistent/f.jsonl: no such file");
  });

  it("reports a line longer than maxLineBytes without buffering it, and goes on with the next", () => {
    const long = `{"a":"${"x".repeat(3_000_000)}"}`;
    const file = tempFile(`{"a":1}\n${long}\n{"a":3}\n${long}`);
    const lines = [...readJsonl(file, { maxLineBytes: 64 * 1024, chunkBytes: 4096 })];
    expect(lines).toEqual([
      { lineNumber: 1, ok: true, value: { a: 1 }, text: '{"a":1}' },
      { lineNumber: 2, ok: false, field: "(line)", problem: "line longer than 65536 bytes", text: "" },
      { lineNumber: 3, ok: true, value: { a: 3 }, text: '{"a":3}' },
      { lineNumber: 4, ok: false, field: "(line)", problem: "line longer than 65536 bytes", text: "" },
    ]);
    // A line exactly at the limit is read.
    const exact = `{"a":"${"y".repeat(100 - 8)}"}`;
    expect(exact).toHaveLength(100);
    expect([...readJsonl(tempFile(`${exact}\n`), { maxLineBytes: 100, chunkBytes: 7 })][0]).toMatchObject({ ok: true });
    expect([...readJsonl(tempFile(`${exact}x\n`), { maxLineBytes: 100, chunkBytes: 7 })][0]).toMatchObject({ ok: false });
  });

  it("reports nesting deeper than maxDepth instead of overflowing the stack", () => {
    const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
    const file = tempFile(`{"q":${deep(5000)}}\n${"[".repeat(5000)}\n{"m":{"k":${deep(4)}}}\n{"ok":${deep(512 - 1)}}\n`);
    const lines = [...readJsonl(file)];
    expect(lines[0]).toMatchObject({ lineNumber: 1, ok: false, field: "q[0][0][0][0][0][0][0]…", problem: "nesting deeper than 512 levels" });
    expect(lines[1]).toMatchObject({ lineNumber: 2, ok: false });
    expect(lines[2]).toMatchObject({ lineNumber: 3, ok: true });
    expect(lines[3]).toMatchObject({ lineNumber: 4, ok: true });
    expect([...readJsonl(file, { maxDepth: 4 })][2]).toMatchObject({ ok: false, field: "m.k[0][0]", problem: "nesting deeper than 4 levels" });
    // Nothing downstream can overflow on what was let through.
    for (const line of lines) if (line.ok) JSON.stringify(line.value);
  });

  it("rejects unpaired surrogates, in values and in keys, but keeps escaped pairs", () => {
    const file = tempFile(
      ['{"q":"a\\ud800b"}', '{"m":{"x":["ok","\\udc00"]}}', '{"\\ud83d":1}', '{"e":"\\ud83d\\ude00 \\u00e9"}', '{"s":"\\\\ud800"}'].join("\n"),
    );
    const lines = [...readJsonl(file)];
    expect(lines[0]).toMatchObject({ ok: false, field: "q", problem: "contains an unpaired surrogate (\\ud800), which is not valid Unicode" });
    expect(lines[1]).toMatchObject({ ok: false, field: "m.x[1]", problem: "contains an unpaired surrogate (\\udc00), which is not valid Unicode" });
    expect(lines[2]).toMatchObject({ ok: false, field: "\\ud83d", problem: "field name contains an unpaired surrogate (\\ud83d), which is not valid Unicode" });
    expect(lines[3]).toMatchObject({ ok: true, value: { e: "😀 é" } });
    expect(lines[4]).toMatchObject({ ok: true, value: { s: "\\ud800" } });
  });

  it("reports numbers out of range instead of reading them as Infinity", () => {
    const lines = [...readJsonl(tempFile('{"n":1e400}\n{"a":[1,-1e999]}\n{"tiny":1e-400}\n'))];
    expect(lines[0]).toMatchObject({ ok: false, field: "n", problem: "number out of range (got Infinity; JSON numbers here must be within ±1.8e308)" });
    expect(lines[1]).toMatchObject({ ok: false, field: "a[1]", problem: "number out of range (got -Infinity; JSON numbers here must be within ±1.8e308)" });
    expect(lines[2]).toMatchObject({ ok: true, value: { tiny: 0 } });
  });

  it("says a folder is not a JSONL file, and reads standard input for -", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-jsonl-"));
    expect(() => [...readJsonl(dir)]).toThrow(new InputError(`${dir} is a folder, not a JSONL file`));
    const fd = fs.openSync(tempFile('{"a":1}\n{"a":2}\n'), "r");
    try {
      expect([...readJsonl("-", { stdinFd: fd })].map((line) => line.ok && line.value)).toEqual([{ a: 1 }, { a: 2 }]);
    } finally {
      fs.closeSync(fd);
    }
  });

  it("names the field of a structural problem in readRecords", () => {
    const file = tempFile('{"n":1e400}\n');
    expect(() => readRecords(file, z.object({ n: z.number() }), { what: "test" })).toThrow(
      expect.objectContaining({ details: [`${file}:1: n: number out of range (got Infinity; JSON numbers here must be within ±1.8e308)`] }),
    );
  });
});
