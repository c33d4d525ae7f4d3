import { createRequire } from "node:module";
import path from "node:path";

/** File types the store reads, by extension. */
export const DOCUMENT_TYPES = [".md", ".markdown", ".txt", ".json", ".jsonl", ".pdf", ".docx"] as const;

/**
 * The text of one document: Markdown and text as they are, JSON and JSONL records as their string values,
 * PDF through Mozilla's pdf.js (one line per text line, pages apart), DOCX through mammoth as Markdown so
 * Word headings stay headings for the chunker. Throws with a reason a person can act on.
 */
export async function documentText(bytes: Buffer, extension: string): Promise<string> {
  switch (extension) {
    case ".pdf":
      return pdfText(bytes);
    case ".docx":
      return docxText(bytes);
    default: {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      if (extension === ".json") return strings(JSON.parse(text)).join("\n\n");
      if (extension === ".jsonl") {
        return text
          .split("\n")
          .map((line, index) => {
            if (line.trim() === "") return "";
            try {
              return strings(JSON.parse(line)).join("\n");
            } catch (error) {
              throw new Error(`line ${index + 1}: ${(error as Error).message}`, { cause: error });
            }
          })
          .filter((record) => record !== "")
          .join("\n\n");
      }
      return text;
    }
  }
}

function strings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === "object") return Object.values(value).flatMap(strings);
  return [];
}

interface PdfTextItem {
  str: string;
  hasEOL: boolean;
  transform: number[];
}

async function pdfText(bytes: Buffer): Promise<string> {
  const pdfjs = await import("pdfjs-dist/legacy/build/pdf.mjs");
  const fonts = `${path.join(path.dirname(createRequire(import.meta.url).resolve("pdfjs-dist/package.json")), "standard_fonts")}${path.sep}`;
  let document;
  try {
    document = await pdfjs.getDocument({ data: new Uint8Array(bytes), standardFontDataUrl: fonts, isEvalSupported: false, verbosity: 0 }).promise;
  } catch (error) {
    const name = (error as Error).name;
    if (name === "PasswordException") throw new Error("the PDF is encrypted with a password", { cause: error });
    throw new Error(`not a readable PDF: ${(error as Error).message}`, { cause: error });
  }
  try {
    const pages: string[] = [];
    for (let number = 1; number <= document.numPages; number += 1) {
      const page = await document.getPage(number);
      const content = await page.getTextContent();
      let text = "";
      let lastY: number | undefined;
      for (const item of content.items as PdfTextItem[]) {
        if (item.str === undefined) continue; // marked-content markers
        if (item.str !== "") {
          const y = item.transform[5];
          // pdf.js flags most line ends; a change of baseline catches the rest.
          if (lastY !== undefined && y !== lastY && text !== "" && !text.endsWith("\n")) text += "\n";
          text += item.str;
          lastY = y;
        }
        if (item.hasEOL && !text.endsWith("\n")) text += "\n";
      }
      pages.push(text.replace(/[ \t]+\n/g, "\n").replace(/\n{3,}/g, "\n\n").trim());
      page.cleanup();
    }
    const text = pages.filter((page) => page !== "").join("\n\n");
    if (text === "") throw new Error("the PDF has no text layer (a scanned image?); run OCR first");
    return text;
  } finally {
    await document.destroy();
  }
}

interface MammothMarkdown {
  convertToMarkdown(input: { buffer: Buffer }): Promise<{ value: string }>;
}

async function docxText(bytes: Buffer): Promise<string> {
  // convertToMarkdown is part of mammoth's JavaScript API but missing from its type declarations.
  const mammoth = (await import("mammoth")).default as unknown as MammothMarkdown;
  let markdown: string;
  try {
    markdown = (await mammoth.convertToMarkdown({ buffer: bytes })).value;
  } catch (error) {
    throw new Error(`not a readable DOCX: ${(error as Error).message}`, { cause: error });
  }
  // mammoth escapes Markdown punctuation ("2020\-06"); the embedder and BM25 want the plain characters.
  return markdown.replace(/\\([\\`*_{}[\]()#+\-.!<>|~])/g, "$1").replace(/\n{3,}/g, "\n\n").trim();
}
