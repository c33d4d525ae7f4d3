import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PDFDocument } from "pdf-lib";
import { describe, expect, it } from "vitest";
import { documentText } from "./documents.js";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "test-fixtures");
const read = (name: string) => fs.readFileSync(path.join(FIXTURES, name));

describe("document readers (pdf.js for PDF, mammoth for DOCX)", () => {
  it("reads a two-page PDF resume line by line, pages apart, in reading order", async () => {
    const text = await documentText(read("resume-priya-raman.pdf"), ".pdf");
    const lines = text.split("\n");
    expect(lines.slice(0, 5)).toEqual([
      "Priya Raman",
      "Senior Site Reliability Engineer",
      "Summary",
      "Eight years running Kubernetes platforms on AWS EKS for payment workloads.",
      "Cut the p99 checkout latency from 900 ms to 240 ms with Envoy and Istio tuning.",
    ]);
    // The second page starts after a blank line.
    expect(text).toContain("Istio tuning.\n\nExperience\n");
    expect(text.indexOf("SEV-1")).toBeLessThan(text.indexOf("Certified Kubernetes Administrator (CKA), 2021."));
  });

  it("reads a DOCX resume as Markdown: Word headings stay headings, no escape backslashes", async () => {
    const text = await documentText(read("resume-tomasz-nowak.docx"), ".docx");
    expect(text).toContain("# Experience");
    expect(text).toContain("# Education");
    expect(text).toContain("Fabrikam Logistics, 2020-06 to present: month-end close in SAP FICO for 12 entities.");
    expect(text).toContain("- Automated the F110 payment run and cut duplicate payments to zero.");
    expect(text).not.toContain("\\");
  });

  it("explains what is wrong with a file it cannot read", async () => {
    await expect(documentText(Buffer.from("%PDF-1.7 this is not a PDF body"), ".pdf")).rejects.toThrow(/not a readable PDF/);
    await expect(documentText(Buffer.from("PK not a zip"), ".docx")).rejects.toThrow(/not a readable DOCX/);
    const blank = await PDFDocument.create();
    blank.addPage();
    await expect(documentText(Buffer.from(await blank.save()), ".pdf")).rejects.toThrow(/no text layer .*OCR/);
    await expect(documentText(Buffer.from([0xc3, 0x28]), ".md")).rejects.toThrow();
    await expect(documentText(Buffer.from('{"a": "x"}\n{oops\n'), ".jsonl")).rejects.toThrow(/^line 2: /);
  });

  it("reads JSON and JSONL records as their string values", async () => {
    expect(await documentText(Buffer.from('{"title": "Rubric", "levels": ["junior", {"senior": "leads"}], "weight": 3}'), ".json")).toBe("Rubric\n\njunior\n\nleads");
    expect(await documentText(Buffer.from('{"a": "one"}\n\n{"a": "two", "b": "three"}\n'), ".jsonl")).toBe("one\n\ntwo\nthree");
  });
});
