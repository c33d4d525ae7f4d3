"""Loading a base model and its tokenizer: local folder or hub id, quantization, LoRA target modules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput, WorkerError

# LoRA targets per architecture (model_type in config.json): the attention projections, as QLoRA's examples use.
TARGET_MODULES: dict[str, list[str]] = {
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi3": ["qkv_proj", "o_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "t5": ["q", "k", "v", "o"],
}
SEQ2SEQ_TYPES = {"t5", "mt5", "umt5", "bart", "mbart", "pegasus"}


def is_seq2seq(config: dict[str, Any]) -> bool:
    """An encoder–decoder model (FLAN-T5, BART, …): the prompt goes to the encoder, the answer is the decoder's."""
    return bool(config.get("is_encoder_decoder")) or config.get("model_type") in SEQ2SEQ_TYPES


def position_limit(config: dict[str, Any]) -> tuple[str, int] | None:
    """(config key, the most positions the model has) where its positions are a fixed table, else None.
    T5's relative positions have no such limit (its n_positions is only a hint), so encoder–decoder models are
    checked on max_position_embeddings alone (BART's learned table)."""
    keys = ["max_position_embeddings"] if is_seq2seq(config) else ["max_position_embeddings", "n_positions"]
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return key, value
    return None


def seq2seq_answer_ids(tokenizer, text: str, max_length: int | None = None) -> list[int]:
    """The decoder's labels for an answer: its tokens ending with EOS (so the tuned model stops)."""
    ids = tokenizer(text_target=text, add_special_tokens=True)["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is not None and ids and ids[-1] == eos:
        ids = ids[:-1]
    if max_length is not None:
        ids = ids[: max(0, max_length - 1)]
    return ids + ([eos] if eos is not None else [])


def read_model_config(base: str) -> dict[str, Any]:
    """config.json of a local folder, or of a hub model (downloaded as usual, HF_TOKEN honoured)."""
    path = Path(base)
    if path.exists():
        if not path.is_dir():
            raise BadInput(f"--base {base} is a file but not a .gguf model; it must be a GGUF file, a model folder or a hub id")
        config_file = path / "config.json"
        if not config_file.exists():
            raise BadInput(
                f"--base {base} has no config.json: it is not a model folder",
                hint="pass a Hugging Face model folder (config.json, weights, tokenizer) or a hub id such as mistralai/Mistral-7B-v0.1",
            )
        return json.loads(config_file.read_text())
    if base.startswith((".", "/", "~")) or base.count("/") > 1:
        raise BadInput(f"--base {base}: no such folder", hint="check the path, or create a tiny model: ats-lora models create-tiny DIR")
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(base).to_dict()
    except Exception as error:  # noqa: BLE001 - the hub client raises many kinds
        raise BadInput(
            f"--base {base}: cannot load it from the Hugging Face hub ({type(error).__name__}: {str(error).splitlines()[0]})",
            hint="check the id, the network and HF_TOKEN for gated models, or pass a local folder",
        ) from error


def detect_target_modules(model_type: str) -> list[str]:
    if model_type not in TARGET_MODULES:
        raise BadInput(
            f"no LoRA target modules known for the architecture {model_type!r}",
            hint="name them: --target-modules a,b,c (the model's linear layer names)",
        )
    return TARGET_MODULES[model_type]


def check_target_modules(model, wanted: list[str], model_type: str) -> None:
    """Every requested module name must match some linear layer: PEFT would fail later, less clearly."""
    names = {name.split(".")[-1] for name, _ in model.named_modules()}
    missing = [name for name in wanted if name not in names]
    if missing:
        suggestion = TARGET_MODULES.get(model_type)
        detected = f" ({','.join(suggestion)})" if suggestion else ""
        raise BadInput(
            f"target modules {', '.join(missing)} do not exist in this {model_type} model",
            hint=f"use --target-modules auto{detected} or name existing layers",
        )


@dataclass
class QuantizationChoice:
    mode: str  # "4bit" | "8bit" | "none"
    reason: str
    compute_dtype: str


def bitsandbytes_support() -> dict[str, Any]:
    """Whether bitsandbytes is installed and on which devices it can run 4-bit layers."""
    try:
        import bitsandbytes as bnb
    except Exception as error:  # noqa: BLE001 - a broken native library raises anything
        return {"installed": False, "version": None, "devices": [], "error": str(error).splitlines()[0] if str(error) else type(error).__name__}
    import torch

    devices = sorted(getattr(bnb, "supported_torch_devices", {"cuda"}))
    usable = [d for d in devices if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    return {"installed": True, "version": bnb.__version__, "devices": usable, "error": None}


def cpu_4bit_misfit(config: dict[str, Any]) -> str | None:
    """bitsandbytes' CPU 4-bit kernels need every quantized layer's sizes to be multiples of 64 (its block
    size); the reason this model's are not, or None."""
    hidden = config.get("hidden_size") or config.get("n_embd") or config.get("d_model")
    heads = config.get("num_attention_heads") or config.get("n_head") or config.get("num_heads")
    head_dim = config.get("head_dim") or (hidden // heads if hidden and heads else None)
    sizes = {
        "hidden_size": hidden,
        "intermediate_size": config.get("intermediate_size") or config.get("n_inner") or config.get("d_ff"),
        "key/value width": (config.get("num_key_value_heads") or heads or 0) * (head_dim or 0) or None,
    }
    for name, size in sizes.items():
        if isinstance(size, int) and size % 64 != 0:
            return f"its {name} is {size}, and bitsandbytes' CPU 4-bit kernels need multiples of 64"
    return None


def choose_quantization(requested: str, device: str, compute_dtype: str, config: dict[str, Any] | None = None) -> QuantizationChoice:
    support = bitsandbytes_support()
    supported = support["installed"] and device in support["devices"]
    misfit = cpu_4bit_misfit(config or {}) if device == "cpu" and requested in {"auto", "4bit"} else None
    if device == "cpu" and compute_dtype == "bfloat16":
        import torch

        if not torch.cpu._is_avx512_bf16_supported():  # noqa: SLF001 - the public check torch offers
            compute_dtype = "float32"
    if device == "cuda" and compute_dtype == "bfloat16":
        import torch

        if not torch.cuda.is_bf16_supported():
            # A T4 or V100: fp16 autocast with loss scaling instead (the trainer's fp16).
            compute_dtype = "float16"
    if requested == "none":
        return QuantizationChoice("none", "full-precision LoRA (--quantization none)", compute_dtype)
    if requested == "auto":
        if supported and misfit:
            return QuantizationChoice("none", f"full-precision LoRA: this model cannot run 4-bit on the CPU: {misfit}", compute_dtype)
        if supported:
            return QuantizationChoice("4bit", f"4-bit QLoRA (auto): bitsandbytes {support['version']} supports {device}", compute_dtype)
        why = "bitsandbytes is not installed" if not support["installed"] else f"bitsandbytes {support['version']} has no {device} support here"
        return QuantizationChoice("none", f"full-precision LoRA: {why}", compute_dtype)
    if not supported:
        why = support["error"] or ("not installed" if not support["installed"] else f"it supports {', '.join(support['devices']) or 'no device'} here, not {device}")
        raise WorkerError(
            f"--quantization {requested} needs bitsandbytes on {device}: {why}",
            hint="use --quantization auto or none, or install a bitsandbytes build for this device",
        )
    if misfit and requested == "4bit":
        raise WorkerError(f"--quantization 4bit cannot run on the CPU for this model: {misfit}", hint="use --quantization none (or auto)")
    label = "4-bit QLoRA" if requested == "4bit" else "8-bit LoRA"
    return QuantizationChoice(requested, f"{label} (--quantization {requested}): bitsandbytes {support['version']} on {device}", compute_dtype)


def load_tokenizer(base: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
    except Exception as error:  # noqa: BLE001
        raise BadInput(f"--base {base}: cannot load its tokenizer ({str(error).splitlines()[0]})") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    base: str,
    model_type: str,
    quantization: QuantizationChoice,
    device: str,
    gradient_checkpointing: bool,
    *,
    quant_type: str,
    double_quant: bool,
    seq2seq: bool | None = None,
    attn_implementation: str = "sdpa",
    strategy: str = "ddp",
):
    import torch

    from . import distributed
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, BitsAndBytesConfig

    dtype = getattr(torch, quantization.compute_dtype)
    kwargs: dict[str, Any] = {}
    if quantization.mode == "4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quant_type,
            bnb_4bit_use_double_quant=double_quant,
            bnb_4bit_compute_dtype=dtype,
            # FSDP shards flat parameters of one dtype: the packed 4-bit weights are stored as the compute dtype.
            **({"bnb_4bit_quant_storage": dtype} if strategy == "fsdp" else {}),
        )
    elif quantization.mode == "8bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    else:
        kwargs["dtype"] = dtype if device == "cuda" else torch.float32
    if seq2seq is None:
        seq2seq = model_type in SEQ2SEQ_TYPES
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    check_attn_implementation(attn_implementation)
    if attn_implementation != "sdpa":
        # sdpa is transformers' own choice where the architecture has it (eager where not): only another is passed.
        kwargs["attn_implementation"] = attn_implementation
    if device == "cpu":
        device_map: Any = "cpu"
    elif distributed.is_distributed():
        # Each process holds the whole model on its own GPU (DDP), or gets its shard from FSDP after loading.
        device_map = None if strategy == "fsdp" else {"": distributed.local_rank()}
    else:
        device_map = "auto"
    try:
        model = auto.from_pretrained(base, device_map=device_map, **kwargs)
    except Exception as error:  # noqa: BLE001
        raise BadInput(f"--base {base}: cannot load the model ({type(error).__name__}: {str(error).splitlines()[0]})") from error
    if quantization.mode in {"4bit", "8bit"}:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    if quantization.mode == "4bit" and device == "cpu":
        keep_cpu_4bit_trainable(model)
    return model


def check_attn_implementation(name: str) -> None:
    """flash-attention is a separate package built for the GPU: say so before loading the model."""
    if name != "flash_attention_2":
        return
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise BadInput("--attn-implementation flash_attention_2 needs a CUDA GPU", hint="use sdpa (the default) on this machine")
    if importlib.util.find_spec("flash_attn") is None:
        raise BadInput(
            "--attn-implementation flash_attention_2: the flash-attn package is not installed",
            hint="pip install flash-attn --no-build-isolation into the worker's Python (.venv), or use sdpa",
        )


def keep_cpu_4bit_trainable(model) -> None:
    """bitsandbytes repacks a CPU 4-bit layer's weights for inference the first time it runs in eval mode without
    gradients (the loss measured before training, an evaluation), and a repacked layer computes through a kernel
    with no backward: gradients stop flowing through it and training stalls. Training never wants that layout."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
