import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Embedder } from "@ats-lora/embeddings";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunkText } from "./chunker.js";

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "data", "ats_docs");
let embedder: Embedder;
const count = (text: string): number => embedder.countTokens(text);

beforeAll(async () => {
  embedder = await Embedder.load();
});
afterAll(async () => {
  await embedder.close();
});

describe("chunkText (sized by the embedder's tokenizer)", () => {
  it("cuts the bundled knowledge base into exact slices within the size, each under its nearest heading", () => {
    for (const name of fs.readdirSync(DOCS)) {
      const text = fs.readFileSync(path.join(DOCS, name), "utf8");
      const chunks = chunkText(text, { size: 128, overlap: 16, countTokens: count });
      expect(chunks.length, name).toBeGreaterThan(1);
      for (const chunk of chunks) {
        expect(chunk.text).toBe(text.slice(chunk.start, chunk.end));
        expect(chunk.tokens).toBeLessThanOrEqual(128);
        expect(count(chunk.text)).toBe(chunk.tokens);
        // The heading is the last one at or before the chunk.
        const before = [...text.matchAll(/^#{1,6}\s+(.+?)\s*$/gm)].filter((match) => match.index <= chunk.start).at(-1)?.[1] ?? "";
        expect(chunk.heading, `${name}@${chunk.start}`).toBe(before);
      }
      // Nothing but whitespace is lost between chunks.
      const covered = new Array<boolean>(text.length).fill(false);
      for (const chunk of chunks) for (let i = chunk.start; i < chunk.end; i += 1) covered[i] = true;
      const lost = [...text].filter((char, i) => !covered[i] && !/\s/.test(char));
      expect(lost.join(""), name).toBe("");
    }
  });

  it("prefers paragraph, then sentence boundaries, and overlaps neighbours", () => {
    const paragraph = (n: number) => `Paragraph ${n} talks about Kubernetes operators. It has a second sentence about SAP FICO closing.`;
    const text = `# Title\n\n${[1, 2, 3, 4, 5, 6].map(paragraph).join("\n\n")}`;
    // Overlap comes in whole pieces (here sentences of about 20 tokens), so it needs room for one.
    const chunks = chunkText(text, { size: 48, overlap: 24, countTokens: count });
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) {
      expect(chunk.heading).toBe("Title");
      // A section's first chunk carries its heading line, which helps retrieval.
      expect(chunk.text).toMatch(/^(# Title\n\nParagraph|Paragraph|It has)/);
      expect(chunk.text).toMatch(/\.$/);
    }
    // Consecutive chunks share text.
    for (let i = 1; i < chunks.length; i += 1) expect(chunks[i]!.start).toBeLessThan(chunks[i - 1]!.end);
  });

  it("cuts a run without any separator by characters, and refuses an overlap as large as the size", () => {
    const word = "x".repeat(2000);
    const chunks = chunkText(word, { size: 50, overlap: 0, countTokens: count });
    expect(chunks.map((chunk) => chunk.text).join("")).toBe(word);
    for (const chunk of chunks) expect(chunk.tokens).toBeLessThanOrEqual(50);
    expect(() => chunkText("a b", { size: 10, overlap: 10, countTokens: count })).toThrow(/overlap/);
    expect(chunkText("   \n\n  ", { size: 10, overlap: 2, countTokens: count })).toEqual([]);
  });
});
