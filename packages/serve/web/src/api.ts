import type { z } from "zod";
import type { Job } from "../../src/jobs.js";
import type { LoopOverview } from "../../src/overview.js";
import type { ErrorBody, InteractionWithFeedbackSchema, ReviewQueueSchema, TaskList } from "../../src/schemas.js";

// The server's routes as the page calls them; the record types are the server's own (its zod schemas).

export type QueueItem = z.output<typeof InteractionWithFeedbackSchema>;
export type Review = QueueItem["feedback"][number];
export type ReviewQueue = z.output<typeof ReviewQueueSchema>;
export type TaskInfo = TaskList["data"][number];
export type { Job, LoopOverview };

/** An answer of the server other than 2xx, with its message and the field it names. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: string[],
  ) {
    super(message);
  }
}

async function call<T>(method: string, route: string, body?: unknown): Promise<T> {
  const response = await fetch(route, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 401) {
    window.location.assign("/login");
    throw new ApiError(401, "the session has ended: sign in again", []);
  }
  const json = (await response.json().catch(() => null)) as unknown;
  if (!response.ok) {
    const error = (json as ErrorBody | null)?.error;
    throw new ApiError(response.status, error?.message ?? `${method} ${route} answered ${response.status}`, error?.details ?? []);
  }
  return json as T;
}

export const api = {
  tasks: () => call<TaskList>("GET", "/api/tasks"),
  queue: (reviewer: string, task: string | null, limit = 50) =>
    call<ReviewQueue>("GET", `/api/review-queue?${new URLSearchParams({ reviewer, limit: String(limit), ...(task === null ? {} : { task }) })}`),
  interaction: (id: string) => call<QueueItem>("GET", `/api/interactions/${encodeURIComponent(id)}`),
  saveReview: (review: { interaction_id: string; rating: number; correct_points: string[]; incorrect_points: string[]; ideal_response: string | null; reviewer: string }) =>
    call<{ status: "success"; feedback_id: string }>("POST", "/api/feedback", review),
  withdrawReview: (feedbackId: string, reviewer: string) =>
    call<{ status: "success"; feedback: Review }>("DELETE", `/api/feedback/${encodeURIComponent(feedbackId)}?${new URLSearchParams({ reviewer })}`),
  overview: () => call<LoopOverview>("GET", "/api/overview"),
};
