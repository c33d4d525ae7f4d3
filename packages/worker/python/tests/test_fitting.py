"""Rows fitted to --max-seq-length: a long prompt loses its middle and keeps its answer (no row dropped), an
answer too long on its own keeps its start, and every SFT row ends with the EOS generation stops at, in the loss."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import REPO, SCORES, train_params, write_split

from ats_lora_worker.contracts.protocol import parse_params
from ats_lora_worker.contracts.protocol_types import TrainParams
from ats_lora_worker.fitting import CUT_MARK, answer_row, fit_rows, prompt_ids
from ats_lora_worker.inference import format_prompt
from ats_lora_worker.training import train

INSTRUCTION = "Score how well the candidate matches the job from 0 to 1."
QUERY = "Score: Go developer for a Go role."


def resumes() -> list[str]:
    """Real resume texts of the bundled samples: long contexts."""
    rows = [json.loads(line) for line in (REPO / "data" / "samples" / "interactions.jsonl").read_text().splitlines() if line.strip()]
    return [row["context"][0] for row in rows if row.get("context")][:8]


def long_prompt(context: str) -> str:
    return f"### Instruction:\n{INSTRUCTION}\n\n### Context:\n{context}\n\n### Input:\n{QUERY}\n\n### Response:\n"


def tokenizer_of(model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


@pytest.fixture(scope="module")
def long_pairs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("long-pairs")
    rows = [{"prompt": long_prompt(context), "completion": SCORES[i % len(SCORES)][1]} for i, context in enumerate(resumes())]
    write_split(folder, "sft", "train", rows)
    write_split(folder, "sft", "val", rows[:2])
    return folder


@pytest.mark.parametrize("model", ["tiny_model", "tiny_chat_model"])
def test_a_long_prompt_loses_its_middle_and_keeps_its_answer(model, request):
    from datasets import Dataset, DatasetDict

    tokenizer = tokenizer_of(request.getfixturevalue(model))
    limit = 160
    rows = [{"prompt": long_prompt(context), "completion": '{"match_score": 0.9}'} for context in resumes()]
    assert all(len(prompt_ids(tokenizer, row["prompt"])) > limit for row in rows)  # TRL would have dropped every one
    short = {"prompt": "Score: nurse for a Go role.\nAnswer:\n", "completion": '{"match_score": 0.1}'}
    fitted, counts = fit_rows(DatasetDict({"train": Dataset.from_list([*rows, short])}), tokenizer, "sft", limit, seq2seq=False)
    assert (counts["train"].rows, counts["train"].prompts_cut, counts["train"].answers_truncated) == (len(rows) + 1, len(rows), 0)
    for row in fitted["train"]:
        ids, start = answer_row(tokenizer, row["prompt"], row["completion"])
        assert len(ids) <= limit
        if row["prompt"] == short["prompt"]:
            continue  # a prompt that fits is left as it is
        # The instruction (the start) and the query with the response header (the end) stay; the middle is marked.
        assert row["prompt"].startswith(f"### Instruction:\n{INSTRUCTION}\n\n### Context:\n")
        assert row["prompt"].endswith(f"\n\n### Input:\n{QUERY}\n\n### Response:\n")
        assert CUT_MARK in row["prompt"]
        # The whole answer and its EOS are there, and the window is used: at most a few tokens are left over.
        assert tokenizer.decode(ids[start:], skip_special_tokens=True).strip() == row["completion"]
        assert ids[-1] == tokenizer.eos_token_id
        assert len(ids) >= limit - 4


def test_an_answer_too_long_on_its_own_keeps_its_start_beside_a_short_prompt(tiny_model):
    from datasets import Dataset, DatasetDict

    tokenizer = tokenizer_of(tiny_model)
    limit = 256
    answer = " ".join(resumes()[0].split()[:300])
    prompt = long_prompt(resumes()[1])
    fitted, counts = fit_rows(DatasetDict({"train": Dataset.from_list([{"prompt": prompt, "completion": answer}])}), tokenizer, "sft", limit, seq2seq=False)
    assert counts["train"].prompts_cut == 1 and counts["train"].answers_truncated == 1
    ids, start = answer_row(tokenizer, fitted["train"][0]["prompt"], answer)
    # The prompt keeps an eighth of the window (its start and end); the answer is what runs past the window.
    assert len(ids) > limit and limit // 8 - 2 <= start <= limit // 8 + 2
    assert fitted["train"][0]["prompt"].startswith("### Instruction:\n")
    assert fitted["train"][0]["prompt"].endswith("### Response:\n")


def test_training_on_long_prompts_cuts_them_counts_them_and_drops_no_row(tiny_chat_model, long_pairs, tmp_path):
    events: list[tuple[str, dict]] = []
    output = tmp_path / "long"
    params = train_params(tiny_chat_model, long_pairs, output, max_steps=2, max_seq_length=160, batch_size=4, save_steps=100)
    result = train(parse_params(TrainParams, params), lambda kind, payload: events.append((kind, payload)), threading.Event())
    assert result["status"] == "completed"
    logs = [payload["message"] for kind, payload in events if kind == "log"]
    rows = len(resumes())
    assert f"{rows} of {rows} prompts cut to fit --max-seq-length 160: the middle of each removed (marked …), its start and end kept" in logs
    assert not any("dropped" in line for line in logs), logs
    assert result["metrics"]["prompts_cut"] == rows and result["metrics"]["answers_truncated"] == 0


@pytest.mark.parametrize(
    "template, trailing",
    [
        # ChatML's shape: the end-of-turn (here the EOS itself) and a newline after it, which is not trained.
        (None, "\n"),
        # A template whose turns end with a newline only: the EOS is added after the answer. (Its generation prompt
        # ends with a newline: one ending with a space would merge with the answer's first token, and the row's
        # prompt would not be the one generation sends; TRL warns of that.)
        ("{% for message in messages %}{{ message['role'] + ':\\n' + message['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant:\\n' }}{% endif %}", None),
    ],
)
def test_a_chat_templated_training_row_ends_with_eos_inside_the_loss(tiny_chat_model, pairs, tmp_path, template, trailing):
    """The row TRL trains on (after its own label building, truncation and filtering): the prompt exactly as
    generation renders it, then the answer, then the EOS token generation stops at, with a label."""
    from ats_lora_worker import training
    from ats_lora_worker.modeling import choose_quantization, read_model_config
    from ats_lora_worker.recipes import RECIPES

    model = tiny_chat_model
    if template is not None:
        import shutil

        model = tmp_path / "model"
        shutil.copytree(tiny_chat_model, model)
        tokenizer = tokenizer_of(model)
        tokenizer.chat_template = template
        tokenizer.save_pretrained(model)
    tokenizer = tokenizer_of(model)
    prompt, answer = SCORES[0][0] + "\nAnswer:\n", SCORES[0][1]
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], tokenize=True, return_dict=True
    )["input_ids"]
    if trailing is not None:
        # The template itself writes something after the end-of-turn: the row must not end there.
        assert rendered[-1] != tokenizer.eos_token_id and tokenizer.decode(rendered[-1:]) == trailing
    else:
        assert tokenizer.eos_token_id not in rendered

    params = parse_params(TrainParams, train_params(model, pairs, tmp_path / "out", max_steps=1))
    config = read_model_config(str(model))
    quantization = choose_quantization("none", "cpu", "float32", config)
    inputs, _, _ = training._trainer_inputs(
        params, str(model), training._pairs_files(params), config, "cpu", quantization, tmp_path / "out" / "checkpoints", lambda *_: None, callbacks=[]
    )
    trainer = RECIPES["sft"](inputs)
    row = trainer.train_dataset[0]
    ids, labels = row["input_ids"], row["labels"]
    assert ids[-1] == tokenizer.eos_token_id and labels[-1] == tokenizer.eos_token_id
    first = next(index for index, label in enumerate(labels) if label != -100)
    assert tokenizer.decode(ids[:first]) == format_prompt(tokenizer, prompt)
    assert labels[first:] == ids[first:]
    assert tokenizer.decode(ids[first:-1]).strip() == answer
