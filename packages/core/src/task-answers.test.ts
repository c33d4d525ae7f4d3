import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { bundledDataDir } from "./paths.js";
import { MatchScoreAnswerSchema, ResumeParseAnswerSchema, taskAnswerJsonSchema, taskAnswerSchema } from "./task-answers.js";

interface Review {
  rating: number;
  ideal_response: string | null;
}

/** The answers the bundled samples hold up as right: responses rated 4 or more (the reviews' mean), corrections, gold outputs. */
function goodAnswers(task: string): Array<{ where: string; answer: string }> {
  const samples = path.join(bundledDataDir(), "samples");
  const lines = (file: string) => fs.readFileSync(path.join(samples, file), "utf8").split("\n").map((line, index) => ({ line: index + 1, text: line }));
  const answers: Array<{ where: string; answer: string }> = [];
  for (const { line, text } of lines("interactions.jsonl")) {
    if (text.trim() === "") continue;
    const row = JSON.parse(text) as { task: string; response: string; feedback?: Review | Review[] | null };
    if (row.task !== task) continue;
    const reviews = row.feedback == null ? [] : Array.isArray(row.feedback) ? row.feedback : [row.feedback];
    if (reviews.length > 0 && reviews.reduce((sum, review) => sum + review.rating, 0) / reviews.length >= 4) {
      answers.push({ where: `interactions.jsonl:${line} response`, answer: row.response });
    }
    reviews.forEach((review, index) => {
      if (review.ideal_response !== null) answers.push({ where: `interactions.jsonl:${line} feedback[${index}].ideal_response`, answer: review.ideal_response });
    });
  }
  for (const { line, text } of lines("gold_pairs.jsonl")) {
    if (text.trim() === "") continue;
    const row = JSON.parse(text) as { task: string; output: string };
    if (row.task === task) answers.push({ where: `gold_pairs.jsonl:${line} output`, answer: row.output });
  }
  return answers;
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Every array and string in a JSON Schema, by where it sits, with its bound (undefined when unbounded). */
function bounds(schema: unknown, at = "", found: Array<{ at: string; bound: number | undefined }> = []): Array<{ at: string; bound: number | undefined }> {
  if (typeof schema !== "object" || schema === null) return found;
  const node = schema as Record<string, unknown>;
  if (node.type === "array") found.push({ at, bound: node.maxItems as number | undefined });
  if (node.type === "string") found.push({ at, bound: node.maxLength as number | undefined });
  for (const [key, value] of Object.entries(node)) {
    if (key === "properties") for (const [name, property] of Object.entries(value as object)) bounds(property, `${at}.${name}`, found);
    else if (key === "items") bounds(value, `${at}[]`, found);
    else if (key === "anyOf") for (const option of value as unknown[]) bounds(option, at, found);
  }
  return found;
}

describe("task answer schemas", () => {
  it.each([
    ["resume_parse", ResumeParseAnswerSchema],
    ["match_score", MatchScoreAnswerSchema],
  ])("every %s answer the samples hold up as right, and that parses, validates", (task, schema) => {
    const answers = goodAnswers(task).filter(({ answer }) => parsesAsJson(answer));
    expect(answers.length).toBeGreaterThanOrEqual(20);
    const invalid = answers.flatMap(({ where, answer }) => {
      const result = schema.safeParse(JSON.parse(answer));
      return result.success ? [] : [`${where}: ${result.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`).join("; ")}`];
    });
    expect(invalid).toEqual([]);
  });

  it("rejects what the resume-parsing contract rules out", () => {
    const [good] = goodAnswers("resume_parse");
    const answer = JSON.parse(good!.answer) as Record<string, unknown> & { experience: Array<Record<string, unknown>> };
    const problem = (change: (copy: typeof answer) => void): string | undefined => {
      const copy = structuredClone(answer);
      change(copy);
      const result = ResumeParseAnswerSchema.safeParse(copy);
      return result.success ? undefined : result.error.issues.map((issue) => issue.path.join(".")).join(", ");
    };
    expect(problem(() => undefined)).toBeUndefined();
    expect(problem((copy) => (copy.hobbies = ["chess"]))).toBe("");
    expect(problem((copy) => delete copy.languages)).toBe("languages");
    expect(problem((copy) => (copy.certifications = null))).toBe("certifications");
    expect(problem((copy) => (copy.experience[0]!.start = "03/2021"))).toBe("experience.0.start");
    expect(problem((copy) => (copy.experience[0]!.end = null))).toBe("experience.0.end");
    expect(problem((copy) => (copy.experience[0]!.start = ""))).toBeUndefined();
    expect(problem((copy) => (copy.skills = Array.from({ length: 41 }, (_, index) => `Skill ${index}`)))).toBe("skills");
    expect(MatchScoreAnswerSchema.safeParse({ match_score: 1.2, reasoning: "x" }).success).toBe(false);
  });

  it("bounds every array and string of the JSON Schema, so a grammar built from it ends", () => {
    for (const task of ["resume_parse", "match_score"]) {
      const found = bounds(taskAnswerJsonSchema(task));
      expect(found.length).toBeGreaterThan(0);
      expect(found.filter(({ bound }) => bound === undefined)).toEqual([]);
    }
    const resume = taskAnswerJsonSchema("resume_parse") as { properties: Record<string, unknown>; additionalProperties: boolean; required: string[] };
    expect(Object.keys(resume.properties)).toEqual(["name", "email", "phone", "location", "summary", "skills", "experience", "education", "certifications", "languages"]);
    expect(resume.required).toEqual(Object.keys(resume.properties));
    expect(resume.additionalProperties).toBe(false);
  });

  it("has no answer schema for tasks that answer in prose", () => {
    expect(taskAnswerJsonSchema("interview_question")).toBeUndefined();
    expect(taskAnswerSchema("resume_analysis")).toBeUndefined();
    expect(taskAnswerSchema("toString")).toBeUndefined();
  });
});
