import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { InputError, RunError } from "./errors.js";
import { isProcessAlive } from "./processes.js";

/**
 * A folder that a command rebuilds as a whole (build-db's training pairs, rag's vector store): written into a
 * hidden staging folder beside the target and swapped in, so readers never see half a build. The target is
 * only ever replaced when it holds nothing but an earlier build of the same kind, and a run killed half-way
 * (even between the swap's two renames) is recovered by the next one.
 */
export interface BuildFolderKind {
  /** What the folder holds, in messages: "training pairs", "vector store". */
  name: string;
  /** The command option that names the folder, in messages: "--output". */
  option: string;
  /** The top-level entries a build of this kind writes; a folder holding anything else is not replaced. */
  entries: readonly string[];
}

/** Written into every build; says which kind of build the folder holds. */
export const BUILD_MARKER_FILE = ".ats-lora-build.json";
/** Kept across rebuilds: git's placeholder for an otherwise empty folder. */
const CARRIED_OVER = [".gitkeep"];

interface Marker {
  kind: string;
  pid: number;
  created_at: string;
}

/** A staging folder created by `startBuild`, finished by `commitBuild` or dropped by `abandonBuild`. */
export interface StagedBuild {
  target: string;
  staging: string;
  kind: BuildFolderKind;
}

/**
 * Recovers what an earlier, killed run left beside `target`, then checks that `target` may be replaced by a
 * build of `kind` and creates the staging folder the new build is written into.
 */
export function startBuild(target: string, kind: BuildFolderKind): StagedBuild {
  const resolved = path.resolve(target);
  recoverInterruptedBuilds(resolved, kind);
  checkReplaceable(resolved, kind);
  const parent = path.dirname(resolved);
  try {
    fs.mkdirSync(parent, { recursive: true });
  } catch (error) {
    throw new RunError(`cannot create ${parent} for the ${kind.name}: ${(error as Error).message}`, { cause: error });
  }
  const staging = path.join(parent, `${hiddenPrefix(resolved)}staging-${process.pid}-${crypto.randomBytes(4).toString("hex")}`);
  try {
    fs.mkdirSync(staging);
  } catch (error) {
    throw new RunError(`cannot write beside ${resolved}: ${(error as Error).message}`, {
      cause: error,
      hint: `the folder ${parent} must be writable`,
    });
  }
  writeMarker(staging, kind);
  return { target: resolved, staging, kind };
}

/** Swaps the finished staging folder in place of the target; the replaced build is deleted. */
export function commitBuild(build: StagedBuild): void {
  const { target, staging, kind } = build;
  // Checked again: another process may have put something there while this build ran.
  checkReplaceable(target, kind);
  for (const name of CARRIED_OVER) {
    const from = path.join(target, name);
    if (fs.existsSync(from)) fs.copyFileSync(from, path.join(staging, name));
  }
  const previous = path.join(path.dirname(target), `${hiddenPrefix(target)}previous-${process.pid}-${crypto.randomBytes(4).toString("hex")}`);
  const hadTarget = fs.existsSync(target);
  // An earlier build made before markers existed (or a folder holding only .gitkeep) gets one now, so that a
  // run killed between the two renames below leaves a "previous" folder the next run recognises and puts back.
  if (hadTarget && readMarker(target)?.kind !== kind.name) writeMarker(target, kind);
  if (hadTarget) fs.renameSync(target, previous);
  try {
    fs.renameSync(staging, target);
  } catch (error) {
    if (hadTarget) fs.renameSync(previous, target);
    throw error;
  }
  if (hadTarget) fs.rmSync(previous, { recursive: true, force: true });
}

/** Deletes the staging folder of a build that failed. */
export function abandonBuild(build: StagedBuild): void {
  fs.rmSync(build.staging, { recursive: true, force: true });
}

/**
 * What a killed run leaves beside the target: staging folders (a half-written build) and, when it died
 * between the swap's two renames, the earlier build in a "previous" folder with no target. The earlier build
 * goes back in place; the rest is deleted. Only folders of a run that is no longer alive are touched, and
 * only when their marker says they are builds of this kind.
 */
export function recoverInterruptedBuilds(target: string, kind: BuildFolderKind): { restored: boolean; removed: string[] } {
  const resolved = path.resolve(target);
  const parent = path.dirname(resolved);
  const prefix = hiddenPrefix(resolved);
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return { restored: false, removed: [] };
  }
  const leftovers = names
    .map((name) => ({ name, match: new RegExp(`^${escapeRegExp(prefix)}(staging|previous)-(\\d+)-[0-9a-f]+$`).exec(name) }))
    .filter((entry) => entry.match !== null && !isProcessAlive(Number(entry.match[2])))
    .map((entry) => ({ file: path.join(parent, entry.name), role: entry.match![1] as "staging" | "previous", marker: readMarker(path.join(parent, entry.name)) }))
    .filter((entry) => entry.marker?.kind === kind.name)
    // The newest earlier build is the one to put back, should several have been left behind.
    .sort((a, b) => (b.marker!.created_at ?? "").localeCompare(a.marker!.created_at ?? ""));
  let restored = false;
  const removed: string[] = [];
  for (const entry of leftovers) {
    // Another process (a reader, a second build) may be recovering the same folders at the same time: a
    // rename or removal that fails because it got there first is left to it.
    if (entry.role === "previous" && !restored && !fs.existsSync(resolved)) {
      try {
        fs.renameSync(entry.file, resolved);
        restored = true;
      } catch {
        // gone, or the target appeared meanwhile: the next run sorts out what is left
      }
      continue;
    }
    try {
      fs.rmSync(entry.file, { recursive: true, force: true });
      removed.push(entry.file);
    } catch {
      // removed by another process meanwhile, or not removable now: tried again next time
    }
  }
  return { restored, removed };
}

function checkReplaceable(target: string, kind: BuildFolderKind): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch {
    return;
  }
  if (!stat.isDirectory()) {
    throw new InputError(`${kind.option} ${target} is a file, not a folder for the ${kind.name}`, {
      hint: `choose a new or empty folder for ${kind.option}`,
    });
  }
  const marked = readMarker(target)?.kind;
  if (marked !== undefined && marked !== kind.name) {
    throw new InputError(`${kind.option} ${target} holds a ${marked} build, not ${kind.name}: refusing to replace it`, {
      hint: `choose a new or empty folder for ${kind.option}`,
    });
  }
  const foreign = fs.readdirSync(target).filter((name) => name !== BUILD_MARKER_FILE && !CARRIED_OVER.includes(name) && !kind.entries.includes(name));
  if (foreign.length > 0) {
    const shown = foreign.sort().slice(0, 5).join(", ") + (foreign.length > 5 ? `, … (${foreign.length} in all)` : "");
    throw new InputError(`${kind.option} ${target} is not empty and does not hold an earlier ${kind.name} build (it has ${shown}): refusing to replace it`, {
      hint: `choose a new or empty folder for ${kind.option}; a rebuild only replaces a folder that holds ${kind.name} and nothing else`,
    });
  }
}

function writeMarker(folder: string, kind: BuildFolderKind): void {
  const marker: Marker = { kind: kind.name, pid: process.pid, created_at: new Date().toISOString() };
  fs.writeFileSync(path.join(folder, BUILD_MARKER_FILE), `${JSON.stringify(marker)}\n`);
}

function readMarker(folder: string): Marker | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(path.join(folder, BUILD_MARKER_FILE), "utf8")) as Partial<Marker>;
    return typeof parsed.kind === "string" ? (parsed as Marker) : undefined;
  } catch {
    return undefined;
  }
}

function hiddenPrefix(target: string): string {
  return `.${path.basename(target)}.`;
}


function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
