"""Training for real on a tiny model: SFT learns and stops with EOS, DPO and KTO run, 4-bit where
bitsandbytes can, cancel and resume reach the same step, and bad input fails clearly."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import SCORES, train_params

from ats_lora_worker.contracts.protocol import parse_params
from ats_lora_worker.contracts.protocol_types import GenerateParams, MergeParams, ScoreParams, TrainParams
from ats_lora_worker.errors import BadInput, WorkerError
from ats_lora_worker.modeling import bitsandbytes_support
from ats_lora_worker.training import train


def run(params: dict, cancel_at: int | None = None) -> tuple[dict, list[tuple[str, dict]]]:
    events: list[tuple[str, dict]] = []
    cancel = threading.Event()

    def emit(kind: str, payload: dict) -> None:
        events.append((kind, payload))
        if cancel_at is not None and kind == "progress" and payload.get("step") == cancel_at:
            cancel.set()

    return train(parse_params(TrainParams, params), emit, cancel), events


def test_sft_learns_and_the_adapter_loads_with_plain_peft_and_stops_at_eos(tiny_model, pairs, tmp_path):
    output = tmp_path / "sft"
    result, events = run(train_params(tiny_model, pairs, output, max_steps=60))
    assert result["status"] == "completed"
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["steps"] == 60
    assert metrics["train_loss_last"] < metrics["train_loss_first"]
    assert metrics["eval_loss"] is not None and metrics["tokens"] > 0 and metrics["tokens_per_second"] > 0
    for name in ["adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "training_args.json", "loss_curve.jsonl"]:
        assert (output / name).exists(), name
    progress = [payload for kind, payload in events if kind == "progress"]
    assert progress[-1]["step"] == 60 and progress[-1]["total"] == 60
    assert any(kind == "checkpoint" for kind, _ in events)

    # Any PEFT-aware tool loads it: plain transformers + PeftModel, nothing of ats-lora.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(output)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), output).eval()
    prompt, answer = SCORES[0]
    inputs = tokenizer(prompt + "\nAnswer:\n", return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=40, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    new_tokens = generated[0][inputs["input_ids"].shape[1] :].tolist()
    assert tokenizer.eos_token_id in new_tokens, tokenizer.decode(new_tokens)
    assert new_tokens[-1] == tokenizer.eos_token_id
    # It learned the answers' shape in 60 steps (the exact figures need more; 40 were enough for some tiny models, not all).
    assert "match_score" in tokenizer.decode(new_tokens, skip_special_tokens=True), answer

    # The worker's own inference methods on the same adapter: generate, score and merge.
    from ats_lora_worker.inference import generate, merge, score

    cancel = threading.Event()
    answered = generate(parse_params(GenerateParams, {"model": str(output), "prompts": [prompt + "\nAnswer:\n"], "max_new_tokens": 40, "temperature": 0, "seed": 1}), lambda *_: None, cancel)
    assert answered["outputs"][0]["ended_with_eos"] is True
    assert "match_score" in answered["outputs"][0]["text"]
    # Batched answers are the one-at-a-time answers, where answers in a batch end at different steps (the shorter
    # ones padded on while the others go on).
    mixed = [p + "\nAnswer:\n" for p, _ in SCORES[:3]] + ["Skills:", "# README\n"]

    def answers(batch_size: int) -> list[tuple]:
        request = {"model": str(output), "prompts": mixed, "max_new_tokens": 40, "temperature": 0, "seed": 1, "batch_size": batch_size}
        outputs = generate(parse_params(GenerateParams, request), lambda *_: None, cancel)["outputs"]
        return [(o["text"], o["tokens"], o["ended_with_eos"]) for o in outputs]

    single = answers(1)
    assert answers(3) == single
    assert len({tokens for _, tokens, _ in single}) > 1, single
    scored = score(parse_params(ScoreParams, {"model": str(output), "prompts": [p + "\nAnswer:\n" for p, _ in SCORES[:2]], "references": [a for _, a in SCORES[:2]]}), lambda *_: None, cancel)
    base_scored = score(parse_params(ScoreParams, {"model": str(tiny_model), "prompts": [p + "\nAnswer:\n" for p, _ in SCORES[:2]], "references": [a for _, a in SCORES[:2]]}), lambda *_: None, cancel)
    assert all(tuned < base for tuned, base in zip(scored["losses"], base_scored["losses"]))
    merged = merge(parse_params(MergeParams, {"adapter": str(output), "output_dir": str(tmp_path / "merged")}))
    plain = AutoModelForCausalLM.from_pretrained(merged["output_dir"]).eval()
    with torch.no_grad():
        again = plain.generate(**inputs, max_new_tokens=40, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    # The merged plain model answers as the adapter did.
    assert again[0][inputs["input_ids"].shape[1] :].tolist() == new_tokens


@pytest.mark.parametrize("fmt", ["dpo", "kto"])
def test_preference_formats_train(tiny_model, pairs, tmp_path, fmt):
    output = tmp_path / fmt
    result, _ = run(train_params(tiny_model, pairs, output, format=fmt, max_steps=6, learning_rate=1e-4, batch_size=2))
    assert result["status"] == "completed"
    assert result["metrics"]["steps"] == 6
    assert (output / "adapter_model.safetensors").exists()


def test_cancel_saves_a_checkpoint_and_resume_reaches_the_same_step(tiny_model, pairs, tmp_path):
    output = tmp_path / "resumed"
    params = train_params(tiny_model, pairs, output, max_steps=12, save_steps=100)
    first, _ = run(params, cancel_at=4)
    assert first["status"] == "cancelled"
    assert first["step"] == 4 and first["total"] == 12
    assert first["checkpoint"].endswith("checkpoint-4")
    assert not (output / "adapter_model.safetensors").exists()
    second, events = run({**params, "resume": True})
    assert second["status"] == "completed"
    assert second["metrics"]["steps"] == 12
    assert second["metrics"]["resumed_from"].endswith("checkpoint-4")
    # Optimizer and scheduler state came back: training went on from step 5.
    steps = [payload["step"] for kind, payload in events if kind == "progress"]
    assert steps[0] == 4 and steps[1] == 5 and steps[-1] == 12


def test_four_bit_where_bitsandbytes_supports_the_cpu(tiny_model, pairs, tmp_path):
    support = bitsandbytes_support()
    params = train_params(tiny_model, pairs, tmp_path / "q4", quantization="4bit", max_steps=4, compute_dtype="bfloat16")
    if "cpu" not in support["devices"]:
        with pytest.raises(WorkerError, match="needs bitsandbytes on cpu"):
            run(params)
        return
    result, events = run(params)
    assert result["metrics"]["quantization"] == "4bit"
    assert any("quantization: 4-bit QLoRA" in payload.get("message", "") for kind, payload in events if kind == "log")
    assert (tmp_path / "q4" / "adapter_model.safetensors").exists()


def test_cpu_4bit_layers_keep_their_gradients_after_an_evaluation(tiny_model):
    """The worker measures the loss before the first step (eval mode, no gradients). bitsandbytes then repacked CPU
    4-bit weights for inference, and a repacked layer computes through a kernel with no backward: gradients stopped
    at every 4-bit layer and training stalled (measured: loss 6.28 → 6.31 where full precision reached 6.17)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from ats_lora_worker.modeling import QuantizationChoice, load_model

    if "cpu" not in bitsandbytes_support()["devices"]:
        pytest.skip("this bitsandbytes has no CPU support")  # the test above covers the refusal
    ids = torch.tensor([[5, 17, 42, 99, 7, 300, 12, 64]])

    def first_layer_gradient(evaluate_first: bool) -> torch.Tensor:
        model = load_model(str(tiny_model), "mistral", QuantizationChoice("4bit", "test", "float32"), "cpu", False, quant_type="nf4", double_quant=True)
        torch.manual_seed(0)
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights="gaussian"))
        if evaluate_first:
            model.eval()
            with torch.no_grad():
                model(input_ids=ids, labels=ids)
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
        gradient = next(p.grad for name, p in model.named_parameters() if "layers.0.self_attn.q_proj.lora_B" in name)
        assert gradient is not None, "no gradient reached the first layer's LoRA weights"
        return gradient.clone()

    assert torch.allclose(first_layer_gradient(True), first_layer_gradient(False), rtol=1e-4, atol=1e-7)


def test_cpu_4bit_needs_layer_sizes_in_multiples_of_64():
    from ats_lora_worker.modeling import choose_quantization, cpu_4bit_misfit

    mistral = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8}
    assert cpu_4bit_misfit(mistral) is None
    odd = {**mistral, "intermediate_size": 688}
    assert "intermediate_size is 688" in cpu_4bit_misfit(odd)
    if "cpu" in bitsandbytes_support()["devices"]:
        choice = choose_quantization("auto", "cpu", "float32", odd)
        assert choice.mode == "none" and "multiples of 64" in choice.reason
        with pytest.raises(WorkerError, match="cannot run on the CPU for this model"):
            choose_quantization("4bit", "cpu", "float32", odd)


def test_bad_input_is_named(tiny_model, pairs, tmp_path):
    with pytest.raises(BadInput, match="no such folder"):
        run(train_params(Path("/nonexistent/model"), pairs, tmp_path / "x"))
    with pytest.raises(BadInput, match="no config.json"):
        run(train_params(tmp_path, pairs, tmp_path / "y"))
    with pytest.raises(BadInput, match="no sft training rows"):
        run(train_params(tiny_model, tmp_path / "empty", tmp_path / "z"))
    with pytest.raises(BadInput, match="target modules c_attn do not exist in this mistral model"):
        run(train_params(tiny_model, pairs, tmp_path / "w", target_modules=["c_attn"]))
    with pytest.raises(BadInput, match="no checkpoint"):
        run(train_params(tiny_model, pairs, tmp_path / "v", resume=True))


def test_top_layers_puts_adapters_on_the_last_layers_only(tiny_model, pairs, tmp_path):
    layers = json.loads((tiny_model / "config.json").read_text())["num_hidden_layers"]
    output = tmp_path / "top"
    run(train_params(tiny_model, pairs, output, max_steps=2, lora_top_layers=1))
    assert json.loads((output / "adapter_config.json").read_text())["layers_to_transform"] == [layers - 1]
    from safetensors import safe_open

    with safe_open(str(output / "adapter_model.safetensors"), "pt") as weights:
        adapted = {int(name.split(".layers.")[1].split(".")[0]) for name in weights.keys()}
    assert adapted == {layers - 1}
    with pytest.raises(BadInput, match=f"lora.top_layers is {layers + 1}, and this model has {layers} layers"):
        run(train_params(tiny_model, pairs, tmp_path / "over", lora_top_layers=layers + 1))


def test_hybrid_regression_loss_records_both_terms_and_moves_the_number(tiny_model, pairs, tmp_path):
    output = tmp_path / "hybrid"
    regression = {"field": "match_score", "weight": 2.0, "loss": "mse"}
    result, _ = run(train_params(tiny_model, pairs, output, max_steps=30, regression=regression))
    terms = result["metrics"]["regression"]
    assert terms["field"] == "match_score" and terms["rows_with_number"] == terms["rows"] > 0
    assert terms["lm_loss"] > 0 and terms["regression_loss"] > 0
    curve = [json.loads(line) for line in (output / "loss_curve.jsonl").read_text().splitlines()]
    logged = [entry for entry in curve if "regression_loss" in entry]
    assert len(logged) >= 5
    # Both terms are recorded, and the regression term falls as the model learns the scores.
    assert logged[-1]["regression_loss"] < logged[0]["regression_loss"]
    for entry in logged:
        assert abs(entry["loss"] - (entry["lm_loss"] + 2.0 * entry["regression_loss"])) < 0.05 * entry["loss"] + 1e-3


def test_number_positions_follow_the_digits():
    from conftest import WORKER  # noqa: F401 - makes the worker importable
    from transformers import AutoTokenizer

    from ats_lora_worker.regression import _number_positions
    import re

    class Digits:
        """A stand-in vocabulary of single characters, enough to check the place values."""

        def decode(self, ids):
            return "".join(chr(i) for i in ids)

    text = '{"match_score": 0.72}'
    ids = [-100, -100] + [ord(c) for c in text]
    digit_ids = [ord(d) for d in "0123456789"]
    positions, places, sign, target = _number_positions(Digits(), ids, re.compile(r'"match_score"\s*:\s*(-?)(\d+)(?:\.(\d+))?'), digit_ids)
    assert target == 0.72 and sign == 1.0
    assert places == [0, -1, -2]
    assert [chr(ids[p]) for p in positions] == ["0", "7", "2"]
    del AutoTokenizer


@pytest.mark.parametrize(
    "model_type",
    ["mistral", "llama", "qwen2", "phi3", "gpt2", "t5"],
)
def test_target_modules_detected_per_architecture_exist_in_the_model(model_type):
    """The detected LoRA targets name real layers of each seed architecture (tiny random configs, no download)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from ats_lora_worker.modeling import SEQ2SEQ_TYPES, check_target_modules, detect_target_modules

    sizes = {"mistral": {}, "llama": {}, "qwen2": {}, "phi3": {"pad_token_id": 0}, "gpt2": {"n_embd": 64, "n_layer": 1, "n_head": 2},
             "t5": {"d_model": 64, "d_ff": 128, "num_layers": 1, "num_heads": 2, "d_kv": 32}}
    common = {} if model_type in {"gpt2", "t5"} else {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2}
    config = AutoConfig.for_model(model_type, vocab_size=128, **common, **sizes[model_type])
    auto = AutoModelForSeq2SeqLM if model_type in SEQ2SEQ_TYPES else AutoModelForCausalLM
    model = auto.from_config(config)
    check_target_modules(model, detect_target_modules(model_type), model_type)


def _cut_off(checkpoint: Path, how: str) -> None:
    """What a worker killed while transformers saved this checkpoint leaves behind."""
    if how == "before_the_weights":
        # The folder and the adapter's config exist; the weights were never written.
        for entry in checkpoint.iterdir():
            if entry.name != "adapter_config.json":
                entry.unlink()
    else:
        # The weights half written, the trainer's state (written last) missing.
        weights = checkpoint / "adapter_model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        for name in ("trainer_state.json", "ats_lora_checkpoint.json", "rng_state.pth"):
            (checkpoint / name).unlink(missing_ok=True)


@pytest.mark.parametrize("how", ["before_the_weights", "during_the_weights"])
def test_resume_takes_the_newest_complete_checkpoint_when_the_last_save_was_cut_off(tiny_model, pairs, tmp_path, how):
    output = tmp_path / "cut"
    params = train_params(tiny_model, pairs, output, max_steps=8, save_steps=2)
    first, _ = run(params, cancel_at=4)
    assert first["status"] == "cancelled" and first["checkpoint"].endswith("checkpoint-4")
    checkpoints = output / "checkpoints"
    _cut_off(checkpoints / "checkpoint-4", how)

    second, events = run({**params, "resume": True})
    assert second["status"] == "completed" and second["metrics"]["steps"] == 8
    assert second["metrics"]["resumed_from"].endswith("checkpoint-2")
    logs = [payload["message"] for kind, payload in events if kind == "log"]
    assert any("skipped checkpoint-4: incomplete" in line and "moved aside" in line for line in logs), logs
    assert any(line.startswith("--resume: resuming from") and "checkpoint-2 (the newest complete" in line for line in logs), logs
    assert (checkpoints / "incomplete-checkpoint-4").is_dir()
    steps = [payload["step"] for kind, payload in events if kind == "progress"]
    assert steps[0] == 2 and steps[1] == 3 and steps[-1] == 8
    # Every checkpoint the worker finished saving carries the completeness marker.
    assert (checkpoints / "checkpoint-8" / "ats_lora_checkpoint.json").exists()


def test_resume_with_no_complete_checkpoint_says_so(tiny_model, pairs, tmp_path):
    output = tmp_path / "none"
    params = train_params(tiny_model, pairs, output, max_steps=6, save_steps=100)
    first, _ = run(params, cancel_at=2)
    assert first["checkpoint"].endswith("checkpoint-2")
    _cut_off(output / "checkpoints" / "checkpoint-2", "before_the_weights")
    with pytest.raises(BadInput, match=r"no complete checkpoint in .*checkpoints \(checkpoint-2 cut off while saving\)"):
        run({**params, "resume": True})


def test_max_seq_length_beyond_the_models_positions_is_refused(tiny_model, pairs, tmp_path):
    # The tiny model has 2048 positions (max_position_embeddings).
    with pytest.raises(BadInput, match=r"--max-seq-length 4096 is more than the 2048 positions of the model .*max_position_embeddings") as caught:
        run(train_params(tiny_model, pairs, tmp_path / "long", max_seq_length=4096, max_steps=1))
    assert "--max-seq-length 2048 or less" in caught.value.hint
    from ats_lora_worker.modeling import position_limit

    assert position_limit({"model_type": "gpt2", "n_positions": 1024}) == ("n_positions", 1024)
    # T5's relative positions have no fixed table (its n_positions is a hint only).
    assert position_limit({"model_type": "t5", "is_encoder_decoder": True, "n_positions": 512}) is None


def test_validation_loss_at_each_epochs_end_and_where_max_steps_ends_inside_one(tiny_model, pairs, tmp_path):
    # 8 rows in batches of 4: two steps an epoch, so 5 steps end inside the third epoch.
    result, events = run(train_params(tiny_model, pairs, tmp_path / "val", max_steps=5, save_steps=100))
    metrics = result["metrics"]
    history = metrics["val_loss_by_epoch"]
    assert [(entry["epoch"], entry["step"]) for entry in history] == [(1.0, 2), (2.0, 4), (2.5, 5)]
    logs = [payload["message"] for kind, payload in events if kind == "log"]
    for entry in history:
        assert any(line.startswith(f"epoch {entry['epoch']:g} (step {entry['step']}): validation loss {entry['loss']:.4f}") for line in logs), logs
    assert metrics["eval_loss"] == history[-1]["loss"] and metrics["adapter_step"] == 5 and metrics["stopped_early"] is False
    assert metrics["best_epoch"] == min(history, key=lambda entry: entry["loss"])
    # The evaluations are in the loss curve too, and none was run twice at the end.
    curve = [json.loads(line) for line in (tmp_path / "val" / "loss_curve.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in curve if "eval_loss" in entry] == [2, 4, 5]
    # The before/after sample is bounded by the run: 15% of 5 steps × 4 rows.
    assert metrics["train_loss_sample_rows"] == 3


def test_the_loss_sample_costs_at_most_a_tenth_of_the_run():
    from ats_lora_worker.training import SAMPLE_ROWS, loss_sample_rows

    def params(**overrides) -> TrainParams:
        return parse_params(TrainParams, {**train_params(Path("m"), Path("d"), Path("o")), **overrides})

    # The measured case: 40 steps of 2 rows trained 80 rows; 64 long rows were measured twice before and after.
    assert loss_sample_rows(253, params(max_steps=40, batch_size=2, grad_accum=1)) == 12
    assert loss_sample_rows(253, params(max_steps=1000, batch_size=4, grad_accum=4)) == SAMPLE_ROWS
    assert loss_sample_rows(5, params(max_steps=1000)) == 5
    assert loss_sample_rows(253, params(max_steps=1, batch_size=1, grad_accum=1)) == 1
    # Without max_steps the epochs decide: 2 epochs of 100 rows in steps of 4 × 2 = 26 steps of 8 rows.
    assert loss_sample_rows(100, params(max_steps=-1, epochs=2, batch_size=4, grad_accum=2)) == 31
    for rows, steps, batch, accum in [(253, 40, 2, 1), (1000, 7, 3, 2), (10, 3, 1, 1)]:
        n = loss_sample_rows(rows, params(max_steps=steps, batch_size=batch, grad_accum=accum))
        # Two forward passes over n rows, each a third of a step's cost per row, against the rows the run trains.
        assert n == 1 or 2 * n / 3 <= 0.1 * steps * batch * accum


@pytest.fixture(scope="module")
def diverging_pairs(tmp_path_factory) -> Path:
    """Validation answers that contradict the training answers: the more training learns, the worse the
    validation loss, from the first epoch on."""
    folder = tmp_path_factory.mktemp("diverging")
    from conftest import write_split

    write_split(folder, "sft", "train", [{"prompt": prompt + "\nAnswer:\n", "completion": answer} for prompt, answer in SCORES])
    write_split(folder, "sft", "val", [{"prompt": prompt + "\nAnswer:\n", "completion": "I cannot score this resume."} for prompt, _ in SCORES[:4]])
    return folder


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_early_stopping_stops_and_saves_the_best_epochs_adapter(tiny_model, diverging_pairs, tmp_path):
    import torch

    output = tmp_path / "early"
    result, events = run(train_params(tiny_model, diverging_pairs, output, max_steps=40, save_steps=2, early_stopping_patience=2))
    metrics = result["metrics"]
    history, best = metrics["val_loss_by_epoch"], metrics["best_epoch"]
    assert metrics["stopped_early"] is True and metrics["steps"] < 40
    # Stopped after two evaluations without improvement; the adapter saved is the best one's.
    assert history[-3] == best and all(entry["loss"] >= best["loss"] for entry in history[-2:])
    assert metrics["adapter_step"] == best["step"] < metrics["steps"] and metrics["eval_loss"] == best["loss"]
    logs = [payload["message"] for kind, payload in events if kind == "log"]
    assert any(line.startswith("early stopping: no better validation loss in 2 evaluations") for line in logs), logs
    assert f"the adapter saved is epoch {best['epoch']:g}'s (step {best['step']}, validation loss {best['loss']:.4f}), the best of {len(history)} evaluations; the run stopped at step {metrics['steps']}" in logs
    saved, kept = _weights(output), _weights(output / "checkpoints" / "best-epoch")
    last = _weights(output / "checkpoints" / f"checkpoint-{metrics['steps']}")
    assert saved.keys() == kept.keys() == last.keys()
    assert all(torch.equal(saved[name], kept[name]) for name in saved)
    assert not all(torch.equal(saved[name], last[name]) for name in saved)
    # Checkpoints went on every save_steps all the same.
    assert (output / "checkpoints" / f"checkpoint-{metrics['steps']}").is_dir()


def test_early_stopping_carries_across_cancel_and_resume(tiny_model, diverging_pairs, tmp_path):
    params = train_params(tiny_model, diverging_pairs, tmp_path / "whole", max_steps=40, save_steps=100, early_stopping_patience=2)
    whole, _ = run(params)
    stopped_at = whole["metrics"]["steps"]
    assert whole["metrics"]["stopped_early"] is True
    # Cancelled one step before early stopping would end it (after the best epoch), then resumed.
    interrupted = {**params, "output_dir": str(tmp_path / "resumed")}
    first, _ = run(interrupted, cancel_at=stopped_at - 1)
    assert first["status"] == "cancelled" and first["step"] == stopped_at - 1
    second, events = run({**interrupted, "resume": True})
    metrics = second["metrics"]
    assert metrics["stopped_early"] is True and metrics["steps"] == stopped_at
    assert [(e["epoch"], e["step"]) for e in metrics["val_loss_by_epoch"]] == [(e["epoch"], e["step"]) for e in whole["metrics"]["val_loss_by_epoch"]]
    for resumed, straight in zip(metrics["val_loss_by_epoch"], whole["metrics"]["val_loss_by_epoch"], strict=True):
        assert resumed["loss"] == pytest.approx(straight["loss"], rel=1e-3)
    assert metrics["adapter_step"] == whole["metrics"]["adapter_step"]
    assert metrics["eval_loss"] == pytest.approx(whole["metrics"]["eval_loss"], rel=1e-3)


def test_the_answer_positions_loss_and_gradients_equal_trls(tiny_model, tmp_path):
    """On a CPU the SFT trainer projects only the answer positions through the LM head; the loss and the LoRA
    gradients must be what TRL's own loss (every position projected) gives, on a padded batch of unequal rows."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from ats_lora_worker.recipes.sft import AnswerPositionsSFTTrainer, _answer_positions_apply

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    rows = Dataset.from_list([{"prompt": prompt + "\nAnswer:\n", "completion": answer} for prompt, answer in SCORES[:4]])
    arguments = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, completion_only_loss=True, use_cpu=True, report_to=[], seed=1)
    trainer = AnswerPositionsSFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model),
        args=arguments,
        train_dataset=rows,
        processing_class=tokenizer,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False),
    )
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    lengths = batch["attention_mask"].sum(dim=1)
    assert lengths.min() < lengths.max(), "the batch should hold rows of unequal lengths"
    answer_tokens = int((batch["labels"][:, 1:] != -100).sum())
    assert 0 < answer_tokens < batch["labels"].numel() / 2, "most positions should be prompt"
    assert _answer_positions_apply(trainer, batch), "the answer positions' loss should apply on a CPU"

    def loss_and_gradients(compute) -> tuple[float, dict]:
        trainer.model.zero_grad()
        loss = compute(trainer, trainer.model, dict(batch), num_items_in_batch=answer_tokens)
        loss.backward()
        return loss.item(), {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.requires_grad}

    ours, our_gradients = loss_and_gradients(AnswerPositionsSFTTrainer.compute_loss)
    theirs, their_gradients = loss_and_gradients(SFTTrainer.compute_loss)
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert our_gradients.keys() == their_gradients.keys() and our_gradients
    for name, gradient in our_gradients.items():
        assert torch.allclose(gradient, their_gradients[name], rtol=1e-4, atol=1e-7), name


def test_lm_head_positions_chooses_the_loss_and_both_train_alike(tiny_model, pairs, tmp_path):
    """training.lm_head_positions reaches the trainer: "all" is TRL's loss (which also logs the entropy over every
    position), "answers" the answer positions' only; the runs' logged losses agree."""
    curves = {}
    for positions in ("answers", "all"):
        output = tmp_path / positions
        run(train_params(tiny_model, pairs, output, max_steps=4, logging_steps=1, save_steps=100, lm_head_positions=positions))
        curves[positions] = [json.loads(line) for line in (output / "loss_curve.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(curves["answers"]) == len(curves["all"]) == 4
    assert all("entropy" in entry for entry in curves["all"]) and not any("entropy" in entry for entry in curves["answers"])
    for ours, theirs in zip(curves["answers"], curves["all"]):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-3)
