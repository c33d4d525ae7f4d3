import crypto from "node:crypto";
import type { Split } from "./schema.js";

/**
 * The split of an interaction, from a hash of its id and the seed alone: the same id always lands in the
 * same split, whatever else is in the store, so adding data never moves an existing row.
 */
export function splitOf(id: string, seed: number, fractions: { train: number; val: number; test: number }): Split {
  const digest = crypto.createHash("sha256").update(`${seed}:${id}`).digest();
  const unit = digest.readUInt32BE(0) / 0x1_0000_0000;
  if (unit < fractions.train) return "train";
  if (unit < fractions.train + fractions.val) return "val";
  return "test";
}
