"""Rows made to fit --max-seq-length before any trainer tokenizes them, and SFT's rows tokenized.

A long prompt (a resume) would otherwise leave no room for its answer: TRL's SFT trainer truncates the end of
the sequence and drops a row left without answer tokens, and its DPO and KTO collators truncate the answers
away. Here the prompt gives way instead: tokens are removed from the middle of the user message (the
instruction at its start and the query at its end stay, the cut is marked with "…"), so that the rendered
prompt, the answer and its end-of-turn fit. Only an answer too long for the window even beside a short prompt
keeps its start alone (its end truncated, as TRL would).

SFT's rows are tokenized here too (input_ids and completion_mask, which TRL takes as they are), so that what is
measured is what trains and every answer ends with the EOS token generation stops at."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .inference import format_prompt

CUT_MARK = "…"
# A prompt keeps at least this share of the window (or all of itself, if shorter) beside an answer too long to
# fit: the answer's start is then learned from some of its context rather than from almost none.
PROMPT_FLOOR_SHARE = 8


@dataclass
class FitCounts:
    """What fitting did to one split."""

    rows: int = 0
    prompts_cut: int = 0
    answers_truncated: int = 0


def chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """The prompt as generation sees it: the user message through the chat template with the generation prompt
    (format_prompt's text), or the plain prompt with the tokenizer's own special tokens."""
    if chat_template(tokenizer):
        return list(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])
    return list(tokenizer(prompt)["input_ids"])


def answer_row(tokenizer, prompt: str, answer: str) -> tuple[list[int], int]:
    """The tokens of prompt and answer as one training row, and where the answer starts.

    With a chat template: the conversation [user, assistant] as the template renders it; the answer starts where
    it parts from the prompt rendered with the generation prompt (as TRL computes it). The row ends at the
    answer's EOS: a template that writes more after its end-of-turn (ChatML's newline) would teach a token
    generation never reaches, and a template whose end-of-turn is not the EOS token gets the EOS added, so the
    model learns to emit the token generation stops at. Without a template: prompt and answer as text, then EOS
    (as TRL adds it)."""
    eos = tokenizer.eos_token_id
    prompt_part = prompt_ids(tokenizer, prompt)
    if chat_template(tokenizer):
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        ids = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    else:
        ids = list(tokenizer(prompt + answer)["input_ids"])
    start = _common_prefix(prompt_part, ids)
    if eos is not None:
        answer_part = ids[start:]
        if eos in answer_part:
            ids = ids[: start + len(answer_part) - answer_part[::-1].index(eos)]
        else:
            ids = [*ids, eos]
    return ids, start


def _common_prefix(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def fit_prompt(tokenizer, prompt: str, length: Callable[[str], int], prompt_length: Callable[[str], int], limit: int) -> tuple[str, bool, bool]:
    """The prompt cut in its middle until length(prompt) fits `limit` tokens: (prompt, cut, answer truncated).

    `length` measures the whole row (prompt and answer), `prompt_length` the prompt alone. When the answer does
    not fit beside even the prompt's floor, the prompt is cut to the floor and the answer's end is left to the
    trainer's truncation."""
    total = length(prompt)
    if total <= limit:
        return prompt, False, False
    prompt_tokens = prompt_length(prompt)
    answer_tokens = total - prompt_tokens
    floor = min(prompt_tokens, max(1, limit // PROMPT_FLOOR_SHARE))
    target = limit if answer_tokens + floor <= limit else floor + answer_tokens
    truncated = target > limit
    if total <= target:
        return prompt, False, truncated
    pieces = _token_pieces(tokenizer, prompt)
    count = len(pieces)
    remove = total - target + 1  # the mark takes a token or so
    best = prompt
    for _ in range(8):
        keep = max(0, count - remove)
        head = keep - keep // 2
        tail = keep // 2
        best = pieces.text(0, head) + CUT_MARK + pieces.text(count - tail, count)
        over = length(best) - target
        if over <= 0 or keep == 0:
            break
        remove += over
    return best, True, truncated


class _Pieces:
    """A text as its tokens, to cut between them: by the fast tokenizer's character offsets (so the kept text is
    the text itself), else by decoding the token ids."""

    def __init__(self, text: str, ids: list[int], offsets: list[tuple[int, int]] | None, tokenizer) -> None:
        self.source, self.ids, self.offsets, self.tokenizer = text, ids, offsets, tokenizer

    def __len__(self) -> int:
        return len(self.ids)

    def text(self, first: int, end: int) -> str:
        if first >= end:
            return ""
        if self.offsets is not None:
            # Tokens of one character's bytes share its offsets: a cut among them keeps the character once.
            start = 0 if first == 0 else max(self.offsets[first][0], self.offsets[first - 1][1])
            stop = len(self.source) if end == len(self.ids) else self.offsets[end - 1][1]
            return self.source[start:stop]
        return self.tokenizer.decode(self.ids[first:end])


def _token_pieces(tokenizer, text: str) -> _Pieces:
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return _Pieces(text, encoded["input_ids"], encoded["offset_mapping"], tokenizer)
    return _Pieces(text, tokenizer(text, add_special_tokens=False)["input_ids"], None, tokenizer)


def fit_rows(dataset: Any, tokenizer, fmt: str, limit: int, seq2seq: bool) -> tuple[Any, dict[str, FitCounts]]:
    """Each split's prompts cut to fit (see the module's docstring), with what was cut counted per split."""
    answers = {"sft": ("completion",), "kto": ("completion",), "dpo": ("chosen", "rejected")}[fmt]
    counts: dict[str, FitCounts] = {}
    for split in dataset:
        counts[split] = FitCounts()

        def fit(row: dict[str, Any], split: str = split) -> dict[str, Any]:
            if seq2seq:
                # The prompt alone is the encoder's input; the decoder's labels are truncated on their own.
                chat = chat_template(tokenizer)
                encoder = lambda text: len(tokenizer(format_prompt(tokenizer, text), add_special_tokens=not chat)["input_ids"])  # noqa: E731
                prompt, cut, _ = fit_prompt(tokenizer, row["prompt"], encoder, encoder, limit)
                truncated = any(len(tokenizer(text_target=row[column])["input_ids"]) > limit for column in answers)
            else:
                longest = lambda text: max(len(answer_row(tokenizer, text, row[column])[0]) for column in answers)  # noqa: E731
                prompt, cut, truncated = fit_prompt(tokenizer, row["prompt"], longest, lambda text: len(prompt_ids(tokenizer, text)), limit)
            return {"prompt": prompt, "prompt_cut": cut, "answer_truncated": truncated}

        fitted = dataset[split].map(fit, desc=f"fitting {split} rows to {limit} tokens")
        counts[split] = FitCounts(rows=len(fitted), prompts_cut=sum(fitted["prompt_cut"]), answers_truncated=sum(fitted["answer_truncated"]))
        dataset[split] = fitted.remove_columns(["prompt_cut", "answer_truncated"])
    return dataset, counts


def tokenize_sft(dataset: Any, tokenizer) -> Any:
    """SFT rows as TRL takes them tokenized: input_ids and completion_mask (1 on the answer and its EOS)."""

    def tokenize(row: dict[str, Any]) -> dict[str, Any]:
        ids, start = answer_row(tokenizer, row["prompt"], row["completion"])
        return {"input_ids": ids, "completion_mask": [0] * start + [1] * (len(ids) - start)}

    return dataset.map(tokenize, remove_columns=dataset["train"].column_names, desc="tokenizing")
