"""Fine-tuning with the maintained libraries: TRL's SFT, DPO and KTO trainers over a PEFT LoRA adapter,
bitsandbytes quantization where chosen. Streams progress and checkpoint events, stops cleanly on cancel
(saving a checkpoint), and resumes from the last checkpoint with optimizer and scheduler state."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# This module is imported only when a training job starts (server.py imports it lazily), so the heavy
# libraries load here at the top rather than inside each function.
from transformers import TrainerCallback

from .checkpoints import mark_complete, newest_complete, set_aside
from .errors import BadInput
from .modeling import (
    check_target_modules,
    choose_quantization,
    detect_target_modules,
    is_seq2seq,
    load_model,
    load_tokenizer,
    position_limit,
    read_model_config,
    seq2seq_answer_ids,
)

Emit = Callable[[str, dict[str, Any]], None]

COLUMNS = {"sft": ["prompt", "completion"], "dpo": ["prompt", "chosen", "rejected"], "kto": ["prompt", "completion", "label"]}
CHECKPOINTS = "checkpoints"
SAMPLE_ROWS = 64


def train(params: dict[str, Any], emit: Emit, cancel: threading.Event) -> dict[str, Any]:
    import torch
    from datasets import load_dataset
    from peft import LoraConfig, TaskType
    from transformers import set_seed

    started = time.monotonic()
    fmt = params["format"]
    data_dir = Path(params["data_dir"])
    output_dir = Path(params["output_dir"])
    checkpoints = output_dir / CHECKPOINTS
    set_seed(params["seed"])

    if params.get("regression") and fmt != "sft":
        raise BadInput(
            f"the hybrid regression loss (--regression-field) trains with --format sft, not {fmt}",
            hint="drop --regression-field (training.regression_field) or train with --format sft",
        )
    files = {split: data_dir / fmt / f"{split}.jsonl" for split in ("train", "val")}
    if not files["train"].exists() or files["train"].stat().st_size == 0:
        raise BadInput(f"no {fmt} training rows in {files['train']}", hint="run ats-lora build-db first, or pick another --format")

    model_config = read_model_config(params["base"])
    model_type = model_config.get("model_type", "")
    seq2seq = is_seq2seq(model_config)
    limit = position_limit(model_config)
    if limit is not None and params["max_seq_length"] > limit[1]:
        # Positions past the model's table are not learned (or index out of range): refuse rather than clamp.
        raise BadInput(
            f"--max-seq-length {params['max_seq_length']} is more than the {limit[1]} positions of the model {params['base']}"
            f" ({limit[0]} in its config.json)",
            hint=f"use --max-seq-length {limit[1]} or less (training.max_seq_length)",
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    quantization = choose_quantization(params["quantization"], device, params["compute_dtype"], model_config)
    emit("log", {"message": f"quantization: {quantization.reason}"})
    resume_from = None
    if params.get("resume"):
        resume_from = _resumable_checkpoint(checkpoints, emit)

    tokenizer = load_tokenizer(params["base"])
    model = load_model(
        params["base"],
        model_type,
        quantization,
        device,
        params["gradient_checkpointing"],
        quant_type=params.get("bnb_4bit_quant_type", "nf4"),
        double_quant=params.get("bnb_4bit_double_quant", True),
        seq2seq=seq2seq,
    )
    targets = detect_target_modules(model_type) if params["target_modules"] == "auto" else list(params["target_modules"])
    check_target_modules(model, targets, model_type)
    peft_config = LoraConfig(
        r=params["lora_r"],
        lora_alpha=params["lora_alpha"],
        lora_dropout=params["lora_dropout"],
        target_modules=targets,
        bias=params.get("lora_bias", "none"),
        task_type=TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM,
    )

    data_files = {"train": str(files["train"])}
    if files["val"].exists() and files["val"].stat().st_size > 0:
        data_files["validation"] = str(files["val"])
    dataset = load_dataset("json", data_files=data_files)
    dataset = dataset.select_columns(COLUMNS[fmt])
    conversational = bool(getattr(tokenizer, "chat_template", None))
    if conversational and not seq2seq:
        # The tokenizer's own chat template frames prompt and answer, as the model will be prompted later.
        dataset = dataset.map(lambda row: _as_conversation(row, fmt))

    warmup = params["warmup_steps"]
    if params["max_steps"] > 0 and warmup > params["max_steps"] // 10:
        # A warm-up longer than a tenth of the run would spend most of a short run at a fraction of the rate.
        clamped = max(1, math.ceil(params["max_steps"] * 0.1))
        emit("log", {"message": f"warm-up of {warmup} steps is over 10% of the {params['max_steps']} steps; using {clamped}"})
        warmup = clamped
    common = {
        "output_dir": str(checkpoints),
        "per_device_train_batch_size": params["batch_size"],
        "per_device_eval_batch_size": params["batch_size"],
        "gradient_accumulation_steps": params["grad_accum"],
        "learning_rate": params["learning_rate"],
        "num_train_epochs": params["epochs"],
        "max_steps": params["max_steps"],
        "warmup_steps": warmup,
        "lr_scheduler_type": params["lr_scheduler"],
        "logging_steps": params["logging_steps"],
        "save_steps": params["save_steps"],
        "save_total_limit": 2,
        "seed": params["seed"],
        "gradient_checkpointing": params["gradient_checkpointing"],
        "bf16": device == "cuda" and torch.cuda.is_bf16_supported() and quantization.compute_dtype == "bfloat16",
        "report_to": [],
        "disable_tqdm": True,
        "include_num_input_tokens_seen": "non_padding",
        "use_cpu": device == "cpu",
        "dataloader_pin_memory": device == "cuda",
    }
    if params["gradient_checkpointing"]:
        common["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    progress = ProgressCallback(emit, cancel, started)
    callbacks: list[TrainerCallback] = [progress]
    if seq2seq:
        trainer = _make_seq2seq_trainer(fmt, model, tokenizer, dataset, peft_config, common, params, callbacks, model_type)
    else:
        trainer = _make_trainer(fmt, model, tokenizer, dataset, peft_config, common, params, callbacks)
    kept = len(trainer.train_dataset)
    if kept == 0:
        raise BadInput(
            f"all {len(dataset['train'])} {fmt} training rows were dropped: their prompts fill the {params['max_seq_length']} tokens of"
            " --max-seq-length, leaving no answer to learn from",
            hint="raise --max-seq-length (training.max_seq_length)",
        )
    if kept < len(dataset["train"]):
        emit("log", {"message": f"{len(dataset['train']) - kept} of {len(dataset['train'])} rows dropped: no answer tokens left within --max-seq-length {params['max_seq_length']}"})

    # Learning is judged on the same examples before and after: a fixed sample of the training rows, so the
    # comparison is not blurred by which rows a logging window happened to hold.
    sample = trainer.train_dataset.select(range(min(SAMPLE_ROWS, len(trainer.train_dataset))))
    emit("log", {"message": f"measuring the loss on {len(sample)} training rows before training"})
    loss_before = trainer.evaluate(eval_dataset=sample, metric_key_prefix="train_sample").get("train_sample_loss")
    peak_before = torch.cuda.max_memory_allocated() if device == "cuda" else 0
    result = trainer.train(resume_from_checkpoint=resume_from)
    state = trainer.state
    cancelled = cancel.is_set() and state.global_step < state.max_steps
    if cancelled:
        newest, _ = newest_complete(checkpoints)
        last = str(newest) if newest else None
        return {"status": "cancelled", "step": state.global_step, "total": state.max_steps, "checkpoint": last}

    loss_after = trainer.evaluate(eval_dataset=sample, metric_key_prefix="train_sample").get("train_sample_loss")
    eval_loss = None
    if "validation" in dataset:
        emit("log", {"message": "evaluating on the validation split"})
        eval_loss = trainer.evaluate().get("eval_loss")
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    wall = time.monotonic() - started
    tokens = int(state.num_input_tokens_seen or 0)
    train_seconds = result.metrics.get("train_runtime") or wall
    metrics = {
        "format": fmt,
        "base": params["base"],
        "quantization": quantization.mode,
        "quantization_reason": quantization.reason,
        "device": device,
        "steps": state.global_step,
        "epochs": round(state.epoch or 0, 4),
        "train_loss": result.metrics.get("train_loss"),
        # The same fixed sample of training rows, before this run's first step and after its last.
        "train_loss_first": loss_before,
        "train_loss_last": loss_after,
        "train_loss_sample_rows": len(sample),
        "logged_loss_first": losses[0] if losses else None,
        "logged_loss_last": losses[-1] if losses else None,
        "eval_loss": eval_loss,
        "tokens": tokens,
        "tokens_per_second": round(tokens / train_seconds, 1) if train_seconds else None,
        "peak_memory_bytes": (torch.cuda.max_memory_allocated() - peak_before) if device == "cuda" else _peak_rss_bytes(),
        "peak_memory_kind": "cuda_allocated" if device == "cuda" else "process_max_rss",
        "wall_seconds": round(wall, 2),
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "resumed_from": resume_from,
    }
    terms = getattr(trainer, "regression_terms", None)
    if terms is not None:
        totals = terms.totals
        batches = max(1, int(totals["batches"]))
        metrics["regression"] = {
            **params["regression"],
            "lm_loss": totals["lm"] / batches,
            "regression_loss": totals["regression"] / batches,
            "rows_with_number": int(totals["rows_with_number"]),
            "rows": int(totals["rows"]),
        }
        if totals["rows_with_number"] == 0:
            emit("log", {"message": f"regression: no answer held a number in the field {params['regression']['field']!r}; only the LM loss trained"})
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (output_dir / "training_args.json").write_text(json.dumps({**params, "target_modules": targets, "quantization_resolved": quantization.mode}, indent=2) + "\n")
    with (output_dir / "loss_curve.jsonl").open("w") as handle:
        for entry in state.log_history:
            handle.write(json.dumps(entry) + "\n")
    return {"status": "completed", "metrics": metrics, "output_dir": str(output_dir)}


def _resumable_checkpoint(checkpoints: Path, emit: Emit) -> str:
    """The newest complete checkpoint; incomplete ones (a worker killed while saving) are moved aside and named."""
    chosen, incomplete = newest_complete(checkpoints)
    for folder, reason in incomplete:
        moved = set_aside(folder)
        emit("log", {"message": f"--resume: skipped {folder.name}: incomplete, {reason}; moved aside to {moved}"})
    if chosen is None:
        what = f"no complete checkpoint in {checkpoints} ({', '.join(folder.name for folder, _ in incomplete)} cut off while saving)" if incomplete else f"no checkpoint in {checkpoints}"
        raise BadInput(
            f"--resume: {what}",
            hint="start the run again without --resume (--overwrite to reuse this output folder)",
        )
    emit("log", {"message": f"--resume: resuming from {chosen} (the newest complete checkpoint)"})
    return str(chosen)


def _as_conversation(row: dict[str, Any], fmt: str) -> dict[str, Any]:
    out: dict[str, Any] = {"prompt": [{"role": "user", "content": row["prompt"]}]}
    for key in ("completion", "chosen", "rejected"):
        if key in row:
            out[key] = [{"role": "assistant", "content": row[key]}]
    if fmt == "kto":
        out["label"] = row["label"]
    return out


def _make_trainer(fmt, model, tokenizer, dataset, peft_config, common, params, callbacks):
    eval_dataset = dataset["validation"] if "validation" in dataset else None
    if fmt == "sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(**common, max_length=params["max_seq_length"], packing=params["packing"], completion_only_loss=True)
        regression = params.get("regression")
        if not regression:
            return SFTTrainer(model=model, args=args, train_dataset=dataset["train"], eval_dataset=eval_dataset,
                              processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
        from .regression import RegressionTerms, make_loss

        terms = RegressionTerms()

        class HybridLossSFTTrainer(SFTTrainer):
            """SFT whose loss adds the weighted regression term, logging both terms."""

            regression_terms = terms

            def log(self, logs, *rest, **kwargs):
                if "loss" in logs:
                    logs = {**logs, **terms.drain()}
                return super().log(logs, *rest, **kwargs)

        loss_func = make_loss(tokenizer, regression["field"], regression["weight"], regression["loss"], terms)
        return HybridLossSFTTrainer(model=model, args=args, train_dataset=dataset["train"], eval_dataset=eval_dataset,
                                    processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks,
                                    compute_loss_func=loss_func)
    if fmt == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(**common, max_length=params["max_seq_length"])
        return DPOTrainer(model=model, args=args, train_dataset=dataset["train"], eval_dataset=eval_dataset,
                          processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
    if fmt == "kto":
        from trl import KTOConfig, KTOTrainer

        labels = set(dataset["train"]["label"])
        if labels != {True, False}:
            raise BadInput("KTO needs both desirable (label true) and undesirable (label false) rows in the training split")
        args = KTOConfig(**common, max_length=params["max_seq_length"])
        return KTOTrainer(model=model, args=args, train_dataset=dataset["train"], eval_dataset=eval_dataset,
                          processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
    raise BadInput(f"unknown format {fmt!r}: sft, dpo or kto")


def _make_seq2seq_trainer(fmt, model, tokenizer, dataset, peft_config, common, params, callbacks, model_type):
    """SFT for encoder–decoder models (FLAN-T5, BART): TRL's SFTTrainer feeds prompt and answer as one sequence, which
    is a decoder-only model's framing, so the prompt goes to the encoder and the answer (with EOS) becomes the
    decoder's labels, trained by transformers' Seq2SeqTrainer over the same PEFT adapter."""
    if fmt != "sft":
        raise BadInput(
            f"--format {fmt} is not supported for the encoder–decoder model ({model_type}): TRL's {fmt.upper()} trainer"
            " handles decoder-only models",
            hint="train this model with --format sft, or pick a decoder-only base model for DPO / KTO",
        )
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

    from .inference import format_prompt

    max_length = params["max_seq_length"]
    chat = bool(getattr(tokenizer, "chat_template", None))

    def tokenize(row: dict[str, Any]) -> dict[str, Any]:
        encoded = tokenizer(format_prompt(tokenizer, row["prompt"]), add_special_tokens=not chat, truncation=True, max_length=max_length)
        return {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "labels": seq2seq_answer_ids(tokenizer, row["completion"], max_length),
        }

    tokenized = dataset.map(tokenize, remove_columns=dataset["train"].column_names)
    model = get_peft_model(model, peft_config)
    if params["gradient_checkpointing"]:
        model.enable_input_require_grads()
    args = Seq2SeqTrainingArguments(**common)
    extra: dict[str, Any] = {}
    regression = params.get("regression")
    terms = None
    if regression:
        from .regression import RegressionTerms, make_loss

        terms = RegressionTerms()
        extra["compute_loss_func"] = make_loss(tokenizer, regression["field"], regression["weight"], regression["loss"], terms, causal=False)

    class AdapterSeq2SeqTrainer(Seq2SeqTrainer):
        regression_terms = terms

        def log(self, logs, *rest, **kwargs):
            if terms is not None and "loss" in logs:
                logs = {**logs, **terms.drain()}
            return super().log(logs, *rest, **kwargs)

    # The collator pads labels with -100 and makes the decoder's inputs from them (the model's own shift).
    collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    return AdapterSeq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"] if "validation" in tokenized else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=callbacks,
        **extra,
    )


def _peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class ProgressCallback(TrainerCallback):
    """Turns the trainer's steps, logs and saves into protocol notifications, and stops on cancel."""

    def __init__(self, emit: Emit, cancel: threading.Event, started: float) -> None:
        self.emit = emit
        self.cancel = cancel
        self.started = started
        self.step_started: float | None = None
        self.first_step: int | None = None
        self.last: dict[str, Any] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.step_started = time.monotonic()
        self.first_step = state.global_step
        self.emit("progress", {"stage": "train", "step": state.global_step, "total": state.max_steps, "epoch": state.epoch or 0})

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.last = {"loss": logs["loss"], "learning_rate": logs.get("learning_rate")}
        if "eval_loss" in logs:
            self.emit("log", {"message": f"eval_loss {logs['eval_loss']:.4f} at step {state.global_step}"})

    def on_step_end(self, args, state, control, **kwargs):
        elapsed = time.monotonic() - (self.step_started or self.started)
        done = state.global_step - (self.first_step or 0)
        remaining = state.max_steps - state.global_step
        tokens = int(state.num_input_tokens_seen or 0)
        self.emit(
            "progress",
            {
                "stage": "train",
                "step": state.global_step,
                "total": state.max_steps,
                "epoch": round(state.epoch or 0, 4),
                "loss": self.last.get("loss"),
                "learning_rate": self.last.get("learning_rate"),
                "tokens": tokens,
                "tokens_per_second": round(tokens / elapsed, 1) if elapsed > 0 and tokens else None,
                "eta_seconds": round(elapsed / done * remaining, 1) if done > 0 else None,
            },
        )
        if self.cancel.is_set():
            # Save where we are and stop: --resume continues from this step.
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kwargs):
        # Called after transformers has written the whole folder: mark it complete before telling anyone.
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if os.path.isdir(path):
            mark_complete(Path(path), state.global_step)
        self.emit("checkpoint", {"step": state.global_step, "path": path})

