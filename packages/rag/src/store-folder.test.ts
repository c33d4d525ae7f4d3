import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { BUILD_MARKER_FILE, InputError } from "@ats-lora/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { KnowledgeStore } from "./retrieve.js";
import { buildStore } from "./store.js";
import { config, copyDocs, deadPid, snapshot, tempDir } from "./test-support.js";

afterEach(() => {
  vi.restoreAllMocks();
});

/** Hidden folders a build leaves beside its output (staging, previous). */
function leftovers(parent: string): string[] {
  return fs.readdirSync(parent).filter((name) => name.startsWith("."));
}

describe("rag build only ever replaces a vector store", () => {
  it("refuses an output folder that holds other files, and leaves them as they were", async () => {
    const docs = copyDocs(["role-devops-sre.md"]);
    const out = tempDir();
    fs.writeFileSync(path.join(out, "notes.txt"), "mine");
    fs.mkdirSync(path.join(out, "photos"));
    fs.writeFileSync(path.join(out, "photos", "a.jpg"), "jpeg");
    const before = snapshot(out);
    const build = buildStore({ docsDir: docs, outputDir: out, config });
    await expect(build).rejects.toThrow(InputError);
    await expect(buildStore({ docsDir: docs, outputDir: out, config })).rejects.toThrow(
      /--output .* is not empty and does not hold an earlier vector store build \(it has notes\.txt, photos\): refusing to replace it/,
    );
    expect(snapshot(out)).toEqual(before);
    expect(leftovers(path.dirname(out)).filter((name) => name.startsWith(`.${path.basename(out)}.`))).toEqual([]);
  });

  it("refuses the documents' parent folder as output (rag build --docs W/docs --output W)", async () => {
    const workdir = tempDir();
    copyDocs(["role-devops-sre.md", "fair-hiring-policy.md"], path.join(workdir, "docs"));
    fs.writeFileSync(path.join(workdir, "feedback.sqlite"), "precious");
    const before = snapshot(workdir);
    await expect(buildStore({ docsDir: path.join(workdir, "docs"), outputDir: workdir, config })).rejects.toThrow(InputError);
    await expect(buildStore({ docsDir: path.join(workdir, "docs"), outputDir: workdir, config })).rejects.toThrow(
      /--docs .*docs is inside --output .*: building the store there would replace the documents/,
    );
    expect(snapshot(workdir)).toEqual(before);
    expect(fs.existsSync(workdir)).toBe(true);
  });

  it("refuses the documents folder itself as output, and an output inside it", async () => {
    const docs = copyDocs(["role-devops-sre.md"]);
    const before = snapshot(docs);
    await expect(buildStore({ docsDir: docs, outputDir: docs, config })).rejects.toThrow(InputError);
    await expect(buildStore({ docsDir: docs, outputDir: docs, config })).rejects.toThrow(/are the same folder: building the store there would replace the documents/);
    // The same folder reached through a symbolic link is the same folder.
    const link = path.join(tempDir(), "link");
    fs.symlinkSync(docs, link);
    await expect(buildStore({ docsDir: docs, outputDir: link, config })).rejects.toThrow(/are the same folder/);
    await expect(buildStore({ docsDir: docs, outputDir: path.join(docs, "vector_store"), config })).rejects.toThrow(
      /--output .*vector_store is inside --docs .*: the store's own files would be read as documents/,
    );
    expect(snapshot(docs)).toEqual(before);
    expect(fs.readdirSync(docs)).toEqual(["role-devops-sre.md"]);
  });

  it("replaces its own earlier build, .gitkeep kept, and a store built before build markers and build ids", async () => {
    const docs = copyDocs(["role-devops-sre.md"]);
    const out = path.join(tempDir(), "vector_store");
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, ".gitkeep"), "");
    await buildStore({ docsDir: docs, outputDir: out, config });
    expect(fs.readdirSync(out).sort()).toEqual([BUILD_MARKER_FILE, ".gitkeep", "chunks.sqlite", "index.faiss", "manifest.json"]);
    makeLegacy(out);
    // A store from before build ids opens as it is.
    const legacy = await KnowledgeStore.open(out, config);
    try {
      expect(legacy.manifest.build_id).toBeUndefined();
      expect((await legacy.retrieve("Terraform", { k: 1, mode: "hybrid" }))[0]!.source).toBe("role-devops-sre.md");
    } finally {
      await legacy.close();
    }
    const rebuilt = await buildStore({ docsDir: docs, outputDir: out, config });
    expect(rebuilt.files.unchanged).toEqual(["role-devops-sre.md"]);
    expect(rebuilt.manifest.build_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(fs.readdirSync(out).sort()).toEqual([BUILD_MARKER_FILE, ".gitkeep", "chunks.sqlite", "index.faiss", "manifest.json"]);
    expect(leftovers(path.dirname(out))).toEqual([]);
  });
});

/** What a store built before build folders and build ids looks like: no marker, no build id, no index hash. */
function makeLegacy(dir: string): void {
  fs.rmSync(path.join(dir, BUILD_MARKER_FILE));
  const manifestFile = path.join(dir, "manifest.json");
  const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as Record<string, unknown>;
  delete manifest.build_id;
  delete manifest.index_sha256;
  fs.writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
  const db = new Database(path.join(dir, "chunks.sqlite"));
  db.exec("DROP TABLE meta");
  db.close();
}

describe("a build killed half-way is recovered by the next build or query", () => {
  it("puts back a store left hidden between the swap's two renames when it is opened for a query, and drops dead staging folders", async () => {
    const docs = copyDocs(["role-devops-sre.md"]);
    const parent = tempDir();
    const out = path.join(parent, "vector_store");
    await buildStore({ docsDir: docs, outputDir: out, config });
    const pid = deadPid();
    fs.renameSync(out, path.join(parent, `.vector_store.previous-${pid}-abcd1234`));
    const staging = path.join(parent, `.vector_store.staging-${pid}-0123abcd`);
    fs.mkdirSync(staging);
    fs.writeFileSync(path.join(staging, BUILD_MARKER_FILE), JSON.stringify({ kind: "vector store", pid, created_at: new Date().toISOString() }));
    fs.writeFileSync(path.join(staging, "chunks.sqlite"), "half written");

    const store = await KnowledgeStore.open(out, config);
    try {
      expect((await store.retrieve("on-call Terraform", { k: 1, mode: "hybrid" }))[0]!.source).toBe("role-devops-sre.md");
    } finally {
      await store.close();
    }
    expect(fs.readdirSync(parent)).toEqual(["vector_store"]);
  });

  it("the next rag build puts the hidden store back first, and reuses its chunks", async () => {
    const docs = copyDocs(["role-devops-sre.md", "fair-hiring-policy.md"]);
    const parent = tempDir();
    const out = path.join(parent, "vector_store");
    await buildStore({ docsDir: docs, outputDir: out, config });
    fs.renameSync(out, path.join(parent, `.vector_store.previous-${deadPid()}-abcd1234`));
    const report = await buildStore({ docsDir: docs, outputDir: out, config });
    expect(report.files).toEqual({ added: [], changed: [], unchanged: ["fair-hiring-policy.md", "role-devops-sre.md"], removed: [] });
    expect(report.embedded_chunks).toBe(0);
    expect(fs.readdirSync(parent)).toEqual(["vector_store"]);
  });

  it("puts back the newest of two stores that builds which died left hidden, and drops the older", async () => {
    const parent = tempDir();
    const older = path.join(parent, "older");
    const newer = path.join(parent, "newer");
    await buildStore({ docsDir: copyDocs(["role-devops-sre.md"]), outputDir: older, config });
    await buildStore({ docsDir: copyDocs(["fair-hiring-policy.md"]), outputDir: newer, config });
    const pid = deadPid();
    fs.renameSync(newer, path.join(parent, `.vector_store.previous-${pid}-00000000`));
    fs.renameSync(older, path.join(parent, `.vector_store.previous-${pid}-ffffffff`));
    const store = await KnowledgeStore.open(path.join(parent, "vector_store"), config);
    try {
      expect([...store.sources()]).toEqual(["fair-hiring-policy.md"]);
    } finally {
      await store.close();
    }
    expect(fs.readdirSync(parent)).toEqual(["vector_store"]);
  });

  it("recovers a store built before build markers when the build replacing it died between the two renames", async () => {
    const docs = copyDocs(["role-devops-sre.md"]);
    const parent = tempDir();
    const out = path.join(parent, "vector_store");
    await buildStore({ docsDir: docs, outputDir: out, config });
    makeLegacy(out);
    // The build dies right after moving the old store aside: no rename after that one happens.
    const rename = fs.renameSync;
    vi.spyOn(fs, "renameSync").mockImplementation((from, to) => {
      if (String(from).includes(`${path.sep}.vector_store.`)) throw new Error("killed");
      rename(from, to);
    });
    await expect(buildStore({ docsDir: docs, outputDir: out, config, rebuild: true })).rejects.toThrow();
    vi.restoreAllMocks();
    expect(fs.existsSync(out)).toBe(false);
    // What the dead process left behind carries its pid; make it a dead one.
    const pid = deadPid();
    for (const name of leftovers(parent)) fs.renameSync(path.join(parent, name), path.join(parent, name.replace(`-${process.pid}-`, `-${pid}-`)));
    expect(leftovers(parent).some((name) => name.startsWith(".vector_store.previous-"))).toBe(true);

    const store = await KnowledgeStore.open(out, config);
    try {
      expect(store.manifest.build_id).toBeUndefined();
      expect(await store.retrieve("Terraform", { k: 1, mode: "lexical" })).toHaveLength(1);
    } finally {
      await store.close();
    }
    expect(fs.readdirSync(parent)).toEqual(["vector_store"]);
  });
});
