import crypto from "node:crypto";
import { SPLITS, type Split } from "@ats-lora/core";

export type SplitFractions = { train: number; val: number; test: number };

/**
 * The split of a key (a content key, see `contentKey`), from a hash of the key and dataset.seed alone: the same
 * key always lands in the same split, whatever else is in the store.
 */
export function splitOf(key: string, seed: number, fractions: SplitFractions): Split {
  const digest = crypto.createHash("sha256").update(`${seed}:${key}`).digest();
  const unit = digest.readUInt32BE(0) / 0x1_0000_0000;
  if (unit < fractions.train) return "train";
  if (unit < fractions.train + fractions.val) return "val";
  return "test";
}

/** Text as content: Unicode NFC, runs of whitespace as one space, trimmed. */
export function normalizeText(text: string): string {
  return text.normalize("NFC").replace(/\s+/gu, " ").trim();
}

/**
 * What a prompt is about, independent of the interaction id, the prompt template and retrieved passages: a
 * hash of the task, the normalized query and each normalized context passage. Two interactions with the same
 * request about the same resume have the same key.
 */
export function contentKey(task: string, query: string, context: readonly string[]): string {
  const parts = [task, normalizeText(query), ...context.map(normalizeText)];
  return crypto.createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 32);
}

/** One prompt to place in a split. */
export interface SplitMember {
  /** `contentKey` of the prompt's content. */
  key: string;
  task: string;
  /** The prompt as written to the rows. */
  prompt: string;
}

export interface AssignSplitsOptions {
  /**
   * Similarity of members a and b by build-db's near-duplicate rule (the minimum over the parts' cosines, or
   * anything below the threshold once one part falls below it); only asked for members of one task.
   */
  similarity: (a: number, b: number) => number;
  /** dataset.dedupe_threshold: members at least this similar are near-duplicates. */
  threshold: number;
  /** Content key → split, as earlier builds assigned them (splits.jsonl). */
  previous: ReadonlyMap<string, Split>;
  seed: number;
  fractions: SplitFractions;
}

export interface SplitAssignment {
  /** The split of each member, in input order. */
  splits: Split[];
  /** The content group of each member (an index into 0..groups-1, in order of first member). */
  group: number[];
  groups: number;
  /** Members whose split an earlier build had assigned. */
  carried: number;
  /** Groups no earlier build had seen: their split is the hash of their smallest content key. */
  newGroups: number;
  /** Groups whose members earlier builds had put in more than one split; each such member kept its split. */
  conflicts: Array<{ members: number[]; splits: Split[] }>;
}

/**
 * Places prompts in splits by content group, so that one piece of content never sits in two splits and
 * adding data never moves a prompt.
 *
 * A content group is a connected set of members: identical prompts, identical content keys, and prompts of
 * one task that build-db's near-duplicate rule joins (every part at least `threshold` cosine-similar), taken
 * transitively. Whichever member a build keeps as the group's representative, the group has one split:
 * - a member an earlier build assigned keeps that split (`previous`, read from the last build's splits.jsonl);
 * - the other members of a group take the split its earlier members had;
 * - a group no earlier build has seen takes the split of the hash of its smallest content key (then recorded,
 *   so later members joining it, whatever their keys, inherit it);
 * - a group whose earlier members sit in different splits (a new prompt bridging two groups, or a build from
 *   before content groups) keeps each earlier member where it was, rather than moving an old prompt, and is
 *   reported; its new members follow the earlier member they are most similar to.
 */
export function assignSplits(members: readonly SplitMember[], options: AssignSplitsOptions): SplitAssignment {
  const { similarity, threshold, previous, seed, fractions } = options;
  const parent = members.map((_, index) => index);
  const find = (index: number): number => {
    let root = index;
    while (parent[root] !== root) root = parent[root]!;
    while (parent[index] !== root) [index, parent[index]] = [parent[index]!, root];
    return root;
  };
  const union = (a: number, b: number): void => {
    const [ra, rb] = [find(a), find(b)];
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const firstWith = new Map<string, number>();
  members.forEach((member, index) => {
    for (const id of [`key:${member.key}`, `prompt:${member.prompt}`]) {
      const first = firstWith.get(id);
      if (first === undefined) firstWith.set(id, index);
      else union(first, index);
    }
  });
  const byTask = new Map<string, number[]>();
  members.forEach((member, index) => byTask.set(member.task, [...(byTask.get(member.task) ?? []), index]));
  for (const indices of byTask.values()) {
    for (let i = 0; i < indices.length; i += 1) {
      for (let j = i + 1; j < indices.length; j += 1) {
        const [a, b] = [indices[i]!, indices[j]!];
        if (find(a) !== find(b) && similarity(a, b) >= threshold) union(a, b);
      }
    }
  }

  const rootGroup = new Map<number, number>();
  const group = members.map((_, index) => {
    const root = find(index);
    let id = rootGroup.get(root);
    if (id === undefined) rootGroup.set(root, (id = rootGroup.size));
    return id;
  });
  const membersOf: number[][] = Array.from({ length: rootGroup.size }, () => []);
  group.forEach((id, index) => membersOf[id]!.push(index));

  const affinity = (a: number, b: number): number => {
    const [ma, mb] = [members[a]!, members[b]!];
    if (ma.key === mb.key || ma.prompt === mb.prompt) return 1;
    return ma.task === mb.task ? similarity(a, b) : 0;
  };
  const splits: Split[] = new Array<Split>(members.length);
  let carried = 0;
  let newGroups = 0;
  const conflicts: SplitAssignment["conflicts"] = [];
  for (const indices of membersOf) {
    const assigned = indices.filter((index) => previous.has(members[index]!.key));
    for (const index of assigned) splits[index] = previous.get(members[index]!.key)!;
    carried += assigned.length;
    const earlier = SPLITS.filter((split) => assigned.some((index) => splits[index] === split));
    const fresh = indices.filter((index) => !previous.has(members[index]!.key));
    if (earlier.length === 0) {
      newGroups += 1;
      const smallest = indices.map((index) => members[index]!.key).sort()[0]!;
      for (const index of fresh) splits[index] = splitOf(smallest, seed, fractions);
    } else if (earlier.length === 1) {
      for (const index of fresh) splits[index] = earlier[0]!;
    } else {
      conflicts.push({ members: [...indices], splits: earlier });
      for (const index of fresh) {
        // The most similar earlier member; ties go to the smaller content key.
        let best = assigned[0]!;
        let bestScore = -Infinity;
        for (const other of assigned) {
          const score = affinity(index, other);
          if (score > bestScore || (score === bestScore && members[other]!.key < members[best]!.key)) [best, bestScore] = [other, score];
        }
        splits[index] = splits[best]!;
      }
    }
  }
  return { splits, group, groups: membersOf.length, carried, newGroups, conflicts };
}

/** One distinct prompt of the written rows, with the example it came from. */
export interface LeakageEntry {
  /** The example's index, as `similarity` knows it. */
  index: number;
  /** Its interaction id, for the report. */
  id: string;
  task: string;
  split: Split;
  prompt: string;
}

export interface LeakageCheck {
  definition: string;
  /** Distinct prompts compared, per split. */
  compared: Record<Split, number>;
  /** Held-out (val or test) prompts identical or near-identical to a training prompt; 0 when nothing leaks. */
  violations: number;
  /** The first few violations: the held-out prompt's interaction, the training prompt's, and their similarity. */
  examples: Array<{ split: Split; id: string; train_id: string; similarity: number }>;
}

export const LEAKAGE_DEFINITION =
  "a val or test prompt leaks when it is identical to a train prompt, or is a near-duplicate of one by build-db's rule: same task, and the query and every context passage, embedded one by one, at least dataset.dedupe_threshold cosine-similar";

/**
 * Checks the written rows for leakage between splits, by comparing every held-out prompt with every training
 * prompt (identical text, or the near-duplicate rule), independently of how the splits were assigned.
 */
export function checkLeakage(
  entries: readonly LeakageEntry[],
  options: { similarity: (a: number, b: number) => number; threshold: number; maxExamples?: number },
): LeakageCheck {
  const maxExamples = options.maxExamples ?? 20;
  const train = entries.filter((entry) => entry.split === "train");
  const trainByPrompt = new Map(train.map((entry) => [entry.prompt, entry]));
  const trainByTask = new Map<string, LeakageEntry[]>();
  for (const entry of train) trainByTask.set(entry.task, [...(trainByTask.get(entry.task) ?? []), entry]);
  let violations = 0;
  const examples: LeakageCheck["examples"] = [];
  for (const entry of entries) {
    if (entry.split === "train") continue;
    let match: { entry: LeakageEntry; similarity: number } | undefined;
    const identical = trainByPrompt.get(entry.prompt);
    if (identical) {
      match = { entry: identical, similarity: 1 };
    } else {
      for (const other of trainByTask.get(entry.task) ?? []) {
        const similarity = options.similarity(entry.index, other.index);
        if (similarity >= options.threshold && (match === undefined || similarity > match.similarity)) match = { entry: other, similarity };
      }
    }
    if (match === undefined) continue;
    violations += 1;
    if (examples.length < maxExamples) {
      examples.push({ split: entry.split, id: entry.id, train_id: match.entry.id, similarity: Math.round(match.similarity * 1e4) / 1e4 });
    }
  }
  const count = (split: Split): number => entries.filter((entry) => entry.split === split).length;
  return { definition: LEAKAGE_DEFINITION, compared: { train: count("train"), val: count("val"), test: count("test") }, violations, examples };
}
