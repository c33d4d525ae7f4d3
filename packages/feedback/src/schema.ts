import { z } from "zod";

/** The tasks ats-lora knows templates and metrics for; any other non-empty name is accepted as a free task. */
export const KNOWN_TASKS = ["resume_analysis", "resume_parse", "interview_question", "match_score"] as const;
export type KnownTask = (typeof KNOWN_TASKS)[number];

const text = z.string({ error: "must be a string" }).min(1, { error: "must not be empty" });
const name = (what: string) =>
  z
    .string({ error: `must be a string (${what})` })
    .min(1, { error: "must not be empty" })
    .max(200, { error: "must be at most 200 characters" });

/** An ISO 8601 timestamp with a time zone ("2026-09-14T10:22:05Z"); stored normalised to UTC milliseconds. */
export const TimestampSchema = z
  .string({ error: "must be an ISO 8601 timestamp string" })
  .refine((value) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(value) && !Number.isNaN(Date.parse(value)), {
    error: "must be an ISO 8601 timestamp with a time zone, e.g. 2026-09-14T10:22:05Z",
  })
  .transform((value) => new Date(value).toISOString());

export const RatingSchema = z
  .number({ error: "must be an integer from 1 to 5" })
  .int({ error: "must be an integer from 1 to 5" })
  .min(1, { error: "must be an integer from 1 to 5" })
  .max(5, { error: "must be an integer from 1 to 5" });

const points = z.array(text, { error: "must be an array of strings" });
const idealResponse = z
  .string({ error: "must be a string, or null for none" })
  .min(1, { error: "must not be empty (use null when there is no ideal response)" });
// Not z.record: it copies by assignment, which turns a "__proto__" key into a prototype and drops it. The
// parsed object is kept as it is, so every key a file gives is stored.
const metadata = z.custom<Record<string, unknown>>((value) => value !== null && typeof value === "object" && !Array.isArray(value), {
  error: "must be an object",
});

/** A model answer as the ATS produced it (DESIGN.md "Interaction"). */
export const InteractionSchema = z.strictObject({
  id: name("the interaction id"),
  created_at: TimestampSchema,
  task: name("the task"),
  query: text,
  context: z.array(z.string({ error: "must be a string" }), { error: "must be an array of strings" }),
  response: text,
  model: name("the model"),
  metadata,
  /** "model": the ATS model answered; "gold": an expert's {input, output} example. */
  origin: z.enum(["model", "gold"], { error: 'must be "model" or "gold"' }),
});
export type Interaction = z.output<typeof InteractionSchema>;

/** One reviewer's judgement of one interaction (DESIGN.md "Feedback"). */
export const FeedbackSchema = z.strictObject({
  id: name("the feedback id"),
  interaction_id: name("the interaction id"),
  rating: RatingSchema,
  correct_points: points,
  incorrect_points: points,
  ideal_response: idealResponse.nullable(),
  reviewer: name("the reviewer"),
  created_at: TimestampSchema,
});
export type Feedback = z.output<typeof FeedbackSchema>;

/** Feedback as a file may give it: ids, timestamps and empty lists may be left out. */
export const FeedbackInputSchema = z.strictObject({
  id: FeedbackSchema.shape.id.optional(),
  interaction_id: FeedbackSchema.shape.interaction_id.optional(),
  rating: RatingSchema,
  correct_points: points.optional(),
  incorrect_points: points.optional(),
  ideal_response: idealResponse.nullable().optional(),
  reviewer: FeedbackSchema.shape.reviewer.optional(),
  created_at: TimestampSchema.optional(),
});
export type FeedbackInput = z.output<typeof FeedbackInputSchema>;

/** An interaction line of an import file, optionally with its feedback (one object, or several reviewers'). */
export const InteractionLineSchema = z.strictObject({
  id: InteractionSchema.shape.id.optional(),
  created_at: TimestampSchema.optional(),
  task: InteractionSchema.shape.task.optional(),
  query: text,
  context: InteractionSchema.shape.context.optional(),
  response: text,
  model: InteractionSchema.shape.model.optional(),
  metadata: metadata.optional(),
  origin: InteractionSchema.shape.origin.optional(),
  /** null or absent: not reviewed yet. */
  feedback: z.union([FeedbackInputSchema, z.array(FeedbackInputSchema)]).nullable().optional(),
});
export type InteractionLine = z.output<typeof InteractionLineSchema>;

/** A gold example line: an expert's output for an input, as `{"input", "output"}`. */
export const GoldPairLineSchema = z.strictObject({
  id: InteractionSchema.shape.id.optional(),
  created_at: TimestampSchema.optional(),
  task: InteractionSchema.shape.task.optional(),
  input: text,
  output: text,
  context: InteractionSchema.shape.context.optional(),
  metadata: metadata.optional(),
});
export type GoldPairLine = z.output<typeof GoldPairLineSchema>;

/** Defaults for what an import line leaves out. */
export const DEFAULT_TASK = "general";
export const DEFAULT_MODEL = "unknown";
export const DEFAULT_REVIEWER = "unknown";
export const GOLD_MODEL = "gold";
