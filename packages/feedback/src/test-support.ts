import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FeedbackStore } from "./store.js";

/** A fresh folder under the system temp dir. */
export function tempDir(prefix = "ats-feedback-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A new store in a fresh temp folder. */
export function tempStore(): FeedbackStore {
  return FeedbackStore.open(path.join(tempDir(), "feedback_db", "feedback.sqlite"));
}

/** Writes JSONL lines (objects are serialised, strings written as they are) and returns the path. */
export function writeJsonl(dir: string, name: string, lines: Array<unknown>): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, lines.map((line) => (typeof line === "string" ? line : JSON.stringify(line))).join("\n") + "\n");
  return file;
}

export const interactionLine = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: "ix-1",
  created_at: "2026-09-14T10:22:05Z",
  task: "match_score",
  query: "Score how well this candidate matches the job from 0 to 1.",
  context: ["Job: Senior Backend Engineer, Go and Kubernetes required.", "Resume: Ana Ruiz, ana.ruiz@example.com, +1 415 555 0142"],
  response: '{"match_score": 0.35, "reasoning": "Lacks Kubernetes."}',
  model: "mistral-7b-ats-v0",
  metadata: { role: "Senior Backend Engineer", reference_score: 0.7 },
  feedback: {
    rating: 2,
    correct_points: ["identifies Go experience"],
    incorrect_points: ["misses the EKS work that shows Kubernetes"],
    ideal_response: '{"match_score": 0.7, "reasoning": "Go and EKS cover both must-haves."}',
    reviewer: "p.sharma",
    created_at: "2026-09-14T12:00:00Z",
  },
  ...overrides,
});
