/**
 * Match-score baselines without a language model, from the ATS's usual matching rule: the resume's skills,
 * experience and education sections each compared with the job posting (TF-IDF cosine with a trained matcher,
 * matcher.ts; or embedding cosine), weighted 0.4 / 0.4 / 0.2. They are similarities, not calibrated scores: judge them by rank agreement
 * (Spearman, Pearson) first; MAE and the 0.5 threshold reflect their scale as much as their judgement.
 */
import { parsePrompt, type PromptConfig } from "@ats-lora/core";
import { resumePassageIndex } from "./score.js";
import type { EvalExample } from "./held-out-set.js";

export const BASELINES = ["tfidf", "embedding"] as const;
export type BaselineMethod = (typeof BASELINES)[number];

export const SECTION_WEIGHTS = { skills: 0.4, experience: 0.4, education: 0.2 } as const;
export type Section = keyof typeof SECTION_WEIGHTS;

function sectionOf(heading: string): Section | "other" {
  const upper = heading.toUpperCase();
  if (/SKILL|COMPETENC|TECHNOLOG|TOOLS/.test(upper)) return "skills";
  if (/EXPERIEN|EMPLOYMENT|WORK HISTORY|CAREER|PLACEMENT/.test(upper)) return "experience";
  if (/EDUCA|ACADEMIC|QUALIFICATION|DEGREE|TRAINING/.test(upper)) return "education";
  return "other";
}

/** A heading line: short, with letters and no lower-case letter (EXPERIENCE, SKILLS & TOOLS), or "Education:". */
function isHeading(line: string): boolean {
  const text = line.trim();
  if (text === "" || text.length > 40 || text.split(/\s+/).length > 5) return false;
  if (/^[^\p{Ll}]*\p{Lu}[^\p{Ll}]*$/u.test(text) && !/[@|0-9]/.test(text)) return true;
  return /^[\p{L} &/]+:$/u.test(text) && text.split(/\s+/).length <= 3;
}

/**
 * The resume's skills, experience and education text by its headings. A section the resume has no heading
 * for is the whole resume (its skills are then read where they stand, in the experience lines).
 */
export function resumeSections(resume: string): Record<Section, string> {
  const found: Partial<Record<Section, string[]>> = {};
  let current: Section | "other" = "other";
  for (const line of resume.split("\n")) {
    if (isHeading(line)) {
      current = sectionOf(line);
      continue;
    }
    if (current !== "other") (found[current] ??= []).push(line);
  }
  const text = (section: Section) => found[section]?.join("\n").trim() || resume;
  return { skills: text("skills"), experience: text("experience"), education: text("education") };
}

export interface MatchPair {
  /** Index of the example in the test data. */
  example: number;
  sections: Record<Section, string>;
  job: string;
}

/** The resume and job of each match-score example whose prompt has both; the rest get no baseline answer. */
export function matchPairs(examples: readonly EvalExample[], prompts: PromptConfig): MatchPair[] {
  const pairs: MatchPair[] = [];
  examples.forEach((example, index) => {
    if (example.task !== "match_score") return;
    const parsed = parsePrompt(example.prompt, prompts);
    if (!parsed || parsed.context.length < 2) return;
    const resumeIndex = resumePassageIndex(parsed.context);
    const job = parsed.context.find((_, i) => i !== resumeIndex)!;
    pairs.push({ example: index, sections: resumeSections(parsed.context[resumeIndex]!), job });
  });
  return pairs;
}

/** Section-weighted similarity of each pair, given a similarity of two texts. */
export async function weightedScores(pairs: readonly MatchPair[], similarity: (texts: Array<[string, string]>) => Promise<number[]>): Promise<number[]> {
  const sections = Object.keys(SECTION_WEIGHTS) as Section[];
  const values = await similarity(pairs.flatMap((pair) => sections.map((section): [string, string] => [pair.sections[section], pair.job])));
  return pairs.map((_, p) => sections.reduce((sum, section, s) => sum + SECTION_WEIGHTS[section] * values[p * sections.length + s]!, 0));
}

/** The baseline's answer in the form a model gives it, so the same metrics read it. */
export function baselineOutput(score: number): string {
  return JSON.stringify({ match_score: Math.round(Math.min(1, Math.max(0, score)) * 1000) / 1000 });
}
