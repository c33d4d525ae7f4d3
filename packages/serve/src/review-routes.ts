import fs from "node:fs";
import path from "node:path";
import { taskAnswerJsonSchema, type OperationContext } from "@ats-lora/core";
import { getInteraction, KNOWN_TASKS, reviewerQueue, withdrawReview, withFeedbackStore } from "@ats-lora/feedback";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { FineTuningJobs } from "./jobs.js";
import type { ProductionFollower } from "./production.js";
import { evalRunsDir, loopOverview, REPORTS_PREFIX } from "./overview.js";
import { ReviewQueueQuerySchema, ReviewQueueSchema, TaskListSchema, WithdrawQuerySchema, type TaskList } from "./schemas.js";

// What the reviewer page reads and writes besides POST /api/feedback: a reviewer's queue, one interaction, the
// undo of a review, the tasks, the loop's overview and the eval reports it links to. The records' zod schemas
// normalise timestamps on input, so answers are typed against them rather than serialised through them.

const IdSchema = z.object({ id: z.string().min(1) });
/** An eval run's folder name and one of the report files it serves. */
const ReportParamsSchema = z.object({ run: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/), file: z.enum(["report.html", "report.md", "report.json"]) });
const REPORT_TYPES = { "report.html": "text/html; charset=utf-8", "report.md": "text/markdown; charset=utf-8", "report.json": "application/json; charset=utf-8" } as const;

export function registerReviewRoutes(app: FastifyInstance, context: OperationContext, jobs: FineTuningJobs, production: ProductionFollower): void {
  const server = app.withTypeProvider<ZodTypeProvider>();

  server.get("/api/review-queue", { schema: { querystring: ReviewQueueQuerySchema } }, async (request) => {
    const { reviewer, task, limit } = request.query;
    const queue = await reviewerQueue({ reviewer, task, limit }, context);
    const answer: z.input<typeof ReviewQueueSchema> = { object: "list" as const, reviewer, task: task ?? null, pending: queue.pending, data: queue.items.map(({ interaction, feedback }) => ({ ...interaction, feedback })) };
    return answer;
  });

  server.get("/api/interactions/:id", { schema: { params: IdSchema } }, async (request) => {
    const { interaction, feedback } = await getInteraction(request.params.id, context);
    return { ...interaction, feedback };
  });

  server.delete(
    "/api/feedback/:id",
    { schema: { params: IdSchema, querystring: WithdrawQuerySchema } },
    async (request) => ({ status: "success" as const, feedback: await withdrawReview({ feedback_id: request.params.id, reviewer: request.query.reviewer }, context) }),
  );

  server.get("/api/tasks", { schema: { response: { 200: TaskListSchema } } }, async () => ({ object: "list" as const, data: knownTasks(context) }));

  server.get("/api/overview", async () => ({ ...loopOverview(context, jobs.list()), serving: { production: production.model, error: production.error } }));

  server.get(`${REPORTS_PREFIX}/:run/:file`, { schema: { params: ReportParamsSchema, hide: true } }, async (request, reply) => {
    const file = path.join(evalRunsDir(context), request.params.run, request.params.file);
    if (!fs.existsSync(file)) return reply.callNotFound();
    return reply.type(REPORT_TYPES[request.params.file]).send(fs.createReadStream(file));
  });
}

/** The ATS's tasks, those with a configured instruction, and those in the store, in that order. */
function knownTasks(context: OperationContext): TaskList["data"] {
  const { paths, config } = context;
  const stored = fs.existsSync(paths.feedbackSqlite) ? withFeedbackStore(paths.feedbackSqlite, { readonly: true }, (store) => store.taskNames()) : [];
  const instructions = config.prompts.instructions as Record<string, string>;
  const names = [...new Set([...KNOWN_TASKS, ...Object.keys(instructions).filter((task) => task !== "default"), ...stored])];
  return names.map((task) => {
    const schema = taskAnswerJsonSchema(task) ?? null;
    return { task, answer: schema === null ? ("text" as const) : ("json" as const), instruction: instructions[task] ?? null, schema };
  });
}
