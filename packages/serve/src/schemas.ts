import { FeedbackInputSchema, FeedbackSchema, InteractionLineSchema, InteractionSchema } from "@ats-lora/feedback";
import { z } from "zod";

// The HTTP bodies: OpenAI's chat and completion requests as far as a local GGUF model can honour them, and the
// feedback room's records (their fields are the feedback package's schemas, not copies). Fastify validates with
// these and /openapi.json is generated from them.

const positiveInt = z.number().int().positive();

/** A message's content: text, or OpenAI's list of text parts. */
const MessageContentSchema = z.union([z.string(), z.array(z.strictObject({ type: z.literal("text"), text: z.string() }))]);

export const ChatMessageSchema = z.object({
  /** "developer" is OpenAI's newer name for the system role. */
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: MessageContentSchema,
  name: z.string().optional(),
});

const StopSchema = z.union([z.string(), z.array(z.string()).max(4)]).nullable();

/** What the ATS may add to either request: the task the answer is for, and whether to keep it as an interaction. */
const atsFields = {
  /** The ATS task (resume_parse, match_score, …); also the X-ATS-Task header. Unset: read from the prompt's instruction. */
  task: InteractionSchema.shape.task.optional(),
  /** false: do not record this answer as an interaction (OpenAI's `store`). */
  store: z.boolean().optional(),
  user: z.string().max(200).optional(),
};

/** Parameters a local GGUF model cannot honour are refused with their name, not ignored. */
const unsupported = {
  n: z.literal(1, { error: "only one choice per request (n: 1)" }).optional(),
  logprobs: z.literal(false, { error: "log-probabilities are not served" }).nullable().optional(),
  tools: z.array(z.unknown()).max(0, { error: "tool calls are not served" }).optional(),
};

const samplingFields = {
  model: z.string().min(1),
  /** 0 (the default) is greedy decoding: the same answer each time. */
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  seed: z.number().int().nonnegative().optional(),
  max_tokens: positiveInt.optional(),
  stop: StopSchema.optional(),
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
};

export const ChatCompletionRequestSchema = z.object({
  ...samplingFields,
  messages: z.array(ChatMessageSchema).min(1),
  max_completion_tokens: positiveInt.optional(),
  /** json_schema: decoding constrained to the schema (node-llama-cpp's JSON-schema grammar). */
  response_format: z
    .discriminatedUnion("type", [
      z.object({ type: z.literal("text") }),
      z.object({
        type: z.literal("json_schema"),
        json_schema: z.object({ name: z.string().optional(), schema: z.record(z.string(), z.unknown()), strict: z.boolean().nullable().optional() }),
      }),
    ])
    .optional(),
  ...atsFields,
  ...unsupported,
});
export type ChatCompletionRequest = z.output<typeof ChatCompletionRequestSchema>;

export const CompletionRequestSchema = z.object({
  ...samplingFields,
  /** The raw prompt, continued as it is (no chat template). */
  prompt: z.union([z.string().min(1), z.array(z.string().min(1)).length(1, { error: "one prompt per request" })]),
  ...atsFields,
  ...unsupported,
});
export type CompletionRequest = z.output<typeof CompletionRequestSchema>;

const UsageSchema = z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() });
const FinishReasonSchema = z.enum(["stop", "length"]);

export const ChatCompletionSchema = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({ role: z.literal("assistant"), content: z.string() }),
      finish_reason: FinishReasonSchema,
      logprobs: z.null(),
    }),
  ),
  usage: UsageSchema,
  /** The stored interaction (null with store: false): POST /api/feedback takes it. */
  interaction_id: z.string().nullable(),
});
export type ChatCompletion = z.output<typeof ChatCompletionSchema>;

export const CompletionSchema = z.object({
  id: z.string(),
  object: z.literal("text_completion"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(z.object({ index: z.number().int(), text: z.string(), finish_reason: FinishReasonSchema, logprobs: z.null() })),
  usage: UsageSchema,
  interaction_id: z.string().nullable(),
});
export type Completion = z.output<typeof CompletionSchema>;

export const ModelListSchema = z.object({
  object: z.literal("list"),
  data: z.array(z.object({ id: z.string(), object: z.literal("model"), created: z.number().int(), owned_by: z.string(), root: z.string(), parent: z.string().nullable() })),
});

/** OpenAI's error body: what failed, of which kind, and the request field it concerns. */
export const ErrorSchema = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable(), details: z.array(z.string()).optional() }),
});
export type ErrorBody = z.output<typeof ErrorSchema>;

/** POST /api/feedback: a reviewer's judgement of a stored interaction, as `collect` takes it. */
export const FeedbackRequestSchema = FeedbackInputSchema.omit({ id: true, created_at: true, interaction_id: true }).extend({
  interaction_id: FeedbackSchema.shape.interaction_id,
});
export type FeedbackRequest = z.output<typeof FeedbackRequestSchema>;

export const FeedbackCreatedSchema = z.object({ status: z.literal("success"), feedback_id: z.string() });

/** POST /api/interactions: an answer produced elsewhere (the ATS's current API model), to be reviewed beside ours. */
export const InteractionRequestSchema = InteractionLineSchema.pick({ task: true, query: true, context: true, response: true, model: true }).extend({
  // Fastify's JSON parser already refuses "__proto__" keys, so a plain record keeps every key a caller sends.
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type InteractionRequest = z.output<typeof InteractionRequestSchema>;

export const InteractionCreatedSchema = z.object({ status: z.literal("success"), interaction_id: z.string() });

export const InteractionsQuerySchema = z.object({
  status: z.enum(["unreviewed", "reviewed", "all"]).default("unreviewed"),
  task: z.string().min(1).optional(),
  limit: z.coerce.number().int().positive().max(1000).default(100),
});

/** POST /fine-tuning/query: a question for the newest fine-tuned adapter. */
export const FineTuningQuerySchema = z.strictObject({
  query: z.string().min(1),
  task: InteractionSchema.shape.task.optional(),
  max_tokens: positiveInt.optional(),
});
export const FineTuningAnswerSchema = z.object({ status: z.literal("success"), model: z.string(), response: z.string(), interaction_id: z.string().nullable() });

/** POST /api/adapters: an adapter (its folder with a LoRA GGUF export, or the .gguf) served from now on as `name`. */
export const AdapterRequestSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: "must be letters, digits, '.', '_' and '-'" }).max(100),
  path: z.string().min(1),
});

/** GET /api/review-queue: what one reviewer has left to review. */
export const ReviewQueueQuerySchema = z.object({
  reviewer: FeedbackSchema.shape.reviewer,
  task: z.string().min(1).optional(),
  limit: z.coerce.number().int().positive().max(500).default(50),
});

/** DELETE /api/feedback/:id: the reviewer whose review is taken back (the page's undo); any review without it. */
export const WithdrawQuerySchema = z.object({ reviewer: FeedbackSchema.shape.reviewer.optional() });

/** An interaction with every review of it: what the review routes answer. */
export const InteractionWithFeedbackSchema = InteractionSchema.extend({ feedback: z.array(FeedbackSchema) });

export const ReviewQueueSchema = z.object({
  object: z.literal("list"),
  reviewer: z.string(),
  task: z.string().nullable(),
  /** All the reviewer has left, the limit aside. */
  pending: z.number().int(),
  data: z.array(InteractionWithFeedbackSchema),
});

/** GET /api/tasks: each task the page knows, and whether its answer is JSON (with the answer's JSON Schema). */
export const TaskListSchema = z.object({
  object: z.literal("list"),
  data: z.array(
    z.object({
      task: z.string(),
      answer: z.enum(["json", "text"]),
      /** The configured instruction of the task's prompts. */
      instruction: z.string().nullable(),
      schema: z.record(z.string(), z.unknown()).nullable(),
    }),
  ),
});
export type TaskList = z.output<typeof TaskListSchema>;
