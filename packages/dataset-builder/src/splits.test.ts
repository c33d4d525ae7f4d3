import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FORMATS, loadConfig, SPLITS, type AtsConfig, type Split } from "@ats-lora/core";
import { FeedbackStore, importJsonlFile } from "@ats-lora/feedback";
import { describe, expect, it } from "vitest";
import { writeTrainingPairs, type BuildOptions } from "./build.js";
import type { TrainingPairsManifest } from "./schema.js";
import { assignSplits, checkLeakage, contentKey, splitOf } from "./split.js";

// Realistic resumes of people in unrelated trades, so that no two of them are near-duplicates.
const RESUMES: Record<string, string> = {
  ruiz: "Ana Ruiz, Madrid. Senior backend engineer. Cabify 2019-2025: six years of Go and PostgreSQL; led the migration of 40 services to Kubernetes on AWS EKS; cut p99 latency of the pricing API from 480 ms to 120 ms. Glovo 2017-2019: Python and Django. BSc Computer Science, UPM 2017.",
  lindqvist: "Tomás Lindqvist, Malmö. Registered nurse in an adult intensive care unit for nine years at Skåne University Hospital; ACLS instructor; charge nurse two shifts a week; mentors newly graduated nurses. BScN, Lund University 2015.",
  okafor: "Chinedu Okafor, Lagos. Chartered accountant (ICAN). Eight years at KPMG Nigeria and Dangote Group: month-end close, IFRS 16 lease accounting, consolidation of 14 subsidiaries in SAP FICO; led a team of five through a group audit with no material findings. BSc Accounting, University of Lagos 2014.",
  tanaka: "Yuki Tanaka, Osaka. Mechanical design engineer, seven years at Daikin: compressor housings for air conditioners designed in SolidWorks and validated in ANSYS; GD&T; three patents on vibration damping. Six Sigma Green Belt. MEng Mechanical Engineering, Osaka University 2016.",
  mueller: "Lena Müller, Hamburg. Primary school teacher for ten years: mathematics and German for grades one to four; coordinates the school's inclusion programme; has trained six trainee teachers. Second State Examination in Education, Hamburg 2013.",
  silva: "Rafael Silva, São Paulo. Sales manager for B2B software, nine years at RD Station and TOTVS; grew the mid-market book from R$4M to R$11M in annual recurring revenue; hired and coached twelve account executives; Salesforce and HubSpot. MBA, FGV 2018.",
  haddad: "Omar Haddad, Amman. Data scientist, five years at Aramex: delivery-time forecasting with LightGBM, clustering of courier routes, A/B tests of courier incentives; Python, SQL, Airflow. MSc Statistics, University of Jordan 2019.",
  obrien: "Siobhán O'Brien, Cork. Airline captain, ATPL with 6,200 flight hours; A320 captain at Aer Lingus since 2020; type rating instructor; crew resource management facilitator. BSc Aviation Management, University of Limerick 2008.",
  dubois: "Camille Dubois, Lyon. Pastry chef, twelve years: head pastry chef at a Michelin-starred restaurant in Lyon since 2019, a brigade of six; seasonal dessert menus; HACCP-certified; runs the restaurant's bread programme. CAP Pâtissier 2010.",
  kowalski: "Piotr Kowalski, Gdańsk. Electrician and site foreman: eleven years of industrial installations in shipyards, 15 kV switchgear, PLC panels (Siemens S7); SEP licence group 1 up to 30 kV; led crews of up to 14 electricians. Technical school diploma in electrical engineering 2011.",
};
const NAMES = Object.keys(RESUMES);

const ASK = "Analyse this resume and list the candidate's strengths and gaps.";
const ASK_PARAPHRASED = "Please analyse this resume and list the candidate's strengths and gaps.";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ats-build-db-splits-"));
}

/** The build's manifest (what build-db prints). */
async function buildManifest(options: BuildOptions): Promise<TrainingPairsManifest> {
  return (await writeTrainingPairs(options)).manifest;
}

function config(): AtsConfig {
  const base = loadConfig({ env: {} });
  return { ...base, feedback: { ...base.feedback, min_samples: 1 } };
}

function importInto(storeFile: string, lines: unknown[]): void {
  const file = path.join(tempDir(), "import.jsonl");
  fs.writeFileSync(file, lines.map((line) => JSON.stringify(line)).join("\n"));
  const store = FeedbackStore.open(storeFile);
  try {
    importJsonlFile(store, file);
  } finally {
    store.close();
  }
}

const copy = (id: string, name: string, query: string, created: string, rating: number, response: string) => ({
  id,
  created_at: created,
  task: "resume_analysis",
  query,
  context: [RESUMES[name]!],
  response,
  model: "mistral-7b-ats-v0",
  feedback: { rating, reviewer: "p.sharma" },
});

interface Row {
  prompt: string;
  split: Split;
  source_ids: string[];
}

function readRows(dir: string): Row[] {
  return FORMATS.flatMap((format) =>
    SPLITS.flatMap((split) =>
      fs
        .readFileSync(path.join(dir, format, `${split}.jsonl`), "utf8")
        .split("\n")
        .filter((text) => text !== "")
        .map((text) => ({ ...(JSON.parse(text) as Omit<Row, "split">), split })),
    ),
  );
}

/** The one split that every row naming any copy of each resume is in; fails when a resume's rows are split. */
function splitPerResume(rows: Row[]): Map<string, Split> {
  const result = new Map<string, Split>();
  for (const name of NAMES) {
    const splits = new Set(rows.filter((row) => row.source_ids.some((id) => id.startsWith(`${name}-`))).map((row) => row.split));
    expect([...splits], `rows about ${name}'s resume`).toHaveLength(splits.size === 0 ? 0 : 1);
    if (splits.size === 1) result.set(name, [...splits][0]!);
  }
  return result;
}

describe("splits by content group", () => {
  it("keeps every copy of a resume in one split, and no prompt changes split when later imports add better-rated copies", async () => {
    const storeFile = path.join(tempDir(), "feedback_db", "feedback.sqlite");
    const out = path.join(tempDir(), "training_pairs");
    // First import: each resume twice, with the same request (an identical prompt), reviewed differently.
    importInto(
      storeFile,
      NAMES.flatMap((name) => [
        copy(`${name}-1`, name, ASK, "2026-09-01T09:00:00Z", 4, `A solid profile; ${name}'s experience is clearly described.`),
        copy(`${name}-2`, name, ASK, "2026-09-02T09:00:00Z", 2, "The resume lists no experience."),
      ]),
    );
    const first = await buildManifest({ config: config(), storeFile, outputDir: out });
    const firstRows = readRows(out);
    const firstSplits = splitPerResume(firstRows);
    expect([...firstSplits.keys()].sort()).toEqual([...NAMES].sort());

    // A later import: a third copy of every resume. For most, the request is paraphrased or repeated word for
    // word and the copy is better rated and newer, so it becomes the kept representative of its group; for
    // the last two, it is worse rated and the earlier representative stays.
    importInto(
      storeFile,
      NAMES.map((name, index) =>
        index >= NAMES.length - 2
          ? copy(`${name}-3`, name, ASK_PARAPHRASED, "2026-10-15T09:00:00Z", 3, "An average profile.")
          : copy(`${name}-3`, name, index % 2 === 0 ? ASK_PARAPHRASED : ASK, "2026-10-15T09:00:00Z", 5, `Strengths and gaps of ${name}, point by point.`),
      ),
    );
    const second = await buildManifest({ config: config(), storeFile, outputDir: out });
    const secondRows = readRows(out);
    // The better-rated later copies are the kept representatives now.
    const kept = new Set(secondRows.map((row) => row.source_ids[0]));
    for (const name of NAMES.slice(0, -2)) expect(kept.has(`${name}-3`), name).toBe(true);
    for (const name of NAMES.slice(-2)) expect(kept.has(`${name}-1`), name).toBe(true);

    // Every resume's rows sit in one split, the same split as after the first build.
    const secondSplits = splitPerResume(secondRows);
    for (const name of NAMES) expect(secondSplits.get(name), name).toBe(firstSplits.get(name));
    // No prompt changed split between the builds.
    const promptSplits = new Map(firstRows.map((row) => [row.prompt, row.split]));
    for (const row of secondRows) {
      if (promptSplits.has(row.prompt)) expect(row.split, row.source_ids.join("+")).toBe(promptSplits.get(row.prompt));
    }

    // The manifest counts the content groups and reports the computed leakage check.
    for (const manifest of [first, second] as TrainingPairsManifest[]) {
      expect(manifest.splits.content_groups).toBe(NAMES.length);
      expect(manifest.splits.leakage.violations).toBe(0);
      expect(manifest.splits.leakage.moved).toBe(0);
      expect(manifest.splits.leakage.definition).toMatch(/identical .*near-duplicate/);
      const heldOut = manifest.splits.leakage.compared.val + manifest.splits.leakage.compared.test;
      expect(heldOut + manifest.splits.leakage.compared.train).toBe(NAMES.length);
    }
    expect(second.splits.conflicts).toBe(0);
    expect(second.warnings.filter((warning) => warning.includes("split"))).toEqual([]);
  });

  it("keeps prompts where an earlier build put them when one content group spans two splits, and warns", async () => {
    // An earlier build (as recorded in its splits.jsonl) put two copies of one resume in different splits:
    // what a bridging prompt joining two groups, or a build from before content groups, leaves behind.
    const cfg = config();
    const storeFile = path.join(tempDir(), "feedback_db", "feedback.sqlite");
    importInto(storeFile, [
      copy("ruiz-1", "ruiz", ASK, "2026-09-01T09:00:00Z", 5, "Strong Go and Kubernetes background."),
      copy("ruiz-2", "ruiz", ASK_PARAPHRASED, "2026-09-02T09:00:00Z", 2, "No cloud experience."),
      copy("ruiz-3", "ruiz", "Analyse this resume and list the candidate's strengths and gaps, please.", "2026-09-03T09:00:00Z", 1, "Unclear."),
    ]);
    const out = path.join(tempDir(), "training_pairs");
    fs.mkdirSync(out);
    const key = (query: string) => contentKey("resume_analysis", query, [RESUMES.ruiz!]);
    fs.writeFileSync(
      path.join(out, "splits.jsonl"),
      [`{"key":"${key(ASK)}","split":"train"}`, `{"key":"${key(ASK_PARAPHRASED)}","split":"test"}`].sort().join("\n") + "\n",
    );
    fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify({ format_version: 1, seed: cfg.dataset.seed, split: cfg.dataset.split }));

    const manifest = await buildManifest({ config: cfg, storeFile, outputDir: out });
    expect(manifest.splits.content_groups).toBe(1);
    expect(manifest.splits.conflicts).toBe(1);
    expect(manifest.splits.leakage.moved).toBe(0);
    expect(manifest.warnings.join("\n")).toMatch(/ruiz-1, ruiz-2, ruiz-3.*train and test.*each keeps its split/);
    // ruiz-1 is kept, and its rows stay in train.
    expect(new Set(readRows(out).map((row) => row.split))).toEqual(new Set(["train"]));
    const ledger = new Map(
      fs
        .readFileSync(path.join(out, "splits.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((text) => JSON.parse(text) as { key: string; split: Split })
        .map((entry) => [entry.key, entry.split]),
    );
    expect(ledger.get(key(ASK))).toBe("train");
    expect(ledger.get(key(ASK_PARAPHRASED))).toBe("test");
    expect(ledger.size).toBe(3);
  });

  it("inherits the split of a previous build made before content groups, from its rows", async () => {
    const cfg = config();
    const storeFile = path.join(tempDir(), "feedback_db", "feedback.sqlite");
    importInto(storeFile, [
      copy("ruiz-1", "ruiz", ASK, "2026-09-01T09:00:00Z", 5, "Strong Go and Kubernetes background."),
      copy("okafor-1", "okafor", ASK, "2026-09-01T09:00:00Z", 5, "Strong IFRS background."),
    ]);
    const out = path.join(tempDir(), "training_pairs");
    // Rows of an older build: the splits it chose, no splits.jsonl.
    const legacy: Record<string, Split> = { "ruiz-1": "val", "okafor-1": "test" };
    for (const format of FORMATS) {
      fs.mkdirSync(path.join(out, format), { recursive: true });
      for (const split of SPLITS) {
        const rows = Object.entries(legacy).filter(([, s]) => s === split && format === "sft");
        fs.writeFileSync(path.join(out, format, `${split}.jsonl`), rows.map(([id]) => `${JSON.stringify({ prompt: "p", completion: "c", task: "t", source_ids: [id] })}\n`).join(""));
      }
    }
    fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify({ format_version: 1, seed: cfg.dataset.seed, split: cfg.dataset.split }));
    await buildManifest({ config: cfg, storeFile, outputDir: out });
    const splits = new Map(readRows(out).map((row) => [row.source_ids[0], row.split]));
    expect(Object.fromEntries(splits)).toEqual(legacy);

    // A changed seed reassigns on purpose, and says so.
    const reseeded = { ...cfg, dataset: { ...cfg.dataset, seed: cfg.dataset.seed + 1 } };
    const manifest = await buildManifest({ config: reseeded, storeFile, outputDir: out });
    expect(manifest.warnings.join("\n")).toContain(`dataset.seed changed from ${cfg.dataset.seed} to ${cfg.dataset.seed + 1}`);
  });
});

describe("assignSplits", () => {
  const fractions = { train: 0.7, val: 0.15, test: 0.15 };
  // Members 0..n with a similarity table; 1 = near-duplicate.
  const members = (keys: string[]) => keys.map((key) => ({ key, task: "t", prompt: `prompt ${key}` }));
  const near = (pairs: Array<[number, number]>) => (a: number, b: number) =>
    pairs.some(([x, y]) => (x === a && y === b) || (x === b && y === a)) ? 0.97 : 0.1;

  it("gives a new group the split of the hash of its smallest content key, and every member that split", () => {
    const result = assignSplits(members(["c3", "a1", "b2"]), { similarity: near([[0, 1], [1, 2]]), threshold: 0.95, previous: new Map(), seed: 42, fractions });
    expect(result.groups).toBe(1);
    expect(result.splits).toEqual(Array(3).fill(splitOf("a1", 42, fractions)));
    expect(result.newGroups).toBe(1);
  });

  it("lets a new member inherit its group's earlier split even when its own key would hash elsewhere", () => {
    // Find a key whose own hash is not "test", and make the earlier group "test".
    const newcomer = Array.from({ length: 50 }, (_, i) => `0${i}`).find((key) => splitOf(key, 42, fractions) !== "test")!;
    const result = assignSplits(members(["f1", newcomer]), { similarity: near([[0, 1]]), threshold: 0.95, previous: new Map([["f1", "test"]]), seed: 42, fractions });
    expect(result.splits).toEqual(["test", "test"]);
    expect(result.carried).toBe(1);
    expect(result.conflicts).toEqual([]);
  });

  it("keeps each earlier prompt where it was when a newcomer bridges two groups, and reports the conflict", () => {
    const result = assignSplits(members(["a", "b", "x"]), {
      similarity: (a, b) => ([a, b].includes(2) ? ([a, b].includes(0) ? 0.99 : 0.96) : 0.5),
      threshold: 0.95,
      previous: new Map<string, Split>([["a", "train"], ["b", "test"]]),
      seed: 42,
      fractions,
    });
    expect(result.groups).toBe(1);
    // The newcomer follows the earlier prompt it is closest to.
    expect(result.splits).toEqual(["train", "test", "train"]);
    expect(result.conflicts).toEqual([{ members: [0, 1, 2], splits: ["train", "test"] }]);
  });

  it("joins identical prompts across tasks and identical content keys", () => {
    const result = assignSplits(
      [
        { key: "k1", task: "a", prompt: "same" },
        { key: "k2", task: "b", prompt: "same" },
        { key: "k1", task: "a", prompt: "other whitespace" },
        { key: "k9", task: "a", prompt: "unrelated" },
      ],
      { similarity: () => 0, threshold: 0.95, previous: new Map(), seed: 1, fractions },
    );
    expect(result.groups).toBe(2);
    expect(result.group[0]).toBe(result.group[1]);
    expect(result.group[0]).toBe(result.group[2]);
    expect(result.group[3]).not.toBe(result.group[0]);
  });
});

describe("checkLeakage", () => {
  it("counts held-out prompts identical or near-identical to a training prompt", () => {
    const entries = [
      { index: 0, id: "a", task: "t", split: "train" as const, prompt: "P0" },
      { index: 1, id: "b", task: "t", split: "test" as const, prompt: "P0" },
      { index: 2, id: "c", task: "t", split: "val" as const, prompt: "P2" },
      { index: 3, id: "d", task: "u", split: "val" as const, prompt: "P3" },
      { index: 4, id: "e", task: "t", split: "test" as const, prompt: "P4" },
    ];
    // c is a near-duplicate of a; d would be, but is of another task; e is not.
    const similarity = (x: number, y: number) => ([x, y].sort().join() === "0,2" ? 0.96 : [x, y].sort().join() === "0,3" ? 0.99 : 0.2);
    const leakage = checkLeakage(entries, { similarity, threshold: 0.95 });
    expect(leakage.compared).toEqual({ train: 1, val: 2, test: 2 });
    expect(leakage.violations).toBe(2);
    expect(leakage.examples).toEqual([
      { split: "test", id: "b", train_id: "a", similarity: 1 },
      { split: "val", id: "c", train_id: "a", similarity: 0.96 },
    ]);
  });
});
