import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { RunError } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { KnowledgeStore, type RetrievedChunk } from "./retrieve.js";
import { buildStore, type StoreManifest } from "./store.js";
import { config as baseConfig, copyDocs, DOCS, tempDir } from "./test-support.js";

/**
 * One text per batch: the quantized embedder's vectors then depend on the text alone, not on the texts it
 * was batched with, so a store built in another process (or from its embedding cache) is bit-for-bit the same.
 */
const config = { ...baseConfig, embeddings: { ...baseConfig.embeddings, batch_size: 1 } };

/**
 * Two builds of the same shape (the same number of chunks, so FAISS's vector count cannot tell them apart)
 * that differ in content: B says "Zorblax" where A says "Terraform".
 */
async function twoBuilds(embeddingCacheFile?: string): Promise<{ a: { dir: string; manifest: StoreManifest }; b: { dir: string; manifest: StoreManifest } }> {
  const docsA = copyDocs(["role-devops-sre.md"]);
  const docsB = tempDir();
  fs.writeFileSync(path.join(docsB, "role-devops-sre.md"), fs.readFileSync(path.join(DOCS, "role-devops-sre.md"), "utf8").replaceAll("Terraform", "Zorblax"));
  const a = path.join(tempDir(), "a");
  const b = path.join(tempDir(), "b");
  const build = async (docsDir: string, outputDir: string) => ({ dir: outputDir, manifest: (await buildStore({ docsDir, outputDir, config, embeddingCacheFile })).manifest });
  const built = { a: await build(docsA, a), b: await build(docsB, b) };
  expect(built.b.manifest.counts.chunks).toBe(built.a.manifest.counts.chunks);
  return built;
}

/** A store folder holding `from`'s files, with some of them taken from `other`. */
function mixed(from: string, other: string, taken: string[]): string {
  const dir = path.join(tempDir(), "vector_store");
  fs.mkdirSync(dir);
  for (const name of ["manifest.json", "index.faiss", "chunks.sqlite"]) fs.copyFileSync(path.join(taken.includes(name) ? other : from, name), path.join(dir, name));
  return dir;
}

async function query(store: KnowledgeStore, text: string, mode: "dense" | "hybrid" = "dense"): Promise<RetrievedChunk[]> {
  return store.retrieve(text, { k: 3, mode });
}

describe("a store opens as one build, never a mix of two", () => {
  it("refuses a folder whose chunks.sqlite or index comes from another build than its manifest", async () => {
    const { a, b } = await twoBuilds();
    const chunksFromB = mixed(a.dir, b.dir, ["chunks.sqlite"]);
    await expect(KnowledgeStore.open(chunksFromB, config)).rejects.toThrow(RunError);
    await expect(KnowledgeStore.open(chunksFromB, config)).rejects.toThrow(
      new RegExp(`chunks\\.sqlite belongs to another build \\(${b.manifest.build_id}\\) than manifest\\.json \\(${a.manifest.build_id}\\): the store is damaged`),
    );
    await expect(KnowledgeStore.open(chunksFromB, config)).rejects.toMatchObject({ hint: expect.stringContaining("--rebuild") });
    const indexFromB = mixed(a.dir, b.dir, ["index.faiss"]);
    await expect(KnowledgeStore.open(indexFromB, config)).rejects.toThrow(/index\.faiss is not the index this store's manifest was written with/);
    // Each build on its own opens.
    for (const { dir } of [a, b]) await (await KnowledgeStore.open(dir, config)).close();
  });

  for (const step of ["manifest", "chunks", "index"] as const) {
    it(`opens the new build alone when rag build swaps the folder right after the reader's "${step}" step`, async () => {
      const { a, b } = await twoBuilds();
      const expected = await KnowledgeStore.open(a.dir, config);
      const expectedHits = await query(expected, "infrastructure as code tooling");
      await expected.close();
      // The folder holds B; between two steps of opening it, a build puts A in its place (as rag build's swap does).
      const target = path.join(tempDir(), "vector_store");
      fs.renameSync(b.dir, target);
      const steps: string[] = [];
      const store = await KnowledgeStore.open(target, config, {
        onOpenStep: (at, attempt) => {
          steps.push(`${at}#${attempt}`);
          if (at === step && attempt === 1) {
            fs.renameSync(target, `${target}.old`);
            fs.renameSync(a.dir, target);
          }
        },
      });
      try {
        expect(steps).toContain("index#2");
        expect(store.manifest.build_id).toBe(a.manifest.build_id);
        expect(await query(store, "infrastructure as code tooling")).toEqual(expectedHits);
        const lexical = await store.retrieve("Terraform Zorblax", { k: 10, mode: "lexical" });
        expect(lexical.length).toBeGreaterThan(0);
        for (const hit of lexical) expect(hit.text).not.toMatch(/Zorblax/);
      } finally {
        await store.close();
      }
    });
  }

  it("gives up with a clear RunError when the store keeps changing while it is opened", async () => {
    const { a, b } = await twoBuilds();
    const target = path.join(tempDir(), "vector_store");
    fs.renameSync(b.dir, target);
    let holds = "b";
    const attempts = new Set<number>();
    const opening = KnowledgeStore.open(target, config, {
      onOpenStep: (at, attempt) => {
        attempts.add(attempt);
        if (at !== "manifest") return;
        // Every attempt sees the other build once it has read the manifest.
        const aside = holds === "b" ? b.dir : a.dir;
        fs.renameSync(target, aside);
        fs.renameSync(holds === "b" ? a.dir : b.dir, target);
        holds = holds === "b" ? "a" : "b";
      },
    });
    await expect(opening).rejects.toThrow(RunError);
    await expect(opening).rejects.toThrow(/the store .*vector_store changed while it was being opened \(chunks\.sqlite was replaced\); try again/);
    expect(attempts.size).toBeGreaterThan(1);
  });

  it("every query during real concurrent rebuilds (another process) answers from one build", async () => {
    // The child's builds find every vector in this cache: each of them takes about a second.
    const cache = path.join(tempDir(), "embeddings.sqlite");
    const { a, b } = await twoBuilds(cache);
    const expected: Record<string, Array<{ mode: string; hits: unknown }>> = {};
    const queries = [
      ["infrastructure as code tooling", "dense"],
      ["on-call incident response Terraform Zorblax", "hybrid"],
    ] as const;
    const answers = async (store: KnowledgeStore) => Promise.all(queries.map(async ([text, mode]) => ({ mode, hits: strip(await query(store, text, mode)) })));
    // What each build answers, by the documents it was built from.
    for (const { dir, manifest } of [a, b]) {
      const store = await KnowledgeStore.open(dir, config);
      expected[manifest.docs_dir] = await answers(store);
      await store.close();
    }
    expect(expected[a.manifest.docs_dir]).not.toEqual(expected[b.manifest.docs_dir]);

    // A second process rebuilds the store over and over, alternating between the two document folders, while
    // this one opens and queries it in a loop, until the store has been swapped a few times and both builds
    // have answered.
    const target = path.join(tempDir(), "vector_store");
    fs.cpSync(a.dir, target, { recursive: true });
    const child = rebuildLoop(target, [a.manifest.docs_dir, b.manifest.docs_dir], cache);
    const seen = new Map<string, number>();
    let changedWhileOpening = 0;
    const deadline = Date.now() + 90_000;
    try {
      while ((child.builds() < 4 || seen.size < 2) && child.running() && Date.now() < deadline) {
        let store: KnowledgeStore;
        try {
          store = await KnowledgeStore.open(target, config);
        } catch (error) {
          if (error instanceof RunError && /changed while it was being opened/.test(error.message)) {
            changedWhileOpening++;
            continue;
          }
          throw error;
        }
        try {
          const got = await answers(store);
          // The answers of exactly one build, and the one the opened manifest names.
          const builtFrom = store.manifest.docs_dir;
          const versions = Object.entries(expected).filter(([, answer]) => sameAnswers(answer, got)).map(([docs]) => docs);
          expect(versions, JSON.stringify(got)).toEqual([builtFrom]);
          seen.set(builtFrom, (seen.get(builtFrom) ?? 0) + 1);
        } finally {
          await store.close();
        }
      }
    } finally {
      child.stop();
    }
    const result = await child.done;
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(result.builds).toBeGreaterThanOrEqual(4);
    // The store changed under the reader: both builds answered.
    expect([...seen.keys()].sort()).toEqual([a.manifest.docs_dir, b.manifest.docs_dir].sort());
    // Retries absorb the swaps: giving up is the exception, not the rule.
    expect(changedWhileOpening).toBeLessThan([...seen.values()].reduce((sum, n) => sum + n, 0));
  });
});

/** The parts of a hit that identify it; scores to 4 places (another process computed the store's vectors). */
function strip(hits: RetrievedChunk[]): Array<{ source: string; start: number; end: number; text: string; score: string }> {
  return hits.map((hit) => ({ source: hit.source, start: hit.start, end: hit.end, text: hit.text, score: hit.score.toFixed(4) }));
}

function sameAnswers(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const RAG_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "index.js");

/**
 * `buildStore` in a child process (the package's build, as the CLI runs it) over and over, alternating between
 * the document folders, into one store folder, until `stop` (it then finishes the build it is in).
 */
function rebuildLoop(target: string, docs: string[], cache: string): { builds(): number; running(): boolean; stop(): void; done: Promise<{ code: number | null; builds: number; stderr: string }> } {
  const script = `
    const { buildStore } = await import(${JSON.stringify(pathToFileURL(RAG_DIST).href)});
    const [target, config, cache, ...docs] = process.argv.slice(1);
    let stop = false;
    process.stdin.on("data", () => undefined).on("end", () => (stop = true));
    for (let round = 0; !stop; round++) {
      await buildStore({ docsDir: docs[(round + 1) % docs.length], outputDir: target, config: JSON.parse(config), embeddingCacheFile: cache });
      process.stdout.write("built\\n");
    }
    process.exit(0);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script, target, JSON.stringify(config), cache, ...docs], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let running = true;
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const builds = () => stdout.split("\n").filter((line) => line === "built").length;
  const done = new Promise<{ code: number | null; builds: number; stderr: string }>((resolve) =>
    child.on("close", (code) => {
      running = false;
      resolve({ code, builds: builds(), stderr });
    }),
  );
  return { builds, running: () => running, stop: () => child.stdin.end(), done };
}
