import { z } from "zod";

/**
 * The answers of tasks whose answer is a JSON object, one zod schema each, and the JSON Schema generated from it for
 * decoding constrained to it (node-llama-cpp's JSON-schema grammars). Every array and string is bounded: a grammar
 * built from the schema then ends the answer even when the model would repeat itself, and a bound well above any
 * correct answer (data/samples: at most 14 skills, 3 positions, 834 characters of reasoning) never cuts one.
 */

/** `YYYY-MM`, as data/ats_docs/resume-parsing-schema.md normalises every date. */
const MONTH = String.raw`\d{4}-(0[1-9]|1[0-2])`;

const text = (maxLength: number) => z.string().max(maxLength);
const list = <Item extends z.ZodType>(item: Item, maxItems: number) => z.array(item).max(maxItems);

/** data/ats_docs/resume-parsing-schema.md: ten keys in this order, nullable where it says, no others. */
export const ResumeParseAnswerSchema = z.strictObject({
  /** "" when no name is found. */
  name: text(120),
  email: text(120).nullable(),
  phone: text(40).nullable(),
  location: text(120).nullable(),
  /** The candidate's own profile paragraph, copied. */
  summary: text(1500).nullable(),
  skills: list(text(80), 40),
  experience: list(
    z.strictObject({
      title: text(150),
      company: text(150),
      /** "" only for a position with no start date at all. */
      start: text(7).regex(new RegExp(`^(${MONTH})?$`), { error: 'must be YYYY-MM, or "" when the resume gives no start date' }),
      end: text(7).regex(new RegExp(`^(${MONTH}|present)$`), { error: 'must be YYYY-MM or "present"' }),
      highlights: list(text(400), 10),
    }),
    12,
  ),
  education: list(
    z.strictObject({
      degree: text(200),
      institution: text(200),
      /** The graduation year; null when none is stated. */
      year: z.int().min(1900).max(2100).nullable(),
    }),
    6,
  ),
  certifications: list(text(200), 12),
  languages: list(text(60), 10),
});

/** A match score from 0 to 1 and why. */
export const MatchScoreAnswerSchema = z.strictObject({
  match_score: z.number().min(0).max(1),
  reasoning: text(1500),
});

export type ResumeParseAnswer = z.infer<typeof ResumeParseAnswerSchema>;
export type MatchScoreAnswer = z.infer<typeof MatchScoreAnswerSchema>;

/** The answer schema of each task whose answer is JSON; the other tasks answer in prose. */
export const TASK_ANSWER_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  resume_parse: ResumeParseAnswerSchema,
  match_score: MatchScoreAnswerSchema,
};

/** The zod schema of `task`'s answer, or undefined for a task that answers in prose. */
export function taskAnswerSchema(task: string): z.ZodType | undefined {
  return Object.hasOwn(TASK_ANSWER_SCHEMAS, task) ? TASK_ANSWER_SCHEMAS[task] : undefined;
}

/** The JSON Schema of `task`'s answer (generated from its zod schema), or undefined for a task that answers in prose. */
export function taskAnswerJsonSchema(task: string): Record<string, unknown> | undefined {
  const schema = taskAnswerSchema(task);
  return schema === undefined ? undefined : (z.toJSONSchema(schema) as Record<string, unknown>);
}
