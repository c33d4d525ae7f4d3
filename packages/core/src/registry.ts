import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { readJsonRecord } from "./model-card.js";

/**
 * models/registry.json: which adapter is in production and which in staging, and every promotion and rollback
 * that got them there. Written by `models promote` and `models rollback`; read by `serve` (what it answers with),
 * `train` (the new adapter's parent) and `eval --gate` (what a candidate is compared with).
 */
export const REGISTRY_FILE = "registry.json";
export const STAGES = ["production", "staging"] as const;
export type Stage = (typeof STAGES)[number];

export const RegistryEventSchema = z.object({
  at: z.string(),
  stage: z.enum(STAGES),
  action: z.enum(["promote", "rollback"]),
  /** The adapter the stage holds after this event (null: none). */
  model: z.string().nullable(),
  /** What it held before. */
  previous: z.string().nullable(),
});
export type RegistryEvent = z.infer<typeof RegistryEventSchema>;

export const RegistrySchema = z.object({
  format_version: z.literal(1),
  production: z.string().nullable(),
  staging: z.string().nullable(),
  history: z.array(RegistryEventSchema),
});
export type Registry = z.infer<typeof RegistrySchema>;

export function registryFile(modelsDir: string): string {
  return path.join(modelsDir, REGISTRY_FILE);
}

/** The registry under models/, or an empty one when there is none; a damaged one is an InputError naming the field. */
export function readRegistry(modelsDir: string): Registry {
  const file = registryFile(modelsDir);
  if (!fs.existsSync(file)) return { format_version: 1, production: null, staging: null, history: [] };
  return readJsonRecord(file, RegistrySchema, "restore it from a backup, or delete it and promote the production adapter again");
}

/** Replaces the registry in one rename, so a reader sees the old one or the new one, never half of one. */
export function writeRegistry(modelsDir: string, registry: Registry): void {
  const file = registryFile(modelsDir);
  fs.mkdirSync(modelsDir, { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, `${JSON.stringify(RegistrySchema.parse(registry), null, 2)}\n`);
  fs.renameSync(temporary, file);
}
