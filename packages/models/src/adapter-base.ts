import fs from "node:fs";
import path from "node:path";
import { checkAdapterBase, fingerprintBase, InputError, readModelCard, type BaseReference, type OperationContext } from "@ats-lora/core";
import { catalogueEntry, catalogueEntryBySha256 } from "./catalogue.js";
import { configuredBase, HUB_ID } from "./folders.js";

export interface AdapterBase {
  /** Where the base was named: --base, the adapter's model.json lineage, or its adapter_config.json. */
  from: "given" | "lineage" | "adapter_config";
  /** The base as it is now (fingerprinted), already checked against the lineage. */
  reference: BaseReference;
}

/**
 * An adapter folder's base model: the one given, else the one its lineage records, else the one PEFT recorded.
 * Refuses a folder that is not a PEFT adapter, a base that is missing (naming the catalogue model to pull when it
 * is one), and a base other than the one the adapter was trained on (InputError naming both).
 */
export function adapterBase(adapterDir: string, given: string | undefined, context: OperationContext): AdapterBase {
  if (!fs.existsSync(adapterDir) || !fs.statSync(adapterDir).isDirectory()) {
    throw new InputError(`no such adapter folder: ${adapterDir}`, { hint: "ats-lora models list shows the adapters in models/" });
  }
  const card = readModelCard(adapterDir);
  if (card?.kind === "base") throw new InputError(`${adapterDir} is a base model, not an adapter`, { hint: "give the folder train wrote (models/ats_lora_vN)" });
  if (!fs.existsSync(path.join(adapterDir, "adapter_config.json"))) {
    throw new InputError(`${adapterDir} is not a PEFT adapter: it has no adapter_config.json`, { hint: "give the folder train wrote (models/ats_lora_vN)" });
  }
  if (given !== undefined) {
    if (!fs.existsSync(given) && !HUB_ID.test(given)) throw new InputError(`--base ${given}: no such file or folder`, { hint: "give the base model's folder or .gguf file" });
    const reference = fingerprintBase(given);
    checkAdapterBase(adapterDir, reference);
    return { from: "given", reference };
  }
  const recorded = card?.kind === "adapter" ? card.base : undefined;
  const named = recorded?.path ?? configuredBase(adapterDir);
  if (named === null) {
    throw new InputError(`${adapterDir}: neither model.json nor adapter_config.json names the base model it was trained on`, { hint: "give it: --base BASE" });
  }
  const from = recorded ? "lineage" : "adapter_config";
  // A hub id is fetched (or found in the hub cache) by the worker, as it was for training.
  const hub = recorded ? recorded.format === "hub" : !path.isAbsolute(named) && HUB_ID.test(named) && !fs.existsSync(named);
  if (hub) return { from, reference: { path: named, format: "hub", weights: null, sha256: null } };
  if (!fs.existsSync(named)) throw missingBase(named, recorded?.sha256 ?? null, context);
  const reference = fingerprintBase(named);
  checkAdapterBase(adapterDir, reference);
  return { from, reference };
}

function missingBase(base: string, sha256: string | null, context: OperationContext): InputError {
  const entry = catalogueEntryBySha256(sha256) ?? catalogueEntry(path.basename(base, ".gguf"));
  if (!entry) return new InputError(`the base model ${base} it was trained on is missing`, { hint: "restore it, or give the same model's new place: --base BASE" });
  // The lineage names the base folder, or the .gguf inside it.
  const isFile = base.endsWith(".gguf");
  const folderPath = path.resolve(isFile ? path.dirname(base) : base);
  const folder = path.basename(folderPath);
  const here = folderPath === path.join(context.paths.models, folder) && (!isFile || path.basename(base) === entry.file);
  const pull = `ats-lora models pull ${entry.name}${folder === entry.name ? "" : ` --as ${folder}`}`;
  return new InputError(`the base model ${base} it was trained on is missing`, {
    hint: here ? `pull it again: ${pull}` : `pull it (${pull}), then give it: --base ${path.join("models", folder)}`,
  });
}
