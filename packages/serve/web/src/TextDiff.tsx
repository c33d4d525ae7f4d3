import { diffWordsWithSpace } from "diff";

/** What the reviewer changed in the model's answer, word by word: removed text struck through, added text marked. */
export function TextDiff({ before, after }: { before: string; after: string }) {
  const changes = diffWordsWithSpace(before, after);
  const added = changes.filter((change) => change.added).reduce((sum, change) => sum + change.value.trim().split(/\s+/).filter(Boolean).length, 0);
  const removed = changes.filter((change) => change.removed).reduce((sum, change) => sum + change.value.trim().split(/\s+/).filter(Boolean).length, 0);
  return (
    <figure className="diff">
      <figcaption>
        Changes from the model's answer: {added} word{added === 1 ? "" : "s"} added, {removed} removed
      </figcaption>
      <pre>
        {changes.map((change, index) =>
          change.added ? (
            <ins key={index}>{change.value}</ins>
          ) : change.removed ? (
            <del key={index}>{change.value}</del>
          ) : (
            <span key={index}>{change.value}</span>
          ),
        )}
      </pre>
    </figure>
  );
}
