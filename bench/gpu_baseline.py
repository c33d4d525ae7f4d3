"""The baseline of bench/gpu.sh: the plain QLoRA recipe, with nothing of ats-lora in it. A transformers `Trainer`
over a PEFT `get_peft_model` adapter on a bitsandbytes 4-bit base (NF4, double quantization, bf16 compute),
`prepare_model_for_kbit_training`, gradient checkpointing, batches padded to their longest row, on the same rows
as the product (DIR/sft/train.jsonl) with the same LoRA rank, alpha, dropout and target modules, learning rate and
schedule, steps, sequence length, batch and gradient accumulation.

Each row is tokenized as the worker tokenizes an SFT row of a model without a chat template (prompt + completion
with the tokenizer's special tokens, then EOS; the loss on the completion and EOS only). Like the product, the
run measures the loss on a few training rows before it trains (the same number the worker takes), which also
warms the kernels up for both.

Measured: tokens/s = non-padding tokens trained on / the trainer's train_runtime (the product's definition), and
peak memory: torch.cuda.max_memory_allocated() over the whole process on CUDA (also max_memory_reserved, and the
training loop's peak over the peak before it, which is what the worker's metrics.json reports), the process's peak
RSS on a CPU. Written to OUT/metrics.json.

Usage: python bench/gpu_baseline.py --model DIR --data DIR --out DIR --max-seq-length L --steps N [options]"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path


def say(message: str) -> None:
    print(f"gpu-bench: baseline: {message}", file=sys.stderr, flush=True)


def tokenize_rows(tokenizer, rows: list[dict], max_len: int) -> list[dict]:
    """input_ids, attention_mask and labels (-100 on the prompt) of each row, at most max_len tokens."""
    eos = tokenizer.eos_token_id
    out = []
    for row in rows:
        ids = list(tokenizer(row["prompt"] + row["completion"])["input_ids"]) + [eos]
        prompt = list(tokenizer(row["prompt"])["input_ids"])
        start = 0
        while start < min(len(prompt), len(ids)) and prompt[start] == ids[start]:
            start += 1
        ids = ids[:max_len]
        labels = ([-100] * start + ids[start:])[:max_len]
        out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return out


def loss_sample_rows(rows: int, steps: int, per_step: int) -> int:
    """How many rows the worker measures the loss on before training (training.py's loss_sample_rows)."""
    return max(1, min(64, rows, math.floor(0.15 * steps * per_step)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="training-pairs folder: DATA/sft/train.jsonl")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seq-length", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--lr-scheduler", default="cosine")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=float, default=32)
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--target-modules", default="q_proj,k_proj,v_proj,o_proj")
    parser.add_argument("--quantization", choices=["4bit", "none"], default="4bit")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    started = time.monotonic()
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    set_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
    else:
        bf16 = torch.cpu._is_avx512_bf16_supported()  # noqa: SLF001 - bf16 autocast pays only with AVX-512 BF16
    compute_dtype = torch.bfloat16 if bf16 else (torch.float16 if device == "cuda" else torch.float32)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data_file = Path(args.data) / "sft" / "train.jsonl"
    rows = [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    dataset = Dataset.from_list(tokenize_rows(tokenizer, rows, args.max_seq_length))

    if args.quantization == "4bit":
        quantization = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute_dtype
        )
        model = AutoModelForCausalLM.from_pretrained(args.model, quantization_config=quantization, dtype=compute_dtype, device_map={"": 0} if device == "cuda" else "cpu")
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
        if device == "cpu":
            # bitsandbytes repacks a CPU 4-bit layer for inference after a no-grad pass (the loss measured before
            # training) into a layout without a backward: keep it trainable (a CPU-only quirk; no effect on CUDA).
            import bitsandbytes as bnb

            for module in model.modules():
                if isinstance(module, bnb.nn.Linear4bit):
                    module.support_avx512bf16_for_cpu = False
    else:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=compute_dtype if device == "cuda" else torch.float32, device_map=device)
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    lora = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=[name.strip() for name in args.target_modules.split(",") if name.strip()],
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    say(f"{args.quantization} on {device}, compute {str(compute_dtype).removeprefix('torch.')}, {trainable:,} trainable parameters, {len(dataset)} rows")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Gradient (activation) checkpointing, non-reentrant as the worker sets it, under whichever name this
    # transformers has (5.x renamed it; the old name warns).
    fields = TrainingArguments.__dataclass_fields__
    prefix = "activation" if "activation_checkpointing" in fields else "gradient"
    checkpointing = {f"{prefix}_checkpointing": True, f"{prefix}_checkpointing_kwargs": {"use_reentrant": False}}
    training_args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.lr,
        max_steps=args.steps,
        warmup_steps=args.warmup_steps,
        lr_scheduler_type=args.lr_scheduler,
        logging_steps=max(1, args.steps // 10),
        # As the worker's run (training.save_steps 100, its save_total_limit): a checkpoint at the end, which
        # transformers writes inside train_runtime for both.
        save_steps=100,
        save_total_limit=2,
        report_to=[],
        disable_tqdm=True,
        bf16=bf16,
        **checkpointing,
        include_num_input_tokens_seen="non_padding",
        seed=args.seed,
        use_cpu=device == "cpu",
        dataloader_pin_memory=device == "cuda",
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100),
    )
    sample = dataset.select(range(loss_sample_rows(len(dataset), args.steps, args.batch_size * args.grad_accum)))
    loss_before = trainer.evaluate(eval_dataset=sample, metric_key_prefix="train_sample").get("train_sample_loss")
    peak_before = torch.cuda.max_memory_allocated() if device == "cuda" else 0
    say(f"training {args.steps} steps of {args.batch_size} × {args.grad_accum} rows at up to {args.max_seq_length} tokens")
    result = trainer.train()
    runtime = result.metrics.get("train_runtime") or (time.monotonic() - started)
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    metrics = {
        "system": "baseline",
        "device": device,
        "quantization": args.quantization,
        "compute_dtype": str(compute_dtype).removeprefix("torch."),
        "steps": trainer.state.global_step,
        "train_loss": result.metrics.get("train_loss"),
        "train_loss_first": loss_before,
        "tokens": tokens,
        "train_runtime": runtime,
        "tokens_per_second": round(tokens / runtime, 1) if runtime else None,
        "trainable_parameters": trainable,
        "wall_seconds": round(time.monotonic() - started, 2),
    }
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated()
        metrics.update(
            peak_memory_bytes=peak,
            peak_memory_kind="cuda_allocated",
            cuda_max_reserved_bytes=torch.cuda.max_memory_reserved(),
            peak_memory_train_over_pretrain_bytes=peak - peak_before,
        )
    else:
        metrics.update(peak_memory_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, peak_memory_kind="process_max_rss")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    say(f"{tokens:,} tokens in {runtime:.1f} s: {metrics['tokens_per_second']} tokens/s, peak memory {metrics['peak_memory_bytes'] / 2**30:.2f} GiB ({metrics['peak_memory_kind']})")


if __name__ == "__main__":
    main()
