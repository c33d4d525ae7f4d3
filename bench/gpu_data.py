"""Training rows for bench/gpu.sh: SFT pairs of the shape build-db writes (feedback_db/training_pairs/sft/train.jsonl:
{"prompt", "completion", "task", "source_ids"}), made directly from the bundled reviewed interactions (no embedder,
no download), each filled to the benchmark's sequence length.

A row's prompt is the one every stage builds (configs/default.yaml's prompts.template with the task's instruction,
the context section and the query); its completion is the reviewer's ideal response, or the model's answer where it
was rated good. The context is lengthened with other interactions' context passages and the knowledge base's
documents, and then cut (at a character count found by bisection) so that the row, tokenized as the worker tokenizes
an SFT row of a model without a chat template (prompt + completion as one text, the tokenizer's BOS, then EOS), is
as long as possible within --max-seq-length: every row is within a few tokens of it, so neither the product nor the
baseline cuts anything, and both train on the same tokens.

Usage: python bench/gpu_data.py --tokenizer DIR --rows N --max-seq-length L --out DIR
Writes DIR/sft/train.jsonl and DIR/rows.json (token count of each row, their sum)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "data/samples/interactions.jsonl", REPO / "data/samples/one_page_resumes.jsonl"]
GOOD_RATING = 4


def say(message: str) -> None:
    print(f"gpu-bench: {message}", file=sys.stderr, flush=True)


def prompt_settings() -> dict:
    import yaml

    return yaml.safe_load((REPO / "configs/default.yaml").read_text())["prompts"]


def reviewed_pairs() -> list[dict]:
    """(task, query, context, completion, id) of every interaction with an SFT-worthy answer."""
    pairs = []
    for source in SOURCES:
        for line in source.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            reviews = row.get("feedback") or []
            reviews = [reviews] if isinstance(reviews, dict) else reviews
            ideal = next((r["ideal_response"] for r in reviews if r.get("ideal_response")), None)
            rating = max((r.get("rating") or 0 for r in reviews), default=0)
            completion = ideal or (row.get("response") if rating >= GOOD_RATING else None)
            if completion and row.get("query"):
                pairs.append({"id": row["id"], "task": row["task"], "query": row["query"], "context": list(row.get("context") or []), "completion": completion})
    if not pairs:
        raise SystemExit(f"gpu-bench: no reviewed interactions in {', '.join(map(str, SOURCES))}")
    return pairs


def filler_passages(pairs: list[dict]) -> list[str]:
    """Text to lengthen contexts with: every interaction's context passages and the knowledge base's documents."""
    passages = [passage for pair in pairs for passage in pair["context"] if passage.strip()]
    passages += [doc.read_text(encoding="utf-8") for doc in sorted((REPO / "data/ats_docs").glob("*.md"))]
    return passages


def build_prompt(settings: dict, task: str, context: str, query: str) -> str:
    instruction = settings["instructions"].get(task, settings["instructions"]["default"])
    section = settings["context_section"].replace("{items}", context) if context else ""
    return settings["template"].replace("{instruction}", instruction).replace("{context}", section).replace("{query}", query)


def row_length(tokenizer, prompt: str, completion: str) -> int:
    """Tokens of the row as the worker trains it without a chat template: prompt + completion with the
    tokenizer's special tokens, then EOS."""
    return len(tokenizer(prompt + completion, truncation=False)["input_ids"]) + 1


def cap_tokens(tokenizer, text: str, limit: int) -> str:
    """The text's first `limit` tokens (cut at a token boundary)."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
    if len(encoded["input_ids"]) <= limit:
        return text
    return text[: encoded["offset_mapping"][limit - 1][1]]


def fill_row(tokenizer, settings: dict, pair: dict, filler: str, max_len: int) -> tuple[dict, int]:
    separator = settings["context_separator"]
    # The answer takes at most half of what the prompt without context leaves (and of the window), so every row
    # keeps some context too.
    bare = row_length(tokenizer, build_prompt(settings, pair["task"], "", pair["query"]), "")
    if bare + 2 > max_len:
        raise SystemExit(f"gpu-bench: --max-seq-length {max_len} is too short: the {pair['task']} prompt alone is {bare} tokens")
    limit = max(1, min(max_len // 2, (max_len - bare) // 2))
    completion = cap_tokens(tokenizer, pair["completion"], limit)
    while limit > 1 and row_length(tokenizer, build_prompt(settings, pair["task"], "", pair["query"]), completion) > max_len:
        limit //= 2
        completion = cap_tokens(tokenizer, pair["completion"], limit)
    context = separator.join([*pair["context"], filler])
    # The longest prefix of the context (in characters) whose row fits: bisection on the row's token count.
    low, high = 0, len(context)
    if row_length(tokenizer, build_prompt(settings, pair["task"], context, pair["query"]), completion) <= max_len:
        raise SystemExit(f"gpu-bench: not enough text to fill a row to {max_len} tokens")
    while low < high:
        middle = (low + high + 1) // 2
        if row_length(tokenizer, build_prompt(settings, pair["task"], context[:middle], pair["query"]), completion) <= max_len:
            low = middle
        else:
            high = middle - 1
    prompt = build_prompt(settings, pair["task"], context[:low].rstrip(), pair["query"])
    length = row_length(tokenizer, prompt, completion)
    return {"prompt": prompt, "completion": completion, "task": pair["task"], "source_ids": [pair["id"]]}, length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="folder of the tokenizer the rows are measured with")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--max-seq-length", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    # Long texts are measured here, not fed to a model: no warning about the model's length.
    tokenizer.model_max_length = 10**9
    if getattr(tokenizer, "chat_template", None):
        raise SystemExit("gpu-bench: the tokenizer has a chat template; these rows are measured as plain text (prompt + completion + EOS)")
    settings = prompt_settings()
    pairs = reviewed_pairs()
    passages = filler_passages(pairs)
    # Enough filler for any row: about 2 characters per token is already more than byte-level BPE needs.
    needed = 8 * args.max_seq_length
    rows, lengths = [], []
    for index in range(args.rows):
        pair = pairs[index % len(pairs)]
        # Each row gets its own run of filler passages (rotating through them), so rows differ.
        filler, start = [], index * 7
        while sum(map(len, filler)) < needed:
            filler.append(passages[start % len(passages)])
            start += 1
        row, length = fill_row(tokenizer, settings, pair, settings["context_separator"].join(filler), args.max_seq_length)
        rows.append(row)
        lengths.append(length)
    out = Path(args.out)
    (out / "sft").mkdir(parents=True, exist_ok=True)
    with (out / "sft" / "train.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {"rows": len(rows), "max_seq_length": args.max_seq_length, "tokens": sum(lengths), "min_row_tokens": min(lengths), "max_row_tokens": max(lengths), "row_tokens": lengths}
    (out / "rows.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"{len(rows)} SFT rows of {min(lengths)}–{max(lengths)} tokens ({sum(lengths):,} in all) in {out / 'sft' / 'train.jsonl'}")


if __name__ == "__main__":
    main()
