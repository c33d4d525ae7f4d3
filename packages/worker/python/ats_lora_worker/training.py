"""Fine-tuning with the maintained libraries: a PEFT LoRA adapter trained by the recipe of the pairs' format
(recipes/: TRL's SFT, DPO and KTO trainers), with bitsandbytes quantization where chosen.

This module is what every recipe shares: checking the request against the model and the data, loading the
rows (each checked against core's row schema, then fitted to --max-seq-length: fitting.py), the model and the
LoRA configuration, the training arguments, the validation loss per epoch with early stopping (validation.py),
the run itself with progress and checkpoint events (stopping cleanly on cancel, saving a checkpoint, and
resuming from the last one with optimizer and scheduler state), and the run's metrics and files."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import distributed
from .checkpoints import newest_complete, resumable_checkpoint
from .contracts.protocol import Emit
from .contracts.protocol_types import TrainParams, TrainResult, TrainResultCompletedMetrics
from .contracts.training_pairs import TRAINER_COLUMNS, check_rows, pairs_file
from .errors import BadInput
from .fitting import FitCounts, fit_rows, tokenize_sft
from .gguf_base import training_folder
from .memory_plan import training_estimate
from .modeling import (
    QuantizationChoice,
    check_target_modules,
    choose_quantization,
    detect_target_modules,
    is_seq2seq,
    load_model,
    load_tokenizer,
    position_limit,
    read_model_config,
)
from .progress import ProgressCallback
from .recipes import RECIPES, TrainerInputs
from .validation import ValidationCallback

CHECKPOINTS = "checkpoints"
# The before/after loss is measured on at most this many training rows, and on fewer where the run is short.
SAMPLE_ROWS = 64


def train(params: TrainParams, emit: Emit, cancel: threading.Event) -> TrainResult:
    import torch
    from transformers import set_seed

    started = time.monotonic()
    output_dir = Path(params.output_dir)
    checkpoints = output_dir / CHECKPOINTS
    set_seed(params.seed)
    files = _pairs_files(params)
    # A GGUF base trains from the HF folder prepared from it (once); metrics keep the base as given.
    base = distributed.main_first(lambda: training_folder(params.base, emit))
    model_config = read_model_config(base)
    _check_sequence_length(params, model_config)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    quantization = choose_quantization(params.quantization, device, params.compute_dtype, model_config)
    emit("log", {"message": f"quantization: {quantization.reason}"})
    # The memory plan for this run's settings, before the model loads: metrics.json shows it beside the measured peak.
    memory_plan = training_estimate(params, model_config, device, quantization, distributed.world_size())
    if device == "cuda" and params.compute_dtype == "bfloat16" and quantization.compute_dtype == "float16":
        emit("log", {"message": "this GPU has no bf16: training in fp16 with loss scaling"})
    if distributed.is_distributed():
        emit("log", {"message": f"{distributed.world_size()} processes ({params.strategy}, {distributed.backend()}): {params.batch_size} rows per process per step"})
    resume_from = distributed.main_first(lambda: resumable_checkpoint(checkpoints, emit)) if params.resume else None
    progress = ProgressCallback(emit, cancel, started)
    validation = ValidationCallback(emit, params.early_stopping_patience, checkpoints)
    inputs, targets, fitted = _trainer_inputs(params, base, files, model_config, device, quantization, checkpoints, emit, callbacks=[progress, validation])
    # The adapters' random initialisation comes next (the recipe wraps the model): seeded here, so that it does not
    # hang on what drew random numbers while loading (torchrun's processes draw some that one process does not).
    set_seed(params.seed)
    trainer = RECIPES[params.format](inputs)
    if packs_rows(params, inputs.seq2seq):
        emit("log", {"message": f"packing: {len(inputs.train_rows)} rows in {len(trainer.train_dataset)} sequences of up to {params.max_seq_length} tokens (padding-free, position ids restart at each row)"})
    else:
        _check_rows_kept(len(inputs.train_rows), len(trainer.train_dataset), params, emit)

    # Learning is judged on the same examples before and after: a fixed sample of the training rows, so the
    # comparison is not blurred by which rows a logging window happened to hold.
    # Packed sequences are not evaluated apart (the evaluation drops the row lengths packing left), so a packed
    # run's sample is the rows themselves, unpacked.
    rows = inputs.train_rows if packs_rows(params, inputs.seq2seq) else trainer.train_dataset
    sample = rows.select(range(loss_sample_rows(len(rows), params)))
    emit("log", {"message": f"measuring the loss on {len(sample)} training rows before training"})
    loss_before = trainer.evaluate(eval_dataset=sample, metric_key_prefix="train_sample").get("train_sample_loss")
    if distributed.is_distributed():
        _forget_evaluation_prepare(trainer)
    result = trainer.train(resume_from_checkpoint=resume_from)
    state = trainer.state
    # Stopped on cancel (under torchrun, on rank 0's word, which every process heard at the same step).
    if progress.stopping and state.global_step < state.max_steps:
        newest, _ = newest_complete(checkpoints)
        return {"status": "cancelled", "step": state.global_step, "total": state.max_steps, "checkpoint": str(newest) if newest else None}

    if inputs.validation_rows is not None and (not validation.history or validation.history[-1]["step"] != state.global_step):
        # Normally the last (partial) epoch's end evaluated already; this covers a run whose loop did not.
        emit("log", {"message": "evaluating on the validation split"})
        validation.record(state.epoch, state.global_step, trainer.evaluate()["eval_loss"], trainer.model)
    adapter = _choose_adapter(validation, trainer, params, state.global_step, emit)
    loss_after = trainer.evaluate(eval_dataset=sample, metric_key_prefix="train_sample").get("train_sample_loss")
    trainer.save_model(str(output_dir))
    # The whole process's peak, as the memory plan estimates it: CUDA's allocated bytes, or the CPU's max RSS.
    peak_memory = torch.cuda.max_memory_allocated() if device == "cuda" else _peak_rss_bytes()
    metrics = _metrics(params, trainer, result, quantization, device, (loss_before, loss_after, len(sample)), peak_memory, started, resume_from)
    metrics.update(_validation_metrics(validation, adapter))
    metrics.update(estimated_peak_memory_bytes=memory_plan["total"], memory_plan=memory_plan)
    metrics.update(prompts_cut=fitted["train"].prompts_cut, answers_truncated=fitted["train"].answers_truncated)
    _add_regression_terms(metrics, trainer, params, emit)
    if not distributed.is_main():
        return {"status": "completed", "metrics": metrics, "output_dir": str(output_dir)}
    inputs.tokenizer.save_pretrained(str(output_dir))
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (output_dir / "training_args.json").write_text(json.dumps({**asdict(params), "target_modules": targets, "quantization_resolved": quantization.mode}, indent=2) + "\n")
    with (output_dir / "loss_curve.jsonl").open("w") as handle:
        for entry in state.log_history:
            handle.write(json.dumps(entry) + "\n")
    return {"status": "completed", "metrics": metrics, "output_dir": str(output_dir)}


def _trainer_inputs(
    params: TrainParams,
    base: str,
    files: dict[str, Path],
    model_config: dict[str, Any],
    device: str,
    quantization: QuantizationChoice,
    checkpoints: Path,
    emit: Emit,
    *,
    callbacks: list[Any],
) -> tuple[TrainerInputs, list[str], dict[str, FitCounts]]:
    """What the recipe builds its trainer from, the LoRA target modules, and what fitting the rows to
    --max-seq-length cut in each split."""
    from peft import LoraConfig, TaskType

    model_type = model_config.get("model_type", "")
    seq2seq = is_seq2seq(model_config)
    tokenizer = load_tokenizer(base)
    model = load_model(
        base,
        model_type,
        quantization,
        device,
        params.gradient_checkpointing,
        quant_type=params.bnb_4bit_quant_type,
        double_quant=params.bnb_4bit_double_quant,
        seq2seq=seq2seq,
        attn_implementation=params.attn_implementation,
        strategy=params.strategy,
    )
    # Training needs no KV cache; and transformers masks packed rows apart (from their position ids) only
    # where no cache is made, so with one they would attend to each other.
    model.config.use_cache = False
    targets = detect_target_modules(model_type) if params.target_modules == "auto" else list(params.target_modules)
    check_target_modules(model, targets, model_type)
    lora = LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=targets,
        layers_to_transform=top_layers(model, params.lora_top_layers),
        bias=params.lora_bias,
        task_type=TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM,
    )
    dataset, fitted = _load_rows(files, params, tokenizer, seq2seq, emit)
    inputs = TrainerInputs(
        params=params,
        model=model,
        tokenizer=tokenizer,
        model_type=model_type,
        seq2seq=seq2seq,
        dataset=dataset,
        lora=lora,
        arguments=_training_arguments(params, checkpoints, device, quantization, emit, validation="validation" in files, train_rows=len(dataset["train"])),
        callbacks=callbacks,
    )
    return inputs, targets, fitted


def _metrics(
    params: TrainParams,
    trainer: Any,
    result: Any,
    quantization: QuantizationChoice,
    device: str,
    sample_losses: tuple[float | None, float | None, int],
    peak_memory: int,
    started: float,
    resumed_from: str | None,
) -> TrainResultCompletedMetrics:
    """metrics.json, and the result's metrics: what ran, how the loss moved, and what it cost."""
    state = trainer.state
    loss_before, loss_after, sample_rows = sample_losses
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    wall = time.monotonic() - started
    tokens = int(state.num_input_tokens_seen or 0)
    train_seconds = result.metrics.get("train_runtime") or wall
    return {
        "format": params.format,
        "base": params.base,
        "quantization": quantization.mode,
        "quantization_reason": quantization.reason,
        "device": device,
        "steps": state.global_step,
        "epochs": round(state.epoch or 0, 4),
        "train_loss": result.metrics.get("train_loss"),
        "train_loss_first": loss_before,
        "train_loss_last": loss_after,
        "train_loss_sample_rows": sample_rows,
        "logged_loss_first": losses[0] if losses else None,
        "logged_loss_last": losses[-1] if losses else None,
        "tokens": tokens,
        "tokens_per_second": round(tokens / train_seconds, 1) if train_seconds else None,
        "peak_memory_bytes": peak_memory,
        "peak_memory_kind": "cuda_allocated" if device == "cuda" else "process_max_rss",
        "wall_seconds": round(wall, 2),
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "resumed_from": resumed_from,
        "processes": distributed.world_size(),
        "strategy": params.strategy if distributed.is_distributed() else None,
    }


def _pairs_files(params: TrainParams) -> dict[str, Path]:
    """The format's train split (which must have rows) and val split (which may), every row checked against the
    format's row schema."""
    fmt = params.format
    if params.regression is not None and fmt != "sft":
        raise BadInput(
            f"the hybrid regression loss (--regression-field) trains with --format sft, not {fmt}",
            hint="drop --regression-field (training.regression_field) or train with --format sft",
        )
    data_dir = Path(params.data_dir)
    train, val = pairs_file(data_dir, fmt, "train"), pairs_file(data_dir, fmt, "val")
    if not train.exists() or train.stat().st_size == 0 or check_rows(train, fmt) == 0:
        raise BadInput(f"no {fmt} training rows in {train}", hint="run ats-lora build-db first, or pick another --format")
    files = {"train": train}
    if val.exists() and check_rows(val, fmt) > 0:
        files["validation"] = val
    return files


def _check_sequence_length(params: TrainParams, model_config: dict[str, Any]) -> None:
    limit = position_limit(model_config)
    if limit is not None and params.max_seq_length > limit[1]:
        # Positions past the model's table are not learned (or index out of range): refuse rather than clamp.
        raise BadInput(
            f"--max-seq-length {params.max_seq_length} is more than the {limit[1]} positions of the model {params.base}"
            f" ({limit[0]} in its config.json)",
            hint=f"use --max-seq-length {limit[1]} or less (training.max_seq_length)",
        )


def _load_rows(files: dict[str, Path], params: TrainParams, tokenizer, seq2seq: bool, emit: Emit) -> tuple[Any, dict[str, FitCounts]]:
    """The splits as a DatasetDict of the columns the format's trainer reads, each prompt cut to fit
    --max-seq-length beside its answer (and the counts said). SFT's rows for decoder-only models come tokenized
    (fitting.py); the tokenizer's own chat template frames prompt and answer, as the model will be prompted later."""
    from datasets import load_dataset

    fmt, limit = params.format, params.max_seq_length
    dataset = load_dataset("json", data_files={split: str(file) for split, file in files.items()})
    dataset = dataset.select_columns(list(TRAINER_COLUMNS[fmt]))
    dataset, fitted = fit_rows(dataset, tokenizer, fmt, limit, seq2seq)
    for split, counts in fitted.items():
        where = "" if split == "train" else f" ({split} split)"
        if counts.prompts_cut:
            emit("log", {"message": f"{counts.prompts_cut} of {counts.rows} prompts cut to fit --max-seq-length {limit}{where}: the middle of each removed (marked …), its start and end kept"})
        if counts.answers_truncated:
            emit("log", {"message": f"{counts.answers_truncated} of {counts.rows} answers too long for --max-seq-length {limit} even beside a shortened prompt{where}: their end is truncated"})
    if seq2seq:
        return dataset, fitted
    if fmt == "sft":
        return tokenize_sft(dataset, tokenizer), fitted
    if getattr(tokenizer, "chat_template", None):
        dataset = dataset.map(lambda row: _as_conversation(row, fmt))
    return dataset, fitted


def _as_conversation(row: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The prompt as the user's message, each answer (completion, chosen, rejected) as the assistant's; other
    columns (KTO's label) as they are."""
    conversation: dict[str, Any] = {}
    for column in TRAINER_COLUMNS[fmt]:
        value = row[column]
        if column == "prompt":
            conversation[column] = [{"role": "user", "content": value}]
        elif isinstance(value, str):
            conversation[column] = [{"role": "assistant", "content": value}]
        else:
            conversation[column] = value
    return conversation


def _training_arguments(
    params: TrainParams, checkpoints: Path, device: str, quantization: QuantizationChoice, emit: Emit, *, validation: bool, train_rows: int
) -> dict[str, Any]:
    """The transformers TrainingArguments every recipe passes (its own config class adds the rest)."""
    import torch

    warmup = params.warmup_steps
    # The run's length: max_steps, or (max_steps -1) the epochs over the training rows, shared by the processes.
    per_process = math.ceil(train_rows / distributed.world_size())
    run_steps = params.max_steps if params.max_steps > 0 else math.ceil(math.ceil(per_process / params.batch_size) / params.grad_accum * params.epochs)
    longest = max(1, math.ceil(run_steps * 0.1))
    if warmup > longest:
        # A warm-up longer than a tenth of the run would spend most of a short run at a fraction of the rate.
        emit("log", {"message": f"warm-up of {warmup} steps is over 10% of the {run_steps} steps; using {longest}"})
        warmup = longest
    arguments: dict[str, Any] = {
        "output_dir": str(checkpoints),
        "per_device_train_batch_size": params.batch_size,
        "per_device_eval_batch_size": params.batch_size,
        "gradient_accumulation_steps": params.grad_accum,
        "learning_rate": params.learning_rate,
        "num_train_epochs": params.epochs,
        "max_steps": params.max_steps,
        "warmup_steps": warmup,
        "lr_scheduler_type": params.lr_scheduler,
        "logging_steps": params.logging_steps,
        "save_steps": params.save_steps,
        "save_total_limit": 2,
        "seed": params.seed,
        "gradient_checkpointing": params.gradient_checkpointing,
        # bf16 autocast: on CUDA where the GPU has it; on a CPU with AVX-512 BF16/AMX (choose_quantization keeps
        # compute_dtype bfloat16 only there), where it trains a small model about 1.7x faster than fp32.
        "bf16": quantization.compute_dtype == "bfloat16" and (torch.cuda.is_bf16_supported() if device == "cuda" else device == "cpu"),
        # fp16 autocast with loss scaling on a GPU without bf16 (a T4, a V100): choose_quantization chose float16.
        "fp16": quantization.compute_dtype == "float16" and device == "cuda",
        "report_to": [],
        "disable_tqdm": True,
        "include_num_input_tokens_seen": "non_padding",
        "use_cpu": device == "cpu",
        "dataloader_pin_memory": device == "cuda",
        # The validation loss at each epoch's end (validation.py records it and stops early on it).
        "eval_strategy": "epoch" if validation else "no",
    }
    if params.gradient_checkpointing:
        arguments["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if distributed.is_distributed():
        arguments.update(_parallel_arguments(params))
    return arguments


def _parallel_arguments(params: TrainParams) -> dict[str, Any]:
    """DDP (each process a whole model, gradients averaged) or FSDP (parameters, gradients and optimizer state
    sharded across the processes: a model that does not fit one device), through transformers' accelerate."""
    if params.strategy == "fsdp":
        return {
            "fsdp": "full_shard auto_wrap",
            "fsdp_config": {
                # PEFT's wrap policy (transformers applies it to a PEFT model) wraps the decoder layers and the
                # trainable adapters apart from the frozen base; the frozen weights need not be original parameters.
                "use_orig_params": False,
                "cpu_ram_efficient_loading": True,
                "sync_module_states": True,
            },
        }
    # Only the adapters train; with gradient checkpointing DDP must not look for unused parameters each step.
    return {"ddp_find_unused_parameters": False}


def packs_rows(params: TrainParams, seq2seq: bool) -> bool:
    """Whether TRL packs the training rows into sequences (SFT of a decoder-only model with --packing)."""
    return params.packing and params.format == "sft" and not seq2seq


def top_layers(model: Any, count: int | None) -> list[int] | None:
    """The indices of the last `count` transformer layers (None: every layer). Without adapters below them,
    backpropagation stops at the lowest adapted layer, so a step costs less."""
    if count is None:
        return None
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "num_layers", None)
    if not isinstance(layers, int):
        raise BadInput("lora.top_layers: this model's config names no layer count (num_hidden_layers)", hint="set lora.top_layers to null")
    if count > layers:
        raise BadInput(f"lora.top_layers is {count}, and this model has {layers} layers", hint=f"use at most {layers}, or null for every layer")
    return list(range(layers - count, layers))


def loss_sample_rows(rows: int, params: TrainParams) -> int:
    """How many training rows the before/after loss is measured on: at most a tenth of the run's cost. A forward
    pass costs about a third of a training step's forward and backward, so the two measurements over n rows cost
    about 2n/3 rows' steps, against the steps × batch × grad_accum rows the run trains on: n ≤ 0.15 × those rows
    (at least 1, at most SAMPLE_ROWS)."""
    per_step = params.batch_size * params.grad_accum * distributed.world_size()
    if params.max_steps > 0:
        steps = params.max_steps
    else:
        steps = math.ceil(params.epochs * math.ceil(math.ceil(rows / distributed.world_size() / params.batch_size) / params.grad_accum))
    return max(1, min(SAMPLE_ROWS, rows, math.floor(0.15 * steps * per_step)))


def _choose_adapter(validation: ValidationCallback, trainer: Any, params: TrainParams, step: int, emit: Emit) -> int:
    """With early stopping, the adapter saved is the best evaluation's: its weights loaded back when the run went
    on past it. Returns the step whose weights are saved."""
    best = validation.best
    if params.early_stopping_patience is None or best is None:
        return step
    count = len(validation.history)
    restored = validation.restore_best(trainer.model)
    if restored is not None:
        emit("log", {"message": f"the adapter saved is epoch {restored['epoch']:g}'s (step {restored['step']}, validation loss {restored['loss']:.4f}), the best of {count} evaluations; the run stopped at step {step}"})
        return restored["step"]
    if best is not validation.history[-1]:
        emit("log", {"message": f"the best epoch's adapter (epoch {best['epoch']:g}, step {best['step']}) was not kept by the run resumed here; the adapter saved is step {step}'s"})
    else:
        emit("log", {"message": f"the adapter saved is the last evaluation's (epoch {best['epoch']:g}, step {step}), the best of {count}"})
    return step


def _validation_metrics(validation: ValidationCallback, adapter_step: int) -> dict[str, Any]:
    """The validation loss at each epoch's end, the best of them, and the loss of the adapter saved."""
    saved = next((entry for entry in validation.history if entry["step"] == adapter_step), None)
    return {
        "eval_loss": saved["loss"] if saved else None,
        "val_loss_by_epoch": list(validation.history),
        "best_epoch": validation.best,
        "adapter_step": adapter_step,
        "stopped_early": validation.stopped_early,
    }


def _check_rows_kept(rows: int, kept: int, params: TrainParams, emit: Emit) -> None:
    """Fitting leaves every row answer tokens within --max-seq-length unless the chat template alone fills it;
    the trainer drops a row with none: say so, refuse if all went."""
    if kept == 0:
        raise BadInput(
            f"all {rows} {params.format} training rows were dropped: their prompts fill the {params.max_seq_length} tokens of"
            " --max-seq-length, leaving no answer to learn from",
            hint="raise --max-seq-length (training.max_seq_length)",
        )
    if kept < rows:
        emit("log", {"message": f"{rows - kept} of {rows} rows dropped: no answer tokens left within --max-seq-length {params.max_seq_length}"})


def _add_regression_terms(metrics: TrainResultCompletedMetrics, trainer: Any, params: TrainParams, emit: Emit) -> None:
    """The hybrid loss's two terms over the run, where the recipe trained with it."""
    terms = getattr(trainer, "regression_terms", None)
    if terms is None or params.regression is None:
        return
    totals = terms.totals
    batches = max(1, int(totals["batches"]))
    metrics["regression"] = {
        **asdict(params.regression),
        "lm_loss": totals["lm"] / batches,
        "regression_loss": totals["regression"] / batches,
        "rows_with_number": int(totals["rows_with_number"]),
        "rows": int(totals["rows"]),
    }
    if totals["rows_with_number"] == 0:
        emit("log", {"message": f"regression: no answer held a number in the field {params.regression.field!r}; only the LM loss trained"})


def _forget_evaluation_prepare(trainer: Any) -> None:
    """An evaluation before training has accelerate prepare the model for evaluation (no DDP wrapper), and
    accelerate prepares a model once: train() would then run each process's model unwrapped, its gradients never
    averaged with the others'. Forgetting that preparation lets train() wrap the model in DDP as it does when
    nothing was evaluated first."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return  # FSDP's evaluation prepare is the full one: the model is already sharded for training
    trainer.model._is_accelerate_prepared = False
    trainer.accelerator._models = [model for model in trainer.accelerator._models if model is not trainer.model]
    trainer.model_wrapped = trainer.model


def _peak_rss_bytes() -> int:
    """This process's peak resident memory: VmHWM where /proc has it. Linux's ru_maxrss also counts the resident
    memory of the process that started the worker (it carries over fork and exec): a worker started by a test
    process of 800 MiB reported 800 MiB for a 580 MiB run."""
    import resource

    status = Path("/proc/self/status")
    if status.exists():
        return next(int(line.split()[1]) * 1024 for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
