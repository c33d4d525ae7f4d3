import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";

// The real program, as built by `pnpm build` (the test script builds first).
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ats-cli-"));
}

function cli(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...options.env },
    input: options.input ?? "",
    cwd: options.cwd,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function writeLines(file: string, lines: unknown[]): string {
  fs.writeFileSync(file, lines.map((line) => JSON.stringify(line)).join("\n") + "\n");
  return file;
}

function sampleLines(prefix: string, n: number): unknown[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    created_at: "2026-10-01T08:00:00Z",
    task: i % 2 === 0 ? "resume_analysis" : "match_score",
    query: `Analyse resume ${i} for the Data Engineer role.`,
    context: [`Resume ${i}: 5 years of Spark and Airflow. Contact r${i}@example.com, +1 415 555 0142.`],
    response: `Strengths: Spark (${i}).`,
    model: "mistral-7b-ats-v0",
    metadata: { batch: prefix },
    feedback: { rating: (i % 5) + 1, correct_points: ["Spark"], incorrect_points: [], ideal_response: null, reviewer: "r" },
  }));
}

describe("ats-lora (the real CLI process)", () => {
  it("imports, reports stats as JSON and exports, exactly as documented", () => {
    const dir = tempDir();
    const workdir = path.join(dir, "W");
    const file = writeLines(path.join(dir, "F.jsonl"), sampleLines("a", 10));

    const imported = cli(["--workdir", workdir, "collect", "import", file]);
    expect(imported.stderr).toBe("");
    expect(imported.code).toBe(0);
    expect(imported.stdout).toContain("interactions 10 new");
    expect(fs.existsSync(path.join(workdir, "feedback_db", "feedback.sqlite"))).toBe(true);

    const stats = cli(["--workdir", workdir, "collect", "stats", "--json"]);
    expect(stats.code).toBe(0);
    const parsed = JSON.parse(stats.stdout);
    expect(parsed.interactions).toBe(10);
    expect(parsed.feedback).toBe(10);
    expect(parsed.rating_histogram).toEqual({ "1": 2, "2": 2, "3": 2, "4": 2, "5": 2 });

    const out = path.join(dir, "X.jsonl");
    const exported = cli(["--workdir", workdir, "collect", "export", "--out", out]);
    expect(exported.code).toBe(0);
    expect(fs.readFileSync(out, "utf8").trim().split("\n")).toHaveLength(10);

    // The global options also work after the subcommand.
    expect(JSON.parse(cli(["collect", "stats", "--workdir", workdir, "--json"]).stdout).interactions).toBe(10);
  });

  it("rejects a file with a bad line (exit 2, FILE:LINE listed, nothing written); --skip-invalid imports the rest", () => {
    const dir = tempDir();
    const file = path.join(dir, "bad.jsonl");
    const lines = sampleLines("b", 3).map((line) => JSON.stringify(line));
    lines.splice(1, 0, '{"query": "q", "response": "r", "feedback": {"rating": 6}}');
    fs.writeFileSync(file, lines.join("\n"));

    const rejected = cli(["--workdir", dir, "collect", "import", file]);
    expect(rejected.code).toBe(2);
    expect(rejected.stderr).toContain(`${file}:2: feedback.rating: must be an integer from 1 to 5 (got 6)`);
    expect(JSON.parse(cli(["--workdir", dir, "collect", "stats", "--json"]).stdout).interactions).toBe(0);

    const skipped = cli(["--workdir", dir, "--json", "collect", "import", "--skip-invalid", file]);
    expect(skipped.code).toBe(0);
    expect(skipped.stderr).toContain(`${file}:2: feedback.rating`);
    expect(JSON.parse(skipped.stdout).files[0]).toMatchObject({ lines: 4, skipped_lines: 1, interactions: { inserted: 3 } });
  });

  it("imports the good files of several and rejects the bad ones whole", () => {
    const dir = tempDir();
    const good = writeLines(path.join(dir, "good.jsonl"), sampleLines("g", 4));
    const bad = writeLines(path.join(dir, "bad.jsonl"), [...sampleLines("x", 2), { query: "q", response: "r", ratin: 3 }]);
    const result = cli(["--workdir", dir, "--json", "collect", "import", bad, good]);
    expect(result.code).toBe(2);
    const parsed = JSON.parse(result.stdout);
    expect(parsed.files.map((report: { file: string }) => report.file)).toEqual([good]);
    expect(parsed.rejected).toEqual([
      {
        file: bad,
        error: `${bad}: 1 problem in 1 of 3 lines; nothing from this file was imported`,
        problems: [`${bad}:3: ratin: unknown field; put extra data under "metadata"`],
      },
    ]);
    expect(parsed.store.interactions).toBe(4);
    expect(result.stderr).toContain("1 of 2 file(s) rejected, nothing of them imported");
  });

  it("adds one interaction with feedback and prints the new ids; bad input exits 2", () => {
    const dir = tempDir();
    const added = cli([
      "--workdir", dir, "--json", "collect", "add",
      "--task", "interview_question", "--query", "Ask a follow-up", "--response", "Tell me more.",
      "--context", "Resume: Kafka migration", "--context", "Answer: we improved things",
      "--rating", "2", "--incorrect", "too generic", "--ideal", "Which part of the Kafka migration did you own?",
      "--reviewer", "m.lindqvist",
    ]);
    expect(added.code).toBe(0);
    const ids = JSON.parse(added.stdout);
    expect(ids.interaction_id).toMatch(/^ix_/);
    expect(ids.feedback_id).toMatch(/^fb_/);
    const exported = path.join(dir, "out.jsonl");
    cli(["--workdir", dir, "collect", "export", "--out", exported]);
    expect(JSON.parse(fs.readFileSync(exported, "utf8"))).toMatchObject({
      id: ids.interaction_id,
      context: ["Resume: Kafka migration", "Answer: we improved things"],
      feedback: { id: ids.feedback_id, rating: 2, incorrect_points: ["too generic"], reviewer: "m.lindqvist" },
    });

    for (const rating of ["0", "6", "3.5", "five"]) {
      const bad = cli(["--workdir", dir, "collect", "add", "--query", "q", "--response", "r", "--rating", rating]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("must be a whole number from 1 to 5");
    }
    expect(cli(["--workdir", dir, "collect", "add", "--query", "q", "--rating", "3"]).code).toBe(2);
  });

  it("exits 2 on unknown commands and options, 0 on --help and --version, 1 on a failed run", () => {
    expect(cli(["nonsense"]).code).toBe(2);
    expect(cli(["collect", "import", "--no-such-flag", "x"]).code).toBe(2);
    expect(cli(["collect"]).code).toBe(2);
    expect(cli(["--version"]).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const stats = cli(["--workdir", tempDir(), "collect", "stats"]);
    expect(stats.code).toBe(1);
    expect(stats.stderr).toContain("no feedback store");
    expect(cli(["--workdir", tempDir(), "collect", "import", "/nonexistent.jsonl"]).code).toBe(2);
  });

  it("ends quietly when its reader closes the pipe early", () => {
    // `true` exits without reading, so every write of the help meets a closed pipe.
    const piped = spawnSync("bash", ["-c", `"${process.execPath}" "${BIN}" eval --help | true; exit \${PIPESTATUS[0]}`], { encoding: "utf8" });
    expect(piped.stderr).not.toContain("EPIPE");
    expect(piped.status).toBe(0);
  });

  it("shows an example in the help of every command", () => {
    const commands = [[], ["collect"], ["collect", "import"], ["collect", "add"], ["collect", "review"], ["collect", "export"], ["collect", "stats"], ["config", "show"], ["demo"], ["build-db"], ["rag", "build"], ["rag", "query"], ["rag", "eval"], ["train"], ["eval"], ["models", "create-tiny"], ["doctor"]];
    for (const command of commands) {
      const help = cli([...command, "--help"]);
      expect(help.code, command.join(" ")).toBe(0);
      expect(help.stdout, command.join(" ")).toMatch(/Examples?:\n\s+\$ ats-lora/);
    }
  });

  it("prints the effective configuration and rejects an invalid one with exit 2", () => {
    const dir = tempDir();
    const config = path.join(dir, "c.yaml");
    fs.writeFileSync(config, "training:\n  batch_size: 2\n");
    const shown = cli(["--config", config, "--json", "config", "show"], { env: { ATS_LORA_LORA__R: "8" } });
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ training: { batch_size: 2 }, lora: { r: 8, alpha: 32 } });
    const bad = cli(["config", "show"], { env: { ATS_LORA_MODEL__QUANTIZATION: "2bit" } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("ATS_LORA_MODEL__QUANTIZATION");
    expect(bad.stderr).toContain("model.quantization");
  });

  it("refuses to review without a terminal and says what to use instead", () => {
    const dir = tempDir();
    writeLines(path.join(dir, "p.jsonl"), [{ query: "q", response: "r" }]);
    cli(["--workdir", dir, "collect", "import", path.join(dir, "p.jsonl")]);
    const review = cli(["--workdir", dir, "collect", "review"]);
    expect(review.code).toBe(2);
    expect(review.stderr).toContain("needs an interactive terminal");
    expect(review.stderr).toContain("collect add");
  });

  it("leaves a valid database holding none of a file's rows when the import is killed with kill -9", async () => {
    const dir = tempDir();
    const workdir = path.join(dir, "W");
    cli(["--workdir", workdir, "collect", "import", writeLines(path.join(dir, "base.jsonl"), sampleLines("base", 5))]);
    // Large enough that the import is still running when killed.
    const big = path.join(dir, "big.jsonl");
    const fd = fs.openSync(big, "w");
    const filler = "Led the migration of 40 services to Kubernetes. ".repeat(30);
    for (let i = 0; i < 150_000; i += 1) {
      fs.writeSync(fd, `${JSON.stringify({ id: `kill-${i}`, query: `q${i}`, response: filler, feedback: { rating: 3 } })}\n`);
    }
    fs.closeSync(fd);

    const child = spawn(process.execPath, [BIN, "--workdir", workdir, "collect", "import", big], { stdio: "ignore" });
    const wal = path.join(workdir, "feedback_db", "feedback.sqlite-wal");
    // Kill once the import has written a good part of its transaction to the WAL.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (!fs.existsSync(wal) || fs.statSync(wal).size < 20_000_000)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(child.exitCode).toBeNull();
    child.kill("SIGKILL");
    const signal = await new Promise((resolve) => child.on("exit", (_code, sig) => resolve(sig)));
    expect(signal).toBe("SIGKILL");

    const db = new Database(path.join(workdir, "feedback_db", "feedback.sqlite"));
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    expect(db.prepare("SELECT COUNT(*) FROM interactions WHERE id LIKE 'kill-%'").pluck().get()).toBe(0);
    expect(db.prepare("SELECT COUNT(*) FROM interactions").pluck().get()).toBe(5);
    db.close();
    // And the store works afterwards.
    expect(JSON.parse(cli(["--workdir", workdir, "collect", "stats", "--json"]).stdout).interactions).toBe(5);
  });

  it("lets several processes write at once", async () => {
    const dir = tempDir();
    const workdir = path.join(dir, "W");
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, "--workdir", workdir, ...args], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (chunk) => (stderr += chunk));
        child.on("exit", (code) => resolve({ code, stderr }));
      });
    const files = [0, 1, 2].map((n) => writeLines(path.join(dir, `f${n}.jsonl`), sampleLines(`p${n}`, 2000)));
    const adds = Array.from({ length: 4 }, (_, n) =>
      run(["collect", "add", "--query", `q${n}`, "--response", "r", "--rating", "4"]),
    );
    const results = await Promise.all([...files.map((file) => run(["collect", "import", file])), ...adds]);
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
    const stats = JSON.parse(cli(["--workdir", workdir, "collect", "stats", "--json"]).stdout);
    expect(stats.interactions).toBe(6004);
    expect(stats.feedback).toBe(6004);
  });

  it("imports the bundled sample data cleanly", () => {
    const dir = tempDir();
    const files = ["interactions.jsonl", "gold_pairs.jsonl"].map((name) => path.join(REPO, "data", "samples", name));
    const result = cli(["--workdir", dir, "--json", "collect", "import", ...files]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const stats = JSON.parse(cli(["--workdir", dir, "collect", "stats", "--json"]).stdout);
    expect(stats.reviewed).toBeGreaterThanOrEqual(150);
    expect(Object.keys(stats.by_task)).toEqual(expect.arrayContaining(["interview_question", "match_score", "resume_analysis", "resume_parse"]));
    for (const rating of ["1", "2", "3", "4", "5"]) expect(stats.rating_histogram[rating]).toBeGreaterThan(10);
    expect(stats.multi_reviewed).toBeGreaterThan(0);
    expect(stats.pending_review).toBeGreaterThan(0);
    expect(stats.gold).toBeGreaterThan(0);
    const byModel = JSON.parse(cli(["--workdir", dir, "--json", "collect", "stats", "--by-model"]).stdout).by_model;
    const v0 = byModel.models.find((row: { model: string }) => row.model === "mistral-7b-ats-v0");
    expect(v0.reviewed).toBeGreaterThan(100);
    expect(v0.low).toBeLessThan(v0.mean_rating);
    expect(v0.high).toBeGreaterThan(v0.mean_rating);
    expect(byModel.comparisons).toContainEqual(expect.objectContaining({ a: "mistral-7b-ats-v0", b: "mistral-7b-ats-v1", verdict: expect.stringMatching(/better|worse|unclear/) }));
  });

  it("builds SFT, DPO and KTO training pairs after collect import, and prints the manifest", () => {
    const dir = tempDir();
    const workdir = path.join(dir, "W");
    const files = ["interactions.jsonl", "gold_pairs.jsonl"].map((name) => path.join(REPO, "data", "samples", name));
    expect(cli(["--workdir", workdir, "collect", "import", ...files]).code).toBe(0);
    const built = cli(["--workdir", workdir, "build-db", "--json"]);
    expect(built.code, built.stderr).toBe(0);
    const manifest = JSON.parse(built.stdout);
    const pairs = path.join(workdir, "feedback_db", "training_pairs");
    for (const format of ["sft", "dpo", "kto"]) {
      let total = 0;
      for (const split of ["train", "val", "test"]) {
        const lines = fs.readFileSync(path.join(pairs, format, `${split}.jsonl`), "utf8").split("\n").filter(Boolean);
        expect(lines.length, `${format}/${split}`).toBe(manifest.counts[format][split]);
        total += lines.length;
      }
      expect(total).toBeGreaterThan(50);
      expect(manifest.counts[format].total).toBe(total);
    }
    expect(JSON.parse(fs.readFileSync(path.join(pairs, "manifest.json"), "utf8"))).toEqual(manifest);

    // The seed's form: straight from a file, and --strict against the minimum.
    const fromFile = cli(["--workdir", workdir, "--json", "build-db", "--input", files[0]!, "--output", path.join(dir, "pairs")]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(JSON.parse(fromFile.stdout).source).toMatchObject({ kind: "file", reviewed: 160 });
    const strict = cli(["--workdir", workdir, "build-db", "--strict", "--output", path.join(dir, "p2")], { env: { ATS_LORA_FEEDBACK__MIN_SAMPLES: "1000" } });
    expect(strict.code).toBe(2);
    expect(strict.stderr).toContain("fewer than feedback.min_samples (1000)");
    const empty = cli(["--workdir", path.join(dir, "empty"), "build-db"]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain("no feedback store");
  });

  it("builds the knowledge store and answers a query, as documented", () => {
    const dir = tempDir();
    const built = cli(["--workdir", dir, "rag", "build", "--docs", path.join(REPO, "data", "ats_docs"), "--output", path.join(dir, "vector_store"), "--json"]);
    expect(built.code, built.stderr).toBe(0);
    expect(JSON.parse(built.stdout).manifest.counts.sources).toBe(fs.readdirSync(path.join(REPO, "data", "ats_docs")).length);
    const query = cli(["--workdir", dir, "rag", "query", "Which rule caps the match score when a must-have is missing?", "-k", "3", "--json"]);
    expect(query.code, query.stderr).toBe(0);
    const results = JSON.parse(query.stdout).results;
    expect(results).toHaveLength(3);
    expect(results.map((hit: { source: string }) => hit.source)).toContain("rubric-match-scoring.md");
    const human = cli(["--workdir", dir, "rag", "query", "SAP FICO month-end close", "--mode", "lexical"]);
    expect(human.stdout).toMatch(/^1\. \d+\.\d{4} {2}\S+\.md( › .+)? {2}\[\d+-\d+\]\n {3}.*SAP FICO/);
    expect(cli(["--workdir", path.join(dir, "nothing"), "rag", "query", "x"]).code).toBe(2);

    const evaluation = cli(["--workdir", dir, "rag", "eval", "--queries", path.join(REPO, "data", "rag-queries.jsonl"), "--json"]);
    expect(evaluation.code, evaluation.stderr).toBe(0);
    const report = JSON.parse(evaluation.stdout);
    expect(Object.keys(report.modes)).toEqual(["dense", "lexical", "hybrid"]);
    for (const scores of Object.values(report.modes) as Array<{ recall_at_k: number; mrr_at_10: number }>) {
      expect(scores.recall_at_k).toBeGreaterThan(0.5);
      expect(scores.mrr_at_10).toBeGreaterThan(0.5);
    }
    const table = cli(["--workdir", dir, "rag", "eval", "--queries", path.join(REPO, "data", "rag-queries.jsonl"), "-k", "3"]);
    expect(table.stdout).toMatch(/^\d+ labelled queries against .*\nmode +recall@3 +MRR@10/);
    expect(cli(["--workdir", dir, "collect", "import", path.join(REPO, "data", "samples", "interactions.jsonl")]).code).toBe(0);
    const pairs = cli(["--workdir", dir, "build-db", "--rag", "--json"]);
    expect(pairs.code, pairs.stderr).toBe(0);
    expect(JSON.parse(pairs.stdout).rag).toEqual({ store: path.join(dir, "vector_store"), top_k: 5, mode: "hybrid" });
    const firstRow = JSON.parse(fs.readFileSync(path.join(dir, "feedback_db", "training_pairs", "sft", "train.jsonl"), "utf8").split("\n")[0]!);
    expect(firstRow.prompt).toMatch(/^\[[\w-]+\.md( › [^\]]+)?\]$/m);

    const typo = path.join(dir, "typo.jsonl");
    fs.writeFileSync(typo, '{"query": "NCLEX", "relevant": ["role-nurse.md"]}\n');
    const bad = cli(["--workdir", dir, "rag", "eval", "--queries", typo]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${typo}:1: relevant: no source role-nurse.md in the store`);
    // Seven CLI runs that each load the embedder: over a minute when another test file holds a core.
  }, 240_000);
});
