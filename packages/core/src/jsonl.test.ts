import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readJsonl } from "./jsonl.js";

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
});
