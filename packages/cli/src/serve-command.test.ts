import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { beforeAll, describe, expect, it } from "vitest";

// `ats-lora serve` as a user runs it (the built program, a model from `models pull`), with feedback arriving over
// HTTP while `collect import` writes the same store, and a kill -9 in the middle of that.

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");

let workdir: string;

beforeAll(() => {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-serve-cli-"));
  const pulled = spawnSync(process.execPath, [BIN, "--workdir", workdir, "--json", "models", "pull", "smollm2-135m-instruct"], { encoding: "utf8" });
  expect(pulled.status, pulled.stderr).toBe(0);
}, 180_000);

interface Served {
  child: ChildProcess;
  url: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

/** Starts `ats-lora --json serve --port 0` and waits for the line with its URL. */
async function serve(): Promise<Served> {
  const child = spawn(process.execPath, [BIN, "--workdir", workdir, "--json", "serve", "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (chunk) => {
      stdout += chunk;
      // --json prints the result (url, models) as one JSON document once the server listens.
      try {
        resolve((JSON.parse(stdout) as { url: string }).url);
      } catch {
        // not all of it yet
      }
    });
    void exit.then(({ code }) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
  return { child, url, exit, stderr: () => stderr };
}

async function postJson(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

async function recordInteractions(url: string, prefix: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const { status, json } = await postJson(`${url}/api/interactions`, { task: "match_score", query: `${prefix} ${i}: score the candidate`, response: '{"match_score": 0.5}', model: "ats-api-v1" });
    expect(status).toBe(201);
    ids.push(json.interaction_id as string);
  }
  return ids;
}

type ReviewResult = { id: string; status: number | "failed"; ms: number };

/** Each client posts its share of the reviews one after another; every answer's status and latency goes into `results` as it comes. */
async function postReviews(url: string, ids: readonly string[], clients: number, results: ReviewResult[] = []): Promise<ReviewResult[]> {
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = client; i < ids.length; i += clients) {
        const started = performance.now();
        try {
          const { status } = await postJson(`${url}/api/feedback`, { interaction_id: ids[i], rating: 1 + (i % 5), correct_points: ["load test"], reviewer: `client-${client}` });
          results.push({ id: ids[i]!, status, ms: performance.now() - started });
        } catch {
          results.push({ id: ids[i]!, status: "failed", ms: performance.now() - started });
        }
      }
    }),
  );
  return results;
}

function importFile(lines: number): string {
  const file = path.join(workdir, `import-${lines}.jsonl`);
  const rows = Array.from({ length: lines }, (_, i) => JSON.stringify({ id: `bulk-${i}`, task: "resume_analysis", query: `Analyse resume ${i}`, response: `Strengths: ${i}` }));
  fs.writeFileSync(file, `${rows.join("\n")}\n`);
  return file;
}

function feedbackIds(): Set<string> {
  const db = new Database(path.join(workdir, "feedback_db", "feedback.sqlite"), { readonly: true });
  try {
    return new Set(db.prepare<[], string>("SELECT interaction_id FROM feedback").pluck().all());
  } finally {
    db.close();
  }
}

describe("ats-lora serve", () => {
  it("serves the pulled model, keeps every review posted while collect import writes, and exits 0 on SIGTERM", async () => {
    const server = await serve();
    try {
      const models = await fetch(`${server.url}/v1/models`);
      expect(models.status).toBe(200);
      expect(((await models.json()) as { data: Array<{ id: string }> }).data.map((model) => model.id)).toEqual(["smollm2-135m-instruct", "ats"]);
      expect((await postJson(`${server.url}/api/feedback`, { interaction_id: "ix_unknown", rating: 4 })).status).toBe(404);
      // The reviewer page: HTML whose scripts and styles are the server's own files.
      const page = await fetch(`${server.url}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toContain("text/html");
      const html = await page.text();
      const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!).filter((url) => !url.startsWith("data:"));
      expect(assets.length).toBeGreaterThanOrEqual(2);
      for (const asset of assets) {
        expect(asset).toMatch(/^\/assets\//);
        expect((await fetch(`${server.url}${asset}`)).status).toBe(200);
      }

      const ids = await recordInteractions(server.url, "load", 200);
      const wal = path.join(workdir, "feedback_db", "feedback.sqlite-wal");
      const walSize = (): number => (fs.existsSync(wal) ? fs.statSync(wal).size : 0);
      const importer = spawn(process.execPath, [BIN, "--workdir", workdir, "collect", "import", importFile(10_000)], { stdio: ["ignore", "ignore", "pipe"] });
      const imported = new Promise<number | null>((resolve) => importer.on("exit", resolve));
      // The reviews go in while the import holds its write transaction: they wait for it, they must not fail.
      while (importer.exitCode === null && walSize() < 200_000) await new Promise((resolve) => setTimeout(resolve, 2));
      expect(importer.exitCode).toBeNull();
      const results = await postReviews(server.url, ids, 20);
      expect(await imported).toBe(0);
      expect(results.filter((result) => result.status !== 201)).toEqual([]);
      const stored = feedbackIds();
      expect(ids.filter((id) => !stored.has(id))).toEqual([]);
      const stats = (await (await fetch(`${server.url}/api/stats`)).json()) as { interactions: number; feedback: number };
      expect(stats).toMatchObject({ interactions: 10_200, feedback: 200 });
    } finally {
      server.child.kill("SIGTERM");
    }
    expect(await server.exit).toEqual({ code: 0, signal: null });
  }, 180_000);

  it("loses no acknowledged review when killed with SIGKILL under load", async () => {
    const server = await serve();
    const ids = await recordInteractions(server.url, "kill", 200);
    const results: ReviewResult[] = [];
    const posting = postReviews(server.url, ids, 20, results);
    // Kill once a good share of the reviews is acknowledged to the clients (stored rows run ahead of the answers).
    while (results.filter((result) => result.status === 201).length < 40) await new Promise((resolve) => setTimeout(resolve, 5));
    server.child.kill("SIGKILL");
    expect((await server.exit).signal).toBe("SIGKILL");
    await posting;
    const acknowledged = results.filter((result) => result.status === 201).map((result) => result.id);
    expect(acknowledged.length).toBeGreaterThanOrEqual(40);
    expect(results.some((result) => result.status === "failed")).toBe(true);
    const stored = feedbackIds();
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    const db = new Database(path.join(workdir, "feedback_db", "feedback.sqlite"), { readonly: true });
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    db.close();
  }, 180_000);
});
