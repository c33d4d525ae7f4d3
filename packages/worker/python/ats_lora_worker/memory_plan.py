"""Will a training run fit? The peak memory per device of a LoRA/QLoRA run, estimated from the model's
config.json alone: the model is built on the meta device (no weights are loaded), its parameters are counted
as this stack holds them, and the step's saved activations follow a per-layer formula.

The estimate is a sum of separate figures, each per device:
- weights: the base model as loaded (4-bit, 8-bit or full precision), with the parameters bitsandbytes leaves
  unquantized in fp32 (PEFT's prepare_model_for_kbit_training casts them);
- lora, gradients, optimizer: the adapters, their gradients and AdamW's two states, in the adapters' dtype;
- activations: what autograd saves for the backward pass (layer_activation_bytes), for rows as long as
  --max-seq-length;
- logits: the LM head's fp32 output and its gradient;
- runtime: on a CPU, the process's memory with its libraries loaded (the CPU peak is the process's peak
  resident memory); 0 on CUDA, whose peak is torch's allocated memory.
The plan compares the total with the free memory and, where it does not fit, re-plans with one setting changed
at a time to name what would help most."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from .contracts.protocol import Emit
from .contracts.protocol_types import PlanMemoryParams, PlanMemoryResult, TrainParams
from .errors import WorkerError
from .gguf_base import training_folder
from .modeling import QuantizationChoice, check_target_modules, choose_quantization, detect_target_modules, is_seq2seq, read_model_config

# How far a run's measured peak may lie from the estimate, relative to the estimate. Measured on a CPU (2 x86
# cores with AVX-512 BF16; a fresh worker training 3-4 steps; VmHWM against the estimate), with the CPU's
# default SFT head (lm_head_positions answers): the tiny model at 4 × 128 tokens 5% above it in fp32 (with or
# without gradient checkpointing) and 11% above with bf16 autocast or 4-bit; SmolLM2-135M at 4 × 256 tokens 4%
# above in bf16, 19% in fp32, 23% in fp32 with gradient checkpointing. What the estimate leaves out: the
# tokenizer, dataset and trainer, and above all glibc's malloc keeping the step's freed temporaries (its mmap
# threshold rises to the size of freed blocks, so activation-sized blocks come from the heap and stay; with a
# fixed MALLOC_MMAP_THRESHOLD_ SmolLM2's step grew by 961 MiB, its activations estimated at 933). The logits figure
# over-counts an SFT run (see the notes), which offsets part of it. Not measured on CUDA.
MARGIN = 0.25

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# bitsandbytes' 4-bit layout: one absmax per block of 64 weights; with double quantization the absmax values
# are themselves stored as uint8 with one fp32 absmax per block of 256 of them.
BLOCKSIZE = 64
NESTED_BLOCKSIZE = 256
# The architectures whose decoder block the activation formula follows (RMSNorm, attention, gated MLP).
LLAMA_STYLE = {"llama", "mistral", "qwen2", "qwen3"}
# Where a LoRA layer's input comes from in a Llama-style block: layers that read the same tensor share it.
LORA_INPUT_SOURCE = {
    "q_proj": "attention_norm",
    "k_proj": "attention_norm",
    "v_proj": "attention_norm",
    "qkv_proj": "attention_norm",
    "o_proj": "attention_output",
    "gate_proj": "mlp_norm",
    "up_proj": "mlp_norm",
    "gate_up_proj": "mlp_norm",
    "down_proj": "mlp_product",
}


@dataclass(frozen=True)
class RunSettings:
    """What the estimate depends on, resolved: the quantization mode and compute dtype as choose_quantization
    left them, and the LoRA target module names."""

    device: str  # "cuda" | "cpu"
    quantization: str  # "4bit" | "8bit" | "none"
    compute_dtype: str
    double_quant: bool
    lora_r: int
    target_modules: tuple[str, ...]
    lora_top_layers: int | None
    lora_dropout: float
    max_seq_length: int
    batch_size: int
    gradient_checkpointing: bool
    attn_implementation: str
    devices: int
    strategy: str  # "ddp" | "fsdp"


@dataclass(frozen=True)
class LinearLayer:
    name: str
    in_features: int
    out_features: int
    quantized: bool

    @property
    def parameters(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True)
class Dimensions:
    """The sizes the activation formula reads, from the model's (text) config."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    head_dim: int
    kv_heads: int
    vocab: int


@dataclass(frozen=True)
class Inventory:
    """The model's parameters as a run holds them, read off its skeleton on the meta device."""

    seq2seq: bool
    total: int  # every parameter, tied ones once
    linears: tuple[LinearLayer, ...]
    lora_targets: tuple[LinearLayer, ...]  # the Linear layers PEFT puts adapters on
    dimensions: Dimensions

    @property
    def quantized(self) -> int:
        return sum(layer.parameters for layer in self.linears if layer.quantized)


@dataclass(frozen=True)
class Dtypes:
    """Bytes per element of what a run holds, as transformers, PEFT, TRL and bitsandbytes leave them."""

    autocast: bool  # the trainer's bf16 (or fp16 on CUDA) mixed precision
    weight: int  # the unquantized parameters
    residual: int  # the hidden states between layers, and the norms' outputs
    linear_output: int  # a frozen Linear layer's output
    attention: int  # q, k, v and the output as the attention kernel gets them
    lora: int  # the adapters, their gradients and optimizer states
    lora_input: int  # the copy of its input an adapter saves


def dtypes(settings: RunSettings, seq2seq: bool) -> Dtypes:
    quantized = settings.quantization != "none"
    compute = DTYPE_BYTES[settings.compute_dtype]
    # The trainer's bf16 flag (a CPU keeps bfloat16 only where it has AVX-512 BF16), or fp16 on a GPU without bf16.
    autocast = settings.compute_dtype == "bfloat16" or (settings.compute_dtype == "float16" and settings.device == "cuda")
    # prepare_model_for_kbit_training casts what bitsandbytes left (embeddings, norms, LM head) to fp32;
    # load_model loads a full-precision model in the compute dtype on CUDA, in fp32 on a CPU.
    weight = 4 if quantized or settings.device == "cpu" else compute
    # bitsandbytes' layers return their input's dtype (the fp32 hidden states); under autocast a plain Linear
    # returns the autocast dtype, and the attention kernels run in it.
    linear_output = weight if quantized else (2 if autocast else weight)
    attention = 2 if autocast else linear_output
    # TRL's SFT, DPO and KTO trainers cast a quantized model's trainable parameters to bf16 (sft_trainer.py, "the
    # PEFT adapter weights are converted to bf16"); PEFT upcasts adapters to fp32 otherwise, and the seq2seq recipe
    # calls get_peft_model itself.
    lora = 2 if quantized and not seq2seq else 4
    return Dtypes(autocast, weight, weight, linear_output, attention, lora, 2 if autocast else lora)


# -- parameter inventory ---------------------------------------------------------------------------------------


def inventory(config: dict[str, Any], settings: RunSettings) -> Inventory:
    return _inventory(json.dumps(config, sort_keys=True), settings.quantization, settings.target_modules, settings.lora_top_layers)


@lru_cache(maxsize=4)
def _inventory(config_json: str, quantization: str, targets: tuple[str, ...], top_layers_count: int | None) -> Inventory:
    """Builds the model on the meta device and, for a 4/8-bit run, applies transformers' own bitsandbytes
    quantizer to it, as from_pretrained does before loading weights: the Linear layers it replaces are the ones
    quantized (all but the output embedding, tied weights and the model's _keep_in_fp32_modules)."""
    import torch
    from peft import LoraConfig
    from peft.tuners.tuners_utils import check_target_module_exists
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, BitsAndBytesConfig
    from transformers.pytorch_utils import Conv1D

    from .training import top_layers

    config = json.loads(config_json)
    seq2seq = is_seq2seq(config)
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    with torch.device("meta"):
        model = auto.from_config(AutoConfig.for_model(**config))
    quantized_types: tuple[type, ...] = ()
    if quantization != "none":
        import bitsandbytes as bnb
        from transformers.quantizers import AutoHfQuantizer

        bnb_config = BitsAndBytesConfig(load_in_4bit=True) if quantization == "4bit" else BitsAndBytesConfig(load_in_8bit=True)
        AutoHfQuantizer.from_config(bnb_config).preprocess_model(model, device_map=None)
        quantized_types = (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
    check_target_modules(model, list(targets), config.get("model_type", ""))
    lora = LoraConfig(r=1, target_modules=list(targets), layers_to_transform=top_layers(model, top_layers_count))
    linears, lora_targets = [], []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            layer = LinearLayer(name, module.in_features, module.out_features, isinstance(module, quantized_types))
        elif isinstance(module, Conv1D):  # GPT-2's linear layers: weight (in, out)
            layer = LinearLayer(name, module.weight.shape[0], module.weight.shape[1], isinstance(module, quantized_types))
        else:
            continue
        linears.append(layer)
        if check_target_module_exists(lora, name):
            lora_targets.append(layer)
    total = sum(parameter.numel() for parameter in model.parameters())
    return Inventory(seq2seq, total, tuple(linears), tuple(lora_targets), _dimensions(model.config, seq2seq))


def _dimensions(config: Any, seq2seq: bool) -> Dimensions:
    text = config.get_text_config()
    hidden = text.hidden_size
    heads = text.num_attention_heads
    intermediate = next((value for key in ("intermediate_size", "d_ff", "n_inner", "ffn_dim") if (value := getattr(text, key, None))), 4 * hidden)
    layers = text.num_hidden_layers
    if seq2seq:  # the encoder's layers and the decoder's
        layers += getattr(text, "num_decoder_layers", None) or getattr(text, "decoder_layers", 0)
    head_dim = getattr(text, "head_dim", None) or getattr(text, "d_kv", None) or hidden // heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    return Dimensions(hidden, intermediate, layers, heads, head_dim, kv_heads, text.vocab_size)


# -- bytes -----------------------------------------------------------------------------------------------------


def weight_bytes(model: Inventory, settings: RunSettings, types: Dtypes) -> int:
    """The base model as loaded: 4-bit weights with bitsandbytes' quantization state, 8-bit weights with one fp32
    scale per output row, or every parameter in the unquantized dtype."""
    quantized = [layer for layer in model.linears if layer.quantized] if settings.quantization != "none" else []
    unquantized = model.total - sum(layer.parameters for layer in quantized)
    packed = 0
    for layer in quantized:
        if settings.quantization == "4bit":
            blocks = math.ceil(layer.parameters / BLOCKSIZE)
            state = blocks + 4 * math.ceil(blocks / NESTED_BLOCKSIZE) if settings.double_quant else 4 * blocks
            packed += math.ceil(layer.parameters / 2) + state
        else:
            packed += layer.parameters + 4 * layer.out_features
    return packed + unquantized * types.weight


def layer_activation_bytes(dimensions: Dimensions, settings: RunSettings, types: Dtypes, lora_layers: list[LinearLayer], layer_linear_parameters: int) -> int:
    """What autograd saves for the backward pass in one decoder layer (RMSNorm, attention, RMSNorm, gated MLP:
    Llama, Mistral), over T = batch × sequence tokens. Frozen Linear layers save nothing (their weight needs no
    gradient, and their input's gradient needs only the weight). Per token, in bytes:
    - each RMSNorm: its input in fp32 (it computes in fp32) and the fp32 reciprocal RMS: 2 × (4H + 4);
    - attention, sdpa or flash-attention: q, k and v after RoPE and the output in the attention dtype a, and the
      fp32 log-sum-exp per head: a(2·Hq + 2·KV) + 4·heads (no S² term);
    - attention, eager: q, the key and value repeated to every head, and the output: 4·Hq·a; the fp32 softmax over
      S keys per head: 4·heads·S, and its cast to a where a is not fp32: a·heads·S;
    - gated MLP: the gate's output (SiLU's input), SiLU's output and the up projection's: 3·I·m (m: a Linear
      layer's output dtype);
    - each adapter: lora_A's input, a copy in the adapter-input dtype where it needs a cast (else the source
      tensor, once for the layers that read it), and lora_B's input (r values); with dropout, the dropout's
      output and its mask instead of the shared input (a 1-byte mask on CUDA; a CPU's dropout multiplies by a
      noise tensor in its input's dtype, the adapters' once PEFT has cast it).
    Under autocast with fp32 weights (a full-precision model on a CPU, fp32 adapters) each weight the layer
    multiplies by is also saved as a 2-byte copy. Checked against the saved tensors of the tiny model's layers
    (test_memory_plan.py)."""
    tokens = settings.batch_size * settings.max_seq_length
    hidden, heads, a = dimensions.hidden, dimensions.heads, types.attention
    attention_width, kv_width = heads * dimensions.head_dim, dimensions.kv_heads * dimensions.head_dim
    per_token = 2 * (4 * hidden + 4) + 3 * dimensions.intermediate * types.linear_output
    if settings.attn_implementation == "eager":
        per_token += 4 * attention_width * a + heads * settings.max_seq_length * (4 + (a if a != 4 else 0))
    else:
        per_token += a * (2 * attention_width + 2 * kv_width) + 4 * heads
    source_bytes = {"attention_norm": types.residual, "attention_output": a, "mlp_norm": types.residual, "mlp_product": types.linear_output}
    shared_sources: set[str] = set()
    for layer in lora_layers:
        short = layer.name.rsplit(".", 1)[-1]
        source = LORA_INPUT_SOURCE.get(short, short)
        per_token += settings.lora_r * types.lora_input
        if settings.lora_dropout > 0:
            mask = 1 if settings.device == "cuda" else types.lora
            per_token += layer.in_features * (types.lora_input + mask)
            continue
        # A copy per adapter where the input is not in the dtype lora_A multiplies in, and always for a plain (not
        # bitsandbytes) LoRA layer under autocast: PEFT casts its input to the fp32 adapters, autocast casts it back.
        copied = source_bytes.get(source, types.residual) != types.lora_input or (types.autocast and settings.quantization == "none")
        if copied:
            per_token += layer.in_features * types.lora_input
        elif source not in shared_sources:
            shared_sources.add(source)
            # The attention output is saved by the attention kernel already.
            per_token += 0 if source == "attention_output" else layer.in_features * source_bytes.get(source, types.residual)
    weight_copies = 0
    if types.autocast:
        frozen = layer_linear_parameters if settings.quantization == "none" and types.weight == 4 else 0
        adapters = sum(settings.lora_r * (layer.in_features + layer.out_features) for layer in lora_layers) if types.lora == 4 else 0
        weight_copies = 2 * (frozen + adapters)
    return tokens * per_token + weight_copies


def activation_bytes(model: Inventory, settings: RunSettings, types: Dtypes) -> int:
    """The step's saved activations. With gradient checkpointing every layer keeps only its input and one layer
    at a time is recomputed with its full activations; without, every layer from the lowest adapted one up keeps
    its full activations (below it nothing needs a gradient). Plus the final norm's input, and for 4-bit the
    largest quantized layer's weight dequantized to the compute dtype for its matmul."""
    dimensions = model.dimensions
    tokens = settings.batch_size * settings.max_seq_length
    by_layer: dict[str, list[LinearLayer]] = {}
    for layer in model.lora_targets:
        by_layer.setdefault(_layer_prefix(layer.name), []).append(layer)
    linear_parameters: dict[str, int] = {}
    for layer in model.linears:
        prefix = _layer_prefix(layer.name)
        linear_parameters[prefix] = linear_parameters.get(prefix, 0) + layer.parameters
    adapted = max(
        (layer_activation_bytes(dimensions, settings, types, layers, linear_parameters[prefix]) for prefix, layers in by_layer.items()),
        default=0,
    )
    if settings.gradient_checkpointing:
        layers = dimensions.layers * tokens * dimensions.hidden * types.residual + adapted
    else:
        layers = (settings.lora_top_layers or dimensions.layers) * adapted
    final_norm = tokens * (4 * dimensions.hidden + 4)
    dequantized = 0
    if settings.quantization == "4bit":
        dequantized = max((layer.parameters for layer in model.linears if layer.quantized), default=0) * DTYPE_BYTES[settings.compute_dtype]
    return layers + final_norm + dequantized


def _layer_prefix(name: str) -> str:
    """model.layers.31.self_attn.q_proj → model.layers.31: the block a layer belongs to."""
    match = re.match(r"(.*?\.\d+)\.", name)
    return match.group(1) if match else name


def logits_bytes(model: Inventory, settings: RunSettings, types: Dtypes) -> int:
    """The fp32 logits over the vocabulary and their gradient; under autocast an fp32 LM head's weight is also
    saved as a 2-byte copy."""
    dimensions = model.dimensions
    logits = 2 * settings.batch_size * settings.max_seq_length * dimensions.vocab * 4
    head_copy = 2 * dimensions.vocab * dimensions.hidden if types.autocast and types.weight == 4 else 0
    return logits + head_copy


def estimate(config: dict[str, Any], settings: RunSettings, runtime_bytes: int) -> tuple[dict[str, int], dict[str, int]]:
    """(parameters, bytes per device) of a run."""
    model = inventory(config, settings)
    types = dtypes(settings, model.seq2seq)
    lora_parameters = sum(settings.lora_r * (layer.in_features + layer.out_features) for layer in model.lora_targets)
    # FSDP shards parameters, gradients and optimizer state across the devices; DDP keeps a whole copy on each.
    shards = settings.devices if settings.strategy == "fsdp" else 1
    sharded = {
        "weights": weight_bytes(model, settings, types),
        "lora": lora_parameters * types.lora,
        "gradients": lora_parameters * types.lora,
        # torch's AdamW keeps two states in each parameter's dtype.
        "optimizer": 2 * lora_parameters * types.lora,
    }
    memory = {name: math.ceil(value / shards) for name, value in sharded.items()}
    memory["activations"] = activation_bytes(model, settings, types)
    memory["logits"] = logits_bytes(model, settings, types)
    memory["runtime"] = runtime_bytes if settings.device == "cpu" else 0
    memory["total"] = sum(memory.values())
    quantized = model.quantized if settings.quantization != "none" else 0
    parameters = {"total": model.total, "quantized": quantized, "unquantized": model.total - quantized, "lora": lora_parameters}
    return parameters, memory


# -- the plan --------------------------------------------------------------------------------------------------


def plan_memory(
    config: dict[str, Any],
    settings: RunSettings,
    quantization: QuantizationChoice,
    *,
    runtime_bytes: int,
    free_bytes: int | None,
    four_bit_available: bool,
    device_count: int,
) -> PlanMemoryResult:
    """The estimate, whether it fits the free memory, and, where it does not, each setting that would help with
    the total it would leave, best first. `four_bit_available`: whether --quantization 4bit runs here;
    `device_count`: the GPUs there are (more --devices is advice only under FSDP, which shards)."""
    parameters, memory = estimate(config, settings, runtime_bytes)
    fits = None if free_bytes is None else memory["total"] <= free_bytes
    advice = [] if fits is not False else _advice(config, settings, runtime_bytes, free_bytes or 0, memory["total"], four_bit_available, device_count)
    return {
        "device": settings.device,
        "quantization": {"mode": quantization.mode, "reason": quantization.reason},
        "parameters": parameters,
        "bytes": memory,
        "free_bytes": free_bytes,
        "fits": fits,
        "advice": advice,
        "margin": MARGIN,
        "notes": _notes(config, settings, memory, free_bytes, runtime_bytes),
    }


def _advice(config: dict[str, Any], settings: RunSettings, runtime: int, free: int, total: int, four_bit_available: bool, device_count: int) -> list[dict[str, Any]]:
    """Each setting changed alone, re-planned; kept where it lowers the total, the lowest first."""

    def total_with(**change: Any) -> int:
        return estimate(config, replace(settings, **change), runtime)[1]["total"]

    def largest_fitting(values: range, key: str) -> int:
        """The largest value whose run fits (the total grows with it), else the smallest value."""
        low, high, best = 0, len(values) - 1, values[0]
        while low <= high:
            middle = (low + high) // 2
            if total_with(**{key: values[middle]}) <= free:
                best, low = values[middle], middle + 1
            else:
                high = middle - 1
        return best

    changes: list[tuple[str, str, dict[str, Any]]] = []
    if not settings.gradient_checkpointing:
        changes.append(("training.gradient_checkpointing", "turn on gradient checkpointing (training.gradient_checkpointing: true)", {"gradient_checkpointing": True}))
    if settings.batch_size > 1:
        batch = largest_fitting(range(1, settings.batch_size), "batch_size")
        changes.append(("training.batch_size", f"lower --batch-size to {batch} (raise --grad-accum to keep the effective batch)", {"batch_size": batch}))
    if settings.max_seq_length > 1:
        # Never below a quarter: shorter rows would lose much of their prompts.
        length = largest_fitting(range(max(1, settings.max_seq_length // 4), settings.max_seq_length), "max_seq_length")
        changes.append(("training.max_seq_length", f"lower --max-seq-length to {length}", {"max_seq_length": length}))
    if settings.attn_implementation == "eager":
        changes.append(("training.attn_implementation", "use sdpa attention (training.attn_implementation: sdpa)", {"attn_implementation": "sdpa"}))
    if settings.quantization != "4bit" and four_bit_available:
        changes.append(("model.quantization", "--quantization 4bit (QLoRA)", {"quantization": "4bit"}))
    if settings.devices > 1 and settings.strategy == "ddp":
        changes.append(("training.strategy", f"--strategy fsdp across the {settings.devices} devices (training.strategy)", {"strategy": "fsdp"}))
    if device_count > settings.devices:
        changes.append(("training.devices", f"--devices {device_count} --strategy fsdp: shard across all {device_count} GPUs", {"devices": device_count, "strategy": "fsdp"}))
    advice = [{"setting": setting, "change": text, "estimated_total_bytes": total_with(**change)} for setting, text, change in changes]
    return sorted((entry for entry in advice if entry["estimated_total_bytes"] < total), key=lambda entry: entry["estimated_total_bytes"])


def _notes(config: dict[str, Any], settings: RunSettings, memory: dict[str, int], free: int | None, runtime: int) -> list[str]:
    gib = 2**30
    notes = [
        f"activations and logits are for batches of {settings.batch_size} rows of --max-seq-length {settings.max_seq_length} tokens; shorter rows (without --packing) cost less",
        "logits: the whole fp32 logits and their gradient, as DPO and KTO hold them. SFT holds less on CUDA (TRL scores the answer"
        " positions in tiles) and on a CPU with training.lm_head_positions answers (the answer positions only), and more on a CPU"
        " with lm_head_positions all (TRL's tiles without Triton: 1 GiB more for SmolLM2-135M at 4 × 256 tokens)",
    ]
    if settings.device == "cuda":
        notes.append(
            "runtime is 0 on CUDA: torch.cuda.max_memory_allocated (the run's peak_memory_bytes) leaves out the CUDA context and the caching"
            " allocator's reserve; the free memory was read after this process created its context"
        )
    else:
        notes.append(f"runtime: the worker's resident memory with torch, transformers, peft, trl and datasets loaded ({runtime / gib:.2f} GiB); the CPU peak is the process's peak resident memory")
    if config.get("model_type") not in LLAMA_STYLE:
        notes.append(f"activations follow a Llama/Mistral decoder block; for {config.get('model_type')!r} models they are an approximation")
    if settings.strategy == "fsdp" and settings.devices > 1:
        notes.append(f"FSDP: weights, adapters, gradients and optimizer state are divided by the {settings.devices} devices; each device also gathers one layer's weights at a time, not counted")
    if free is not None and memory["total"] <= free < memory["total"] * (1 + MARGIN):
        notes.append(f"tight: the free memory is within the estimate's margin ({MARGIN:.0%}) of the total")
    return notes


# -- measuring this machine ------------------------------------------------------------------------------------


def measure_runtime_bytes() -> int:
    """The process's resident memory with the libraries a training run imports loaded: on a CPU the run's peak is
    the process's peak resident memory, and this is the part of it that is neither model nor data."""
    import datasets  # noqa: F401 - imported for its resident size
    import peft  # noqa: F401
    import psutil  # accelerate's dependency
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401

    return psutil.Process().memory_info().rss


def measure_free_bytes(device: str, devices: int) -> int:
    """CUDA: the least free memory of the GPUs the run uses; CPU: MemAvailable (what the kernel can give without
    swapping)."""
    if device == "cuda":
        import torch

        return min(torch.cuda.mem_get_info(index)[0] for index in range(min(devices, torch.cuda.device_count())))
    import psutil

    return psutil.virtual_memory().available


def run_settings(params: TrainParams | PlanMemoryParams, config: dict[str, Any], device: str, quantization: QuantizationChoice, devices: int) -> RunSettings:
    """The settings of a train or plan_memory request, resolved as training resolves them."""
    targets = detect_target_modules(config.get("model_type", "")) if params.target_modules == "auto" else list(params.target_modules)
    return RunSettings(
        device=device,
        quantization=quantization.mode,
        compute_dtype=quantization.compute_dtype,
        double_quant=params.bnb_4bit_double_quant,
        lora_r=params.lora_r,
        target_modules=tuple(targets),
        lora_top_layers=params.lora_top_layers,
        lora_dropout=params.lora_dropout or 0.0,
        max_seq_length=params.max_seq_length,
        batch_size=params.batch_size,
        gradient_checkpointing=params.gradient_checkpointing,
        attn_implementation=params.attn_implementation,
        devices=devices,
        strategy=params.strategy,
    )


def training_estimate(params: TrainParams, config: dict[str, Any], device: str, quantization: QuantizationChoice, devices: int) -> dict[str, int]:
    """The bytes per device of a train request's run, for its metrics beside the measured peak."""
    settings = run_settings(params, config, device, quantization, devices)
    return estimate(config, settings, measure_runtime_bytes() if device == "cpu" else 0)[1]


def plan(params: PlanMemoryParams, emit: Emit) -> PlanMemoryResult:
    """The plan_memory method: the run's settings resolved as train resolves them (a GGUF base's prepared
    folder, choose_quantization), planned on this machine's device."""
    import torch

    base = training_folder(params.base, emit)
    config = read_model_config(base)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    quantization = choose_quantization(params.quantization, device, params.compute_dtype, config)
    settings = run_settings(params, config, device, quantization, params.devices)
    try:
        choose_quantization("4bit", device, params.compute_dtype, config)
        four_bit_available = True
    except WorkerError:
        four_bit_available = False
    return plan_memory(
        config,
        settings,
        quantization,
        runtime_bytes=measure_runtime_bytes() if device == "cpu" else 0,
        free_bytes=measure_free_bytes(device, params.devices),
        four_bit_available=four_bit_available,
        device_count=torch.cuda.device_count() if device == "cuda" else 1,
    )
