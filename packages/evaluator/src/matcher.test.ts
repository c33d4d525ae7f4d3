import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { eng as ENGLISH_STOP_WORDS } from "stopword";
import { installRoot, loadConfig, readModelCard, sha256File, workdirPaths } from "@ats-lora/core";
import { bundledTaskRows } from "@ats-lora/core/testing";
import { describe, expect, it } from "vitest";
import { analyze, fitMatcher, loadMatcher, matcherForEval, MatcherScorer, scoreMatch, trainMatcher } from "./matcher.js";
import { readTestData } from "./held-out-set.js";

const config = loadConfig({ env: {} });

const matchRows = () => bundledTaskRows("one_page_resumes.jsonl", "match_score", config.prompts);

function writeRows(file: string, rows: readonly object[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
}

describe("the TF-IDF matcher", () => {
  it("analyses as scikit-learn's vectorizer does: lower-case words of 2+ characters, stop words out, then unigrams and bigrams", () => {
    expect(analyze("The Senior Python developer, 5 years of SQL & a BSc", [1, 2])).toEqual(["senior", "python", "developer", "years", "sql", "bsc", "senior python", "python developer", "developer years", "years sql", "sql bsc"]);
    expect(analyze("Python SQL", [1, 1])).toEqual(["python", "sql"]);
  });

  it("keeps the most frequent terms and fits smoothed idf: ln((1+N)/(1+df)) + 1", () => {
    const model = fitMatcher(["python java", "python sql", "python sql"], { weights: { skills: 0.4, experience: 0.4, education: 0.2 }, ngram_range: [1, 1], stop_words: "english", max_features: 2 });
    expect(model.vocabulary).toEqual(["python", "sql"]);
    expect(model.idf[0]).toBeCloseTo(Math.log(4 / 4) + 1, 12);
    expect(model.idf[1]).toBeCloseTo(Math.log(4 / 3) + 1, 12);
    const scorer = new MatcherScorer(model);
    expect(scorer.similarity("python", "python sql java")).toBeCloseTo(1 / Math.sqrt(1 + (Math.log(4 / 3) + 1) ** 2), 12);
    expect(scorer.similarity("java", "java")).toBe(0);
  });

  it("gives the same vectors as scikit-learn's TfidfVectorizer with the same settings, on the bundled resumes and postings", () => {
    const python = process.env.ATS_LORA_PYTHON ?? path.join(installRoot(), ".venv", "bin", "python");
    const documents = matchRows().flatMap((row) => row.prompt.split("\n\n")).slice(0, 80);
    const probes = documents.slice(0, 6);
    const script = `
import json, sys
from sklearn.feature_extraction.text import TfidfVectorizer
given = json.load(sys.stdin)
vectorizer = TfidfVectorizer(ngram_range=(1, 2), stop_words=given["stop_words"], max_features=5000)
vectorizer.fit(given["documents"])
matrix = vectorizer.transform(given["probes"])
print(json.dumps({"vocabulary": sorted(vectorizer.vocabulary_), "idf": [float(vectorizer.idf_[vectorizer.vocabulary_[t]]) for t in sorted(vectorizer.vocabulary_)], "cosines": (matrix @ matrix.T).toarray().tolist()}))
`;
    const run = spawnSync(python, ["-c", script], { input: JSON.stringify({ documents, probes, stop_words: ENGLISH_STOP_WORDS }), encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    expect(run.status, run.stderr).toBe(0);
    const reference = JSON.parse(run.stdout) as { vocabulary: string[]; idf: number[]; cosines: number[][] };
    const model = fitMatcher(documents);
    expect(model.vocabulary.length).toBe(reference.vocabulary.length);
    expect(model.vocabulary).toEqual(reference.vocabulary);
    model.idf.forEach((value, i) => expect(value).toBeCloseTo(reference.idf[i]!, 10));
    const scorer = new MatcherScorer(model);
    probes.forEach((a, i) => probes.forEach((b, j) => expect(scorer.similarity(a, b)).toBeCloseTo(reference.cosines[i]![j]!, 10)));
  });

  it("match train fits on the training rows only, saves a versioned matcher with its lineage, and eval's baseline uses it", async () => {
    const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-matcher-"));
    const context = { paths: workdirPaths(workdir), config };
    const rows = matchRows();
    const sft = path.join(context.paths.trainingPairs, "sft");
    writeRows(path.join(sft, "train.jsonl"), rows.slice(0, 40));
    writeRows(path.join(sft, "val.jsonl"), rows.slice(40, 50));
    writeRows(path.join(sft, "test.jsonl"), rows.slice(50));
    fs.writeFileSync(path.join(context.paths.trainingPairs, "manifest.json"), JSON.stringify({ format_version: 1 }));

    const first = await trainMatcher({}, context);
    expect(first.name).toBe("tfidf_matcher_v1");
    expect(first.mlflow).toBeUndefined();
    const card = readModelCard(first.path);
    expect(card).toMatchObject({
      kind: "matcher",
      method: "tfidf",
      data_sha256: sha256File(path.join(sft, "train.jsonl")),
      dataset: { manifest_sha256: sha256File(path.join(context.paths.trainingPairs, "manifest.json")), rows: { train: 40, pairs: 40 } },
      settings: { weights: { skills: 0.4, experience: 0.4, education: 0.2 }, ngram_range: [1, 2], stop_words: "english", max_features: 5000 },
      metrics: { train: { pairs: 40 }, val: { pairs: 10 } },
    });
    // Its terms come from the training rows: a word only the test rows use is not in its vocabulary.
    const { scorer } = loadMatcher(first.path);
    const vocabulary = new Set(scorer.model.vocabulary);
    const trainText = rows.slice(0, 40).map((row) => row.prompt.toLowerCase()).join(" ");
    const testOnly = [...new Set(rows.slice(50).flatMap((row) => analyze(row.prompt, [1, 1])))].filter((term) => !trainText.includes(term));
    expect(testOnly.length).toBeGreaterThan(0);
    for (const term of testOnly) expect(vocabulary.has(term)).toBe(false);

    const second = await trainMatcher({ settings: { max_features: 50 } }, context);
    expect(second.name).toBe("tfidf_matcher_v2");
    expect(loadMatcher(second.path).scorer.model.vocabulary).toHaveLength(50);

    // Eval's baseline: the newest matcher; without one, a fit on the train rows beside the test file.
    const testFile = path.join(sft, "test.jsonl");
    const examples = readTestData(testFile);
    expect(matcherForEval(undefined, context.paths.models, testFile, examples, config.prompts).source).toEqual({ kind: "trained", path: second.path });
    expect(matcherForEval("tfidf_matcher_v1", context.paths.models, testFile, examples, config.prompts).source).toEqual({ kind: "trained", path: first.path });
    const empty = path.join(workdir, "no-models");
    expect(matcherForEval(undefined, empty, testFile, examples, config.prompts).source).toEqual({ kind: "fitted on training rows", path: path.join(sft, "train.jsonl") });
    const alone = path.join(workdir, "alone.jsonl");
    writeRows(alone, rows.slice(50));
    expect(matcherForEval(undefined, empty, alone, readTestData(alone), config.prompts).source).toEqual({ kind: "fitted on the evaluated set", path: alone });

    const scored = scoreMatch({ resume: rows[0]!.prompt, job: "Python SQL Spark Airflow data engineering" }, context);
    expect(scored.matcher).toBe(second.path);
    expect(scored.score).toBeGreaterThan(0);
  });

  it("refuses training rows without a match-score pair, and a folder that is not a matcher, naming them", async () => {
    const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "ats-matcher-"));
    const context = { paths: workdirPaths(workdir), config };
    const file = path.join(workdir, "rows.jsonl");
    writeRows(file, [{ task: "resume_parse", prompt: "Parse it.", completion: "{}" }]);
    await expect(trainMatcher({ data: file }, context)).rejects.toThrow(`${file}: no match_score rows whose prompt holds a resume and a job posting`);
    await expect(trainMatcher({ data: path.join(workdir, "nothing") }, context)).rejects.toThrow(/no training rows at .*nothing/);
    expect(() => loadMatcher(workdir)).toThrow(/is not a trained matcher \(its model.json is missing\)/);
    expect(() => scoreMatch({ resume: "x", job: "y" }, context)).toThrow(/no trained matcher in/);
  });
});
