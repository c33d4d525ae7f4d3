"""A tiny Mistral-architecture model with its own BPE tokenizer, made from text on disk: the base model of
the tests and the demo, created without any download."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .contracts.protocol_types import CreateTinyResult

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
TEXT_SUFFIXES = {".md", ".txt", ".jsonl", ".json"}


def corpus_texts(sources: list[Path]) -> Iterator[str]:
    """Text of every Markdown, text and JSONL file under the sources (JSONL lines contribute their strings)."""
    for source in sources:
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.suffix in TEXT_SUFFIXES)
        for file in files:
            if file.suffix == ".jsonl":
                for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
                    try:
                        yield from _strings(json.loads(line))
                    except json.JSONDecodeError:
                        continue
            else:
                yield file.read_text(encoding="utf-8", errors="replace")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer (the GPT-2 / Llama-3 family's scheme) trained on the texts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    # Digits one token each, as Mistral's and Llama 2's tokenizers do: scores like 0.72 stay legible digit by
    # digit (the hybrid regression loss reads them so).
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos = tokenizer.token_to_id("<s>")
    # Like Mistral's: <s> opens every sequence; </s> is the end-of-sequence token fine-tuning teaches.
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=2048,
        padding_side="right",
    )


def create_tiny_model(
    output_dir: Path,
    sources: list[Path],
    *,
    vocab_size: int = 4096,
    hidden_size: int = 256,
    layers: int = 4,
    heads: int = 8,
    kv_heads: int = 4,
    # Every linear layer's sizes are multiples of 64: bitsandbytes' CPU 4-bit kernels need that.
    intermediate_size: int = 768,
    max_positions: int = 2048,
    pretrain_steps: int,
    seed: int,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CreateTinyResult:
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    random.seed(seed)
    texts = [text for text in corpus_texts(sources) if text.strip()]
    if not texts:
        raise ValueError(f"no text found under {', '.join(map(str, sources))} to train the tokenizer on")
    tokenizer = train_tokenizer(texts, vocab_size)
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        sliding_window=None,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = MistralForCausalLM(config)
    losses: list[float] = []
    if pretrain_steps > 0:
        losses = _pretrain(model, tokenizer, texts, pretrain_steps, seed, on_progress, should_stop)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    parameters = sum(p.numel() for p in model.parameters())
    info: CreateTinyResult = {
        "path": str(output_dir),
        "architecture": "MistralForCausalLM",
        "parameters": parameters,
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "layers": layers,
        "pretrain_steps": len(losses),
        "pretrain_loss_first": losses[0] if losses else None,
        "pretrain_loss_last": losses[-1] if losses else None,
        "corpus_texts": len(texts),
    }
    (output_dir / "ats-lora-tiny.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _pretrain(model, tokenizer, texts, steps, seed, on_progress, should_stop) -> list[float]:
    """Next-token training on the corpus for a few steps, so the tiny model starts from sense, not noise."""
    import torch

    block = 256
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text)["input_ids"] + [tokenizer.eos_token_id])
    blocks = [ids[i : i + block] for i in range(0, len(ids) - block, block)]
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 10) * 0.5 * (1 + math.cos(math.pi * step / steps)))
    model.train()
    losses: list[float] = []
    start = time.monotonic()
    for step in range(steps):
        if should_stop and should_stop():
            break
        batch = torch.tensor([rng.choice(blocks) for _ in range(8)])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(round(loss.item(), 4))
        if on_progress:
            elapsed = time.monotonic() - start
            on_progress({"stage": "pretrain", "step": step + 1, "total": steps, "loss": losses[-1],
                         "eta_seconds": round(elapsed / (step + 1) * (steps - step - 1), 1)})
    model.eval()
    return losses
