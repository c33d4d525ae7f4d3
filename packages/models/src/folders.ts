import fs from "node:fs";
import path from "node:path";

const WEIGHTS = /\.(safetensors|bin|gguf)$/;

/** The bytes of a folder's weight files (one level). */
export function weightBytes(dir: string): number {
  return fs
    .readdirSync(dir)
    .filter((name) => WEIGHTS.test(name))
    .reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0);
}

/** adapter_config.json's base_model_name_or_path: the base PEFT recorded, for an adapter without lineage. */
export function configuredBase(adapterDir: string): string | null {
  try {
    const config = JSON.parse(fs.readFileSync(path.join(adapterDir, "adapter_config.json"), "utf8")) as { base_model_name_or_path?: unknown };
    return typeof config.base_model_name_or_path === "string" && config.base_model_name_or_path !== "" ? config.base_model_name_or_path : null;
  } catch {
    return null;
  }
}

/** A Hugging Face hub model id (org/name), as opposed to a local path. */
export const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;
