"""Using a base model or a trained adapter: generate answers, score references (per-example loss), merge."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from .contracts.protocol import Emit
from .contracts.protocol_types import (
    GenerateParams,
    GenerateResult,
    GenerateResultOutput,
    MergeParams,
    MergeResult,
    ScoreParams,
    ScoreResult,
)
from .errors import BadInput
from .gguf_base import training_folder
from .modeling import is_seq2seq, load_tokenizer, read_model_config, seq2seq_answer_ids


def resolve(model: str, base: str | None) -> tuple[str, str | None]:
    """(base model, adapter folder or None) for a model argument that is an adapter folder or a base model."""
    adapter_config = Path(model) / "adapter_config.json"
    if adapter_config.exists():
        recorded = json.loads(adapter_config.read_text()).get("base_model_name_or_path")
        chosen = base or recorded
        if not chosen:
            raise BadInput(f"{model} is an adapter without a recorded base model", hint="pass --base")
        return chosen, model
    return model, None


def load(model_arg: str, base_arg: str | None, emit: Emit | None = None):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    base, adapter = resolve(model_arg, base_arg)
    base = training_folder(base, emit)
    config = read_model_config(base)
    auto = AutoModelForSeq2SeqLM if is_seq2seq(config) else AutoModelForCausalLM
    cuda = torch.cuda.is_available()
    dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else torch.float32
    try:
        model = auto.from_pretrained(base, dtype=dtype, device_map="auto" if cuda else "cpu")
    except Exception as error:  # noqa: BLE001
        raise BadInput(f"cannot load the model {base}: {str(error).splitlines()[0]}") from error
    # Training saves its tokenizer with the adapter; an adapter saved without one uses its base's.
    tokenizer = load_tokenizer(adapter if adapter and _has_tokenizer(adapter) else base)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    return model, tokenizer, bool(getattr(model.config, "is_encoder_decoder", False)) or is_seq2seq(config)


def _has_tokenizer(folder: str) -> bool:
    return any((Path(folder) / name).exists() for name in ("tokenizer_config.json", "tokenizer.json"))


_inference: dict[str, Any] = {}


def _stamp(path: str | None) -> float | None:
    """When a local model (folder or GGUF file) last changed (a retrained adapter is a different model), None for
    hub ids."""
    if not path or not Path(path).exists():
        return None
    if Path(path).is_file():
        return Path(path).stat().st_mtime
    return max((entry.stat().st_mtime for entry in Path(path).iterdir() if entry.is_file()), default=0.0)


def load_for_inference(model_arg: str, base_arg: str | None, emit: Emit | None = None):
    """`load`, keeping the last model: an evaluation asks generate and then score of the same model in turn."""
    key = (model_arg, base_arg, _stamp(model_arg), _stamp(base_arg))
    if _inference.get("key") != key:
        release_inference_model()
        _inference.update(key=key, value=load(model_arg, base_arg, emit))
    return _inference["value"]


def release_inference_model() -> None:
    """Frees the kept model (before training or merging, which load their own)."""
    if not _inference:
        return
    _inference.clear()
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def format_prompt(tokenizer, prompt: str) -> str:
    """The prompt as training framed it: through the chat template when the tokenizer has one, as the single
    user message [{"role": "user", "content": prompt}]. core's promptMessages (packages/core/src/prompt.ts) is the
    TypeScript twin that node-llama-cpp inference renders: the two must build the same messages."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    return prompt


GENERATE_BATCH_SIZE = 4


def generate(params: GenerateParams, emit: Emit, cancel: threading.Event) -> GenerateResult:
    """Answers to the prompts, `batch_size` at a time: a decoder-only model's batch is left-padded (every prompt
    ends where generation starts), so greedy answers are the ones generated one by one."""
    import torch
    from transformers import set_seed

    set_seed(params.seed)
    model, tokenizer, seq2seq = load_for_inference(params.model, params.base, emit)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not seq2seq:
        tokenizer.padding_side = "left"
    temperature = params.temperature
    batch_size = params.batch_size or GENERATE_BATCH_SIZE
    chat = bool(getattr(tokenizer, "chat_template", None))
    outputs: list[GenerateResultOutput] = []
    total = len(params.prompts)
    for first in range(0, total, batch_size):
        if cancel.is_set():
            break
        texts = [format_prompt(tokenizer, prompt) for prompt in params.prompts[first : first + batch_size]]
        inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not chat).to(model.device)
        started = time.monotonic()
        with torch.no_grad():
            generated = model.generate(
                **inputs,
                max_new_tokens=params.max_new_tokens,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        seconds = time.monotonic() - started
        answers = [_answer_tokens(model, tokenizer, row.tolist(), inputs["input_ids"].shape[1], seq2seq) for row in generated]
        longest = max((len(tokens) for tokens in answers), default=0) or 1
        for tokens in answers:
            outputs.append(
                {
                    "text": tokenizer.decode(tokens, skip_special_tokens=True),
                    "tokens": len(tokens),
                    "ended_with_eos": bool(tokens) and tokens[-1] == tokenizer.eos_token_id,
                    # The batch's tokens come in lockstep: an answer's last token came after its share of the steps.
                    "seconds": round(seconds * max(len(tokens), 1) / longest, 4),
                }
            )
        emit("progress", {"stage": "generate", "step": len(outputs), "total": total})
    return {"outputs": outputs, "cancelled": len(outputs) < total}


def _answer_tokens(model, tokenizer, row: list[int], prompt_length: int, seq2seq: bool) -> list[int]:
    """One sequence of a batch's output as its answer: the new tokens up to and with the first EOS (after it, a
    batch pads the sequences that ended before the others)."""
    if seq2seq:
        # An encoder–decoder's output is the decoder's alone: its start token, then the answer.
        start = model.generation_config.decoder_start_token_id
        if start is None:
            start = model.config.decoder_start_token_id
        tokens = row[1:] if row and row[0] == start else row
    else:
        tokens = row[prompt_length:]
    eos = tokenizer.eos_token_id
    if eos in tokens:
        tokens = tokens[: tokens.index(eos) + 1]
    return tokens


def score(params: ScoreParams, emit: Emit, cancel: threading.Event) -> ScoreResult:
    """Mean token loss of each reference given its prompt (the completion-only loss training minimises)."""
    import torch

    prompts, references = params.prompts, params.references
    if len(prompts) != len(references):
        raise BadInput(f"{len(prompts)} prompts but {len(references)} references")
    model, tokenizer, seq2seq = load_for_inference(params.model, params.base, emit)
    losses: list[float | None] = []
    counts: list[int] = []
    for index, (prompt, reference) in enumerate(zip(prompts, references, strict=True)):
        if cancel.is_set():
            break
        prompt_text = format_prompt(tokenizer, prompt)
        chat = bool(getattr(tokenizer, "chat_template", None))
        prompt_ids = tokenizer(prompt_text, add_special_tokens=not chat)["input_ids"]
        if seq2seq:
            # The prompt is the encoder's input; the answer, as training framed it, the decoder's labels.
            answer_ids = seq2seq_answer_ids(tokenizer, reference)
            with torch.no_grad():
                loss = model(
                    input_ids=torch.tensor([prompt_ids], device=model.device),
                    labels=torch.tensor([answer_ids], device=model.device),
                ).loss.item()
        else:
            answer_ids = tokenizer(reference + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt_ids + answer_ids], device=model.device)
            labels = ids.clone()
            labels[0, : len(prompt_ids)] = -100
            with torch.no_grad():
                loss = model(input_ids=ids, labels=labels).loss.item()
        losses.append(loss)
        counts.append(len(answer_ids))
        emit("progress", {"stage": "score", "step": index + 1, "total": len(prompts)})
    return {"losses": losses, "tokens": counts, "cancelled": len(losses) < len(prompts)}


def merge(params: MergeParams) -> MergeResult:
    """Folds the LoRA update into the base weights and saves a plain model (full precision)."""
    output = Path(params.output_dir)
    base, adapter = save_merged(params.adapter, params.base, output)
    return {"output_dir": str(output), "base": base, "adapter": adapter}


def save_merged(adapter_arg: str, base_arg: str | None, output: Path, emit: Emit | None = None) -> tuple[str, str]:
    """The adapter merged into its base, saved in `output` as an HF folder with the tokenizer (chat template
    included) and a generation config that names the EOS token; returns (the base's training folder, adapter)."""
    release_inference_model()
    base, adapter = resolve(adapter_arg, base_arg)
    if adapter is None:
        raise BadInput(f"{adapter_arg} is not an adapter folder (no adapter_config.json)")
    base = training_folder(base, emit)
    model, tokenizer, _ = load(adapter, base, emit)
    merged = model.merge_and_unload()
    if merged.generation_config.eos_token_id is None and tokenizer.eos_token_id is not None:
        merged.generation_config.eos_token_id = tokenizer.eos_token_id
    output.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return base, adapter
