"""Encoder–decoder models (FLAN-T5 and kin): the prompt is the encoder's input and the answer the decoder's, in
training, generation and scoring alike. A tiny T5 made from a config (no download) trains, generates and scores."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import SCORES, train_params

from ats_lora_worker.contracts.protocol import parse_params
from ats_lora_worker.contracts.protocol_types import GenerateParams, ScoreParams, TrainParams
from ats_lora_worker.errors import BadInput
from ats_lora_worker.training import train

PROMPTS = [prompt + "\nAnswer:\n" for prompt, _ in SCORES]
ANSWERS = [answer for _, answer in SCORES]


def quiet(*_):
    return None


def test_encoder_decoder_trains_generates_and_scores(tiny_t5, pairs, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from ats_lora_worker.inference import generate, release_inference_model, score

    output = tmp_path / "t5"
    cancel = threading.Event()
    result = train(parse_params(TrainParams, train_params(tiny_t5, pairs, output, max_steps=20, learning_rate=3e-3, save_steps=10)), quiet, cancel)
    assert result["status"] == "completed"
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["steps"] == 20
    # It learned from the answers as the decoder's labels: the loss on the training rows fell.
    assert metrics["train_loss_last"] < metrics["train_loss_first"]
    assert json.loads((output / "adapter_config.json").read_text())["task_type"] == "SEQ_2_SEQ_LM"

    # generate answers with the decoder's output, not the output cut at the prompt's length.
    tokenizer = AutoTokenizer.from_pretrained(output)
    model = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(tiny_t5), output).eval()
    inputs = tokenizer(PROMPTS[0], return_tensors="pt")
    assert inputs["input_ids"].shape[1] > 12  # a prompt longer than the answer, as the cut assumed
    with torch.no_grad():
        decoded = model.generate(**inputs, max_new_tokens=12, do_sample=False)[0].tolist()
    assert decoded[0] == model.config.decoder_start_token_id
    expected = decoded[1:]
    answered = generate(parse_params(GenerateParams, {"model": str(output), "prompts": [PROMPTS[0]], "max_new_tokens": 12, "temperature": 0, "seed": 1}), quiet, cancel)
    out = answered["outputs"][0]
    assert out["tokens"] == len(expected) > 0
    assert out["text"] == tokenizer.decode(expected, skip_special_tokens=True)
    assert out["ended_with_eos"] == (expected[-1] == tokenizer.eos_token_id)

    # score: the prompt to the encoder, the reference (with EOS) as the decoder's labels.
    scored = score(parse_params(ScoreParams, {"model": str(output), "prompts": PROMPTS[:2], "references": ANSWERS[:2]}), quiet, cancel)
    for prompt, answer, loss, count in zip(PROMPTS[:2], ANSWERS[:2], scored["losses"], scored["tokens"], strict=True):
        labels = tokenizer(text_target=answer, return_tensors="pt")["input_ids"]
        assert labels[0, -1].item() == tokenizer.eos_token_id
        with torch.no_grad():
            reference = model(input_ids=tokenizer(prompt, return_tensors="pt")["input_ids"], labels=labels).loss.item()
        assert loss == pytest.approx(reference, rel=1e-4)
        assert count == labels.shape[1]
    base = score(parse_params(ScoreParams, {"model": str(tiny_t5), "prompts": PROMPTS[:2], "references": ANSWERS[:2]}), quiet, cancel)
    assert all(tuned < untuned for tuned, untuned in zip(scored["losses"], base["losses"], strict=True))
    release_inference_model()


def test_encoder_decoder_hybrid_regression_loss_reads_the_decoders_digits(tiny_t5, pairs, tmp_path):
    regression = {"field": "match_score", "weight": 2.0, "loss": "mse"}
    result = train(parse_params(TrainParams, train_params(tiny_t5, pairs, tmp_path / "t5-hybrid", max_steps=4, regression=regression)), quiet, threading.Event())
    terms = result["metrics"]["regression"]
    assert terms["rows_with_number"] == terms["rows"] > 0
    assert terms["regression_loss"] > 0


@pytest.mark.parametrize("fmt", ["dpo", "kto"])
def test_encoder_decoder_preference_training_is_refused_clearly(tiny_t5, pairs, tmp_path, fmt):
    with pytest.raises(BadInput, match=rf"--format {fmt} is not supported for the encoder–decoder model \(t5\)"):
        train(parse_params(TrainParams, train_params(tiny_t5, pairs, tmp_path / fmt, format=fmt, max_steps=2)), quiet, threading.Event())
