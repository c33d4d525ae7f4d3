import crypto from "node:crypto";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { ConflictError, InputError, isAtsError, NotFoundError, parsePrompt, type ChatMessage, type OperationContext } from "@ats-lora/core";
import { feedbackStats, listInteractions, newInteractionId, recordInteraction, saveReview } from "@ats-lora/feedback";
import type { Generation, GenerateOptions, LocalModelSpec, PromptInput, StreamEvent } from "@ats-lora/inference";
import { z } from "zod";
import {
  ChatCompletionRequestSchema,
  ChatCompletionSchema,
  CompletionRequestSchema,
  CompletionSchema,
  ErrorSchema,
  FeedbackCreatedSchema,
  FeedbackRequestSchema,
  InteractionCreatedSchema,
  InteractionRequestSchema,
  InteractionsQuerySchema,
  AdapterRequestSchema,
  FineTuningAnswerSchema,
  FineTuningQuerySchema,
  ModelListSchema,
  type ChatCompletionRequest,
  type CompletionRequest,
  type ErrorBody,
} from "./schemas.js";
import { FineTuningJobs, JobRequestSchema, JobSchema } from "./jobs.js";
import type { ProductionFollower } from "./production.js";
import { registerReviewRoutes } from "./review-routes.js";
import { route, type RouteChoice, type Routing } from "./router.js";
import type { ServedModel, ServedModels } from "./served-models.js";
import { authGuard, registerWebPage } from "./web.js";

export interface ServeAppOptions {
  models: ServedModels;
  routing: Routing;
  /** The fine-tuning jobs the server runs (on the served base). */
  jobs: FineTuningJobs;
  /** The production adapter the router's id falls back to. */
  production: ProductionFollower;
  context: OperationContext;
  /** Bearer token every route but /health requires; null: none (loopback only, which the caller checks). */
  token: string | null;
  /** max_tokens of a request that gives none. */
  defaultMaxTokens: number;
  /** Record each answer as an interaction unless the request says `store: false`. */
  storeInteractions: boolean;
  /** An adapter folder or LoRA GGUF as a spec on the served base (POST /api/adapters). */
  resolveAdapter(where: string): Promise<LocalModelSpec>;
  /** Largest request body, in bytes. */
  bodyLimit: number;
  version: string;
}

/** The response header that carries the stored interaction's id. */
export const INTERACTION_ID_HEADER = "x-ats-interaction-id";
/** The response header that names the model that answered (the router's pick for its id). */
export const MODEL_HEADER = "x-ats-model";
/** The request header that identifies the caller an A/B split keeps on one arm (the body's `user` wins; else the client's address). */
export const CALLER_HEADER = "x-ats-caller";
/** The request header that names the ATS task of a completion (the body's `task` wins). */
export const TASK_HEADER = "x-ats-task";

/** An error with the HTTP status and OpenAI error type it is answered with. */
class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly type: string,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** The service's routes on Fastify, validated by the zod schemas; listen() is the caller's. */
export async function buildServeApp(options: ServeAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ bodyLimit: options.bodyLimit, logger: false, forceCloseConnections: false, return503OnClosing: true });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((error: FastifyError, _request, reply) => sendError(reply, error));
  app.setNotFoundHandler((request, reply) => reply.code(404).send(errorBody("not_found_error", `no route ${request.method} ${request.url.split("?")[0]}`)));
  await app.register(swagger, {
    openapi: {
      info: { title: "ats-lora serve", version: options.version, description: "OpenAI-compatible completions from a GGUF base and its LoRA adapters; interactions and reviewers' feedback" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    },
    transform: jsonSchemaTransform,
  });
  await registerWebPage(app, options.token);
  if (options.token !== null) {
    app.addHook(
      "onRequest",
      authGuard(options.token, async (reply, hadCredentials) => {
        await reply
          .code(401)
          .header("www-authenticate", "Bearer")
          .send(errorBody("authentication_error", hadCredentials ? "the bearer token is not this server's" : "this server needs a bearer token: Authorization: Bearer TOKEN"));
      }),
    );
  }

  const server = app.withTypeProvider<ZodTypeProvider>();
  const started = Math.floor(Date.now() / 1000);
  const { context, models, routing } = options;
  const baseId = models.list()[0]!.id;
  /** The model a request names, or for the router's id the one its routing picks for this task and caller. */
  const chooseModel = (id: string, task: string | undefined, request: FastifyRequest, user: string | undefined): { served: ServedModel; routedBy: RouteChoice["routedBy"] | null } => {
    if (id !== routing.model) return { served: modelFor(models, id), routedBy: null };
    const header = request.headers[CALLER_HEADER];
    const caller = user ?? (typeof header === "string" && header.trim() !== "" ? header.trim() : request.ip);
    const choice = route(routing, baseId, task, caller);
    return { served: modelFor(models, choice.model), routedBy: choice.routedBy };
  };

  server.get("/health", { schema: { hide: true } }, async () => ({ status: "ok" }));
  server.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  server.get("/v1/models", { schema: { response: { 200: ModelListSchema } } }, async () => ({
    object: "list" as const,
    data: [
      ...models.list().map((served) => ({ id: served.id, object: "model" as const, created: started, owned_by: "ats-lora", root: served.spec.base, parent: served.parent })),
      // The router: an A/B split, a model per task, else the base.
      { id: routing.model, object: "model" as const, created: started, owned_by: "ats-lora", root: "router", parent: null },
    ],
  }));

  server.post("/v1/chat/completions", { schema: { body: ChatCompletionRequestSchema, response: { 200: ChatCompletionSchema, "4xx": ErrorSchema } } }, async (request, reply) => {
    const body = request.body;
    const messages = chatMessages(body.messages);
    const generation = generationOptions(body, body.max_completion_tokens ?? body.max_tokens ?? options.defaultMaxTokens);
    if (body.response_format?.type === "json_schema") generation.jsonSchema = body.response_format.json_schema.schema;
    const record = interactionFields(messages, context);
    const task = taskOf(body.task, request, record.instruction, context);
    const { served, routedBy } = chooseModel(body.model, task, request, body.user);
    const answer = { context, served, routedBy, user: body.user, prompt: messages, generation, record, task, store: options.storeInteractions && body.store !== false };
    if (body.stream === true) return streamAnswer(request, reply, answer, body.stream_options?.include_usage === true, "chat");
    const { result, interactionId } = await answerOnce(request, reply, answer, "/v1/chat/completions");
    return {
      id: `chatcmpl-${crypto.randomUUID()}`,
      object: "chat.completion" as const,
      created: Math.floor(Date.now() / 1000),
      model: served.id,
      choices: [{ index: 0, message: { role: "assistant" as const, content: result.text }, finish_reason: finishReason(result), logprobs: null }],
      usage: usage(result),
      interaction_id: interactionId,
    };
  });

  server.post("/v1/completions", { schema: { body: CompletionRequestSchema, response: { 200: CompletionSchema, "4xx": ErrorSchema } } }, async (request, reply) => {
    const body = request.body;
    const text = Array.isArray(body.prompt) ? body.prompt[0]! : body.prompt;
    const record = interactionFields([{ role: "user", content: text }], context);
    const task = taskOf(body.task, request, record.instruction, context);
    const { served, routedBy } = chooseModel(body.model, task, request, body.user);
    const answer = {
      context,
      served,
      routedBy,
      user: body.user,
      prompt: { raw: text },
      generation: generationOptions(body, body.max_tokens ?? options.defaultMaxTokens),
      record,
      task,
      store: options.storeInteractions && body.store !== false,
    };
    if (body.stream === true) return streamAnswer(request, reply, answer, body.stream_options?.include_usage === true, "completion");
    const { result, interactionId } = await answerOnce(request, reply, answer, "/v1/completions");
    return {
      id: `cmpl-${crypto.randomUUID()}`,
      object: "text_completion" as const,
      created: Math.floor(Date.now() / 1000),
      model: served.id,
      choices: [{ index: 0, text: result.text, finish_reason: finishReason(result), logprobs: null }],
      usage: usage(result),
      interaction_id: interactionId,
    };
  });

  server.post("/api/feedback", { schema: { body: FeedbackRequestSchema, response: { 201: FeedbackCreatedSchema, "4xx": ErrorSchema } } }, async (request, reply) => {
    const { interaction_id, ...review } = request.body;
    const feedback = await saveReview({ interaction_id, review }, context);
    return reply.code(201).send({ status: "success" as const, feedback_id: feedback.id });
  });

  server.post("/api/interactions", { schema: { body: InteractionRequestSchema, response: { 201: InteractionCreatedSchema, "4xx": ErrorSchema } } }, async (request, reply) => {
    const interaction = await recordInteraction({ ...request.body, metadata: { source: "api", ...request.body.metadata } }, context);
    return reply.code(201).send({ status: "success" as const, interaction_id: interaction.id });
  });

  server.get("/api/interactions", { schema: { querystring: InteractionsQuerySchema } }, async (request) => {
    const listed = await listInteractions(request.query, context);
    return { object: "list", status: request.query.status, data: listed.map(({ interaction, feedback }) => ({ ...interaction, feedback })) };
  });

  server.get("/api/stats", async () => feedbackStats({}, context));
  registerReviewRoutes(app, context, options.jobs, options.production);

  const { jobs } = options;
  const JobIdSchema = z.object({ id: z.string().min(1) });
  const jobOr404 = (id: string) => {
    const job = jobs.get(id);
    if (job === undefined) throw new HttpError(404, "not_found_error", `no job with id ${JSON.stringify(id)}`, "id");
    return job;
  };
  server.post("/api/jobs", { schema: { body: JobRequestSchema.optional(), response: { 201: JobSchema, "4xx": ErrorSchema } } }, async (request, reply) =>
    reply.code(201).send(jobs.start(request.body ?? {})),
  );
  server.get("/api/jobs", { schema: { response: { 200: z.object({ object: z.literal("list"), data: z.array(JobSchema) }) } } }, async () => ({ object: "list" as const, data: jobs.list() }));
  server.get("/api/jobs/:id", { schema: { params: JobIdSchema, response: { 200: JobSchema, "4xx": ErrorSchema } } }, async (request) => jobOr404(request.params.id));
  server.delete("/api/jobs/:id", { schema: { params: JobIdSchema, response: { 200: JobSchema, "4xx": ErrorSchema } } }, async (request) => {
    jobOr404(request.params.id);
    return (await jobs.cancel(request.params.id))!;
  });

  // The adapter manager's routes of the documents this product follows.
  server.post("/fine-tuning/setup", { schema: { body: JobRequestSchema.optional(), response: { 201: z.object({ status: z.literal("success"), job_id: z.string(), job: JobSchema }), "4xx": ErrorSchema } } }, async (request, reply) => {
    const job = jobs.start(request.body ?? {});
    return reply.code(201).send({ status: "success" as const, job_id: job.id, job });
  });
  server.get("/fine-tuning/status", { schema: { response: { 200: z.object({ status: z.literal("success"), job: JobSchema.nullable(), served_adapter: z.string().nullable() }) } } }, async () => ({
    status: "success" as const,
    job: jobs.newest() ?? null,
    served_adapter: jobs.newestServed() ?? null,
  }));
  server.post("/fine-tuning/query", { schema: { body: FineTuningQuerySchema, response: { 200: FineTuningAnswerSchema, "4xx": ErrorSchema } } }, async (request, reply) => {
    const id = jobs.newestServed();
    if (id === undefined) throw new HttpError(409, "invalid_request_error", "no fine-tuning job has finished with an adapter yet", null);
    const served = modelFor(models, id);
    const messages: ChatMessage[] = [{ role: "user", content: request.body.query }];
    const record = interactionFields(messages, context);
    const answer = { context, served, routedBy: null, prompt: messages, generation: { maxTokens: request.body.max_tokens ?? options.defaultMaxTokens, temperature: 0 }, record, task: taskOf(request.body.task, request, record.instruction, context), store: options.storeInteractions };
    const { result, interactionId } = await answerOnce(request, reply, answer, "/fine-tuning/query");
    return { status: "success" as const, model: id, response: result.text, interaction_id: interactionId };
  });

  server.post("/api/adapters", { schema: { body: AdapterRequestSchema, response: { 201: z.object({ status: z.literal("success"), id: z.string(), adapters: z.array(z.string()) }), "4xx": ErrorSchema } } }, async (request, reply) => {
    const spec = await options.resolveAdapter(request.body.path);
    const served = await models.add({ ...spec, name: request.body.name });
    return reply.code(201).send({ status: "success" as const, id: served.id, adapters: served.spec.adapters.map((adapter) => adapter.path) });
  });

  return app;
}

interface Answer {
  context: OperationContext;
  served: ServedModel;
  /** The request's `user`, kept with the interaction. */
  user?: string;
  /** How the router picked the model; null when the request named it. */
  routedBy: RouteChoice["routedBy"] | null;
  prompt: PromptInput;
  generation: GenerateOptions;
  record: InteractionFields;
  task: string | undefined;
  store: boolean;
}

/** Generates the whole answer, stores it, and sets the interaction id header. A caller that hangs up cancels it. */
async function answerOnce(request: FastifyRequest, reply: FastifyReply, answer: Answer, endpoint: string): Promise<{ result: Generation; interactionId: string | null }> {
  const stop = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableFinished) stop.abort();
  };
  reply.raw.on("close", onClose);
  try {
    const [result] = await answer.served.model.generate([answer.prompt], { ...answer.generation, signal: stop.signal });
    const interactionId = answer.store ? await store(answer, result!, endpoint, undefined) : null;
    if (interactionId !== null) void reply.header(INTERACTION_ID_HEADER, interactionId);
    void reply.header(MODEL_HEADER, answer.served.id);
    return { result: result!, interactionId };
  } finally {
    reply.raw.off("close", onClose);
  }
}

/**
 * Server-sent events in OpenAI's chunk format. The first piece of the answer is awaited before the headers go
 * out, so a prompt that does not fit or a bad grammar is still an HTTP error; the interaction id is decided
 * first (header and every chunk) and the interaction stored when the answer is complete.
 */
async function streamAnswer(request: FastifyRequest, reply: FastifyReply, answer: Answer, includeUsage: boolean, kind: "chat" | "completion"): Promise<void> {
  const stop = new AbortController();
  const events = answer.served.model.stream(answer.prompt, { ...answer.generation, signal: stop.signal });
  const first = await events.next();
  const interactionId = answer.store ? newInteractionId() : null;
  const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: { role?: "assistant"; content?: string } | null, text: string | null, finish: "stop" | "length" | null, extra: Record<string, unknown> = {}) =>
    kind === "chat"
      ? { id, object: "chat.completion.chunk", created, model: answer.served.id, choices: delta === null ? [] : [{ index: 0, delta, finish_reason: finish, logprobs: null }], interaction_id: interactionId, ...extra }
      : { id, object: "text_completion", created, model: answer.served.id, choices: text === null ? [] : [{ index: 0, text, finish_reason: finish, logprobs: null }], interaction_id: interactionId, ...extra };
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    [MODEL_HEADER]: answer.served.id,
    ...(interactionId === null ? {} : { [INTERACTION_ID_HEADER]: interactionId }),
  });
  const send = (data: unknown): void => {
    raw.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
  };
  raw.on("close", () => {
    if (!raw.writableFinished) stop.abort();
  });
  try {
    if (kind === "chat") send(chunk({ role: "assistant", content: "" }, null, null));
    let step: IteratorResult<StreamEvent, void> = first;
    let result: Generation | undefined;
    while (!step.done) {
      const event = step.value;
      if (event.type === "text") send(kind === "chat" ? chunk({ content: event.text }, null, null) : chunk(null, event.text, null));
      else result = event.result;
      step = await events.next();
    }
    if (result === undefined) throw new Error("the stream ended without its summary");
    if (interactionId !== null) await store(answer, result, kind === "chat" ? "/v1/chat/completions" : "/v1/completions", interactionId);
    send(kind === "chat" ? chunk({}, null, finishReason(result)) : chunk(null, "", finishReason(result)));
    if (includeUsage) send(chunk(null, null, null, { usage: usage(result) }));
    send("[DONE]");
  } catch (error) {
    if (!stop.signal.aborted) send(errorBody(...errorKind(error)));
  } finally {
    await events.return(undefined);
    raw.end();
  }
}

async function store(answer: Answer, result: Generation, endpoint: string, id: string | undefined): Promise<string> {
  const { served, record, generation } = answer;
  const interaction = await recordInteraction(
    {
      id,
      task: answer.task,
      query: record.query,
      context: record.context,
      response: result.text === "" ? "(empty answer)" : result.text,
      model: served.id,
      metadata: {
        source: "serve",
        endpoint,
        ...(answer.routedBy === null ? {} : { routed_by: answer.routedBy }),
        base: served.spec.base,
        adapters: served.spec.adapters.map((adapter) => adapter.path),
        prompt_tokens: result.promptTokens,
        completion_tokens: result.tokens,
        finish_reason: finishReason(result),
        stopped_by: result.stoppedBy,
        temperature: generation.temperature,
        max_tokens: generation.maxTokens,
        json_schema: generation.jsonSchema !== undefined,
        seconds: Math.round(result.seconds * 1000) / 1000,
        ...(answer.user === undefined ? {} : { user: answer.user }),
      },
    },
    answer.context,
  );
  return interaction.id;
}

interface InteractionFields {
  query: string;
  context: string[];
  /** The task instruction of a prompt built with the configured template. */
  instruction: string | undefined;
}

/**
 * What an answer is stored as: a prompt built with the configured template (what build-db, train and eval send)
 * is taken apart into its context passages and query; any other conversation keeps its last user message as the
 * query and the messages before it as context.
 */
function interactionFields(messages: readonly ChatMessage[], context: OperationContext): InteractionFields {
  const lastUser = messages.findLastIndex((message) => message.role === "user");
  const query = lastUser === -1 ? messages[messages.length - 1]!.content : messages[lastUser]!.content;
  const parsed = parsePrompt(query, context.config.prompts);
  return parsed !== undefined && parsed.query.trim() !== ""
      ? { query: parsed.query, context: [...messages.slice(0, Math.max(lastUser, 0)).map(describeMessage), ...parsed.context], instruction: parsed.instruction }
      : { query: query.trim() === "" ? "(empty prompt)" : query, context: messages.slice(0, Math.max(lastUser, 0)).map(describeMessage), instruction: undefined };
}

function describeMessage(message: ChatMessage): string {
  return `${message.role}: ${message.content}`;
}

/** The body's task, else the X-ATS-Task header, else the task whose configured instruction the prompt carries. */
function taskOf(bodyTask: string | undefined, request: FastifyRequest, instruction: string | undefined, context: OperationContext): string | undefined {
  if (bodyTask !== undefined) return bodyTask;
  const header = request.headers[TASK_HEADER];
  if (typeof header === "string" && header.trim() !== "") {
    if (header.length > 200) throw new HttpError(422, "invalid_request_error", `the ${TASK_HEADER} header must be at most 200 characters`, TASK_HEADER);
    return header.trim();
  }
  if (instruction === undefined) return undefined;
  return Object.entries(context.config.prompts.instructions).find(([task, text]) => task !== "default" && text === instruction)?.[0];
}

function modelFor(models: ServedModels, id: string): ServedModel {
  const served = models.get(id);
  if (served === undefined) {
    throw new HttpError(404, "invalid_request_error", `the model ${JSON.stringify(id)} is not served here; GET /v1/models lists ${models.list().map((model) => model.id).join(", ")}`, "model");
  }
  return served;
}

function chatMessages(messages: ChatCompletionRequest["messages"]): ChatMessage[] {
  return messages.map((message) => ({
    role: message.role === "developer" ? "system" : message.role,
    content: typeof message.content === "string" ? message.content : message.content.map((part) => part.text).join(""),
  }));
}

function generationOptions(body: ChatCompletionRequest | CompletionRequest, maxTokens: number): GenerateOptions {
  const stop = body.stop === null || body.stop === undefined ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
  return { maxTokens, temperature: body.temperature ?? 0, seed: body.seed, topP: body.top_p, stop };
}

function finishReason(result: Generation): "stop" | "length" {
  return result.stoppedBy === "max_tokens" ? "length" : "stop";
}

function usage(result: Generation) {
  return { prompt_tokens: result.promptTokens, completion_tokens: result.tokens, total_tokens: result.promptTokens + result.tokens };
}

function errorBody(type: string, message: string, param: string | null = null, details?: string[]): ErrorBody {
  return { error: { message, type, param, code: null, ...(details === undefined || details.length === 0 ? {} : { details }) } };
}

/** The status and error body of anything a route throws. */
function errorKind(error: unknown): [type: string, message: string, param: string | null, details?: string[]] {
  if (error instanceof HttpError) return [error.type, error.message, error.param];
  if (isAtsError(error)) return [error instanceof InputError ? "invalid_request_error" : "server_error", error.message + (error.hint ? ` (${error.hint})` : ""), null, [...error.details]];
  return ["server_error", (error as Error).message ?? String(error), null];
}

function statusOf(error: unknown): number {
  if (error instanceof HttpError) return error.statusCode;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ConflictError) return 409;
  if (error instanceof InputError) return 400;
  if (isAtsError(error)) return 500;
  const code = (error as FastifyError).statusCode;
  return typeof code === "number" && code >= 400 && code < 600 ? code : 500;
}

function sendError(reply: FastifyReply, error: FastifyError): FastifyReply {
  if (hasZodFastifySchemaValidationErrors(error)) {
    // Every problem with its field: "rating: must be an integer from 1 to 5".
    const where = error.validationContext ?? "body";
    const problems = error.validation.map((issue) => {
      const field = issue.instancePath.replace(/^\//, "").replace(/\//g, ".");
      return { field, text: `${field === "" ? where : field}: ${issue.message}` };
    });
    return reply.code(422).send(errorBody("invalid_request_error", `invalid request ${where}: ${problems.map((problem) => problem.text).join("; ")}`, problems[0]?.field || null, problems.map((problem) => problem.text)));
  }
  const status = statusOf(error);
  if (isAtsError(error) || error instanceof HttpError) {
    const [type, message, param, details] = errorKind(error);
    return reply.code(status).send(errorBody(type, message, param, details));
  }
  // Fastify's own: malformed JSON (400), a body over the limit (413), an unsupported content type (415).
  const type = status >= 500 ? "server_error" : "invalid_request_error";
  return reply.code(status).send(errorBody(type, status === 413 ? `the request body is over the limit of ${reply.server.initialConfig.bodyLimit} bytes` : error.message));
}
