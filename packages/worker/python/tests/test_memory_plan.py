"""The memory plan: its figures for Mistral-7B and the tiny model, worked out by hand from their configs; the
activation formula against what autograd really saves; FSDP's sharding and the advice where a run does not
fit; and a real CPU training run whose measured peak lies within the plan's margin of its estimate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO, WorkerProcess, train_params

from ats_lora_worker.contracts import load_schema
from ats_lora_worker.memory_plan import MARGIN, RunSettings, dtypes, estimate, inventory, layer_activation_bytes, plan_memory
from ats_lora_worker.modeling import QuantizationChoice, bitsandbytes_support

MISTRAL = json.loads((REPO / "configs" / "models" / "mistral-7b.json").read_text())
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
QLORA_7B = RunSettings(
    device="cuda",
    quantization="4bit",
    compute_dtype="bfloat16",
    double_quant=True,
    lora_r=16,
    target_modules=ATTENTION,
    lora_top_layers=None,
    lora_dropout=0.0,
    max_seq_length=2048,
    batch_size=1,
    gradient_checkpointing=True,
    attn_implementation="sdpa",
    devices=1,
    strategy="ddp",
)
# The tiny model trained as test_training.py trains it: full precision on a CPU, every layer's attention adapted.
TINY_RUN = replace(QLORA_7B, device="cpu", quantization="none", compute_dtype="float32", max_seq_length=128, batch_size=4, gradient_checkpointing=False)
GIB = 2**30


def test_mistral_7b_qlora_figures_are_the_hand_computed_ones():
    vocab, hidden, intermediate, layers, heads, kv = 32000, 4096, 14336, 32, 32, 8 * 128
    tokens, r = 1 * 2048, 16
    parameters, memory = estimate(MISTRAL, QLORA_7B, runtime_bytes=0)

    quantized = layers * (2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * intermediate)
    # The embeddings and the LM head (not tied), and two RMSNorms per layer and the final one.
    unquantized = 2 * vocab * hidden + (2 * layers + 1) * hidden
    lora = layers * r * ((hidden + hidden) + 2 * (hidden + kv) + (hidden + hidden))
    assert parameters == {"total": quantized + unquantized, "quantized": quantized, "unquantized": unquantized, "lora": lora}

    # NF4 at half a byte per weight; double quantization: a uint8 absmax per 64 weights and an fp32 absmax per 256
    # of those; what bitsandbytes leaves is cast to fp32 by PEFT.
    assert memory["weights"] == quantized // 2 + quantized // 64 + 4 * (quantized // 64 // 256) + 4 * unquantized
    # TRL casts a quantized model's adapters to bf16: adapters, gradients and AdamW's two states at 2 bytes.
    assert memory["lora"] == memory["gradients"] == 2 * lora
    assert memory["optimizer"] == 2 * 2 * lora
    # Checkpointing: every layer's fp32 input, plus one layer recomputed whole. In it, per token: two RMSNorms
    # (fp32 input and reciprocal RMS), sdpa's bf16 q, k, v and output and its fp32 log-sum-exp per head, the MLP's
    # three fp32 outputs (bitsandbytes returns its input's dtype), lora_B's bf16 input for each of the four
    # adapters, and a bf16 copy of the fp32 norm output for q, k and v each (o_proj reads sdpa's bf16 output).
    one_layer = tokens * (2 * (4 * hidden + 4) + 2 * (2 * hidden + 2 * kv) + 4 * heads + 3 * intermediate * 4 + 4 * r * 2 + 3 * hidden * 2)
    final_norm = tokens * (4 * hidden + 4)
    dequantized_mlp_weight = hidden * intermediate * 2
    assert memory["activations"] == layers * tokens * hidden * 4 + one_layer + final_norm + dequantized_mlp_weight
    # fp32 logits and their gradient, and the bf16 copy autocast makes of the fp32 LM head.
    assert memory["logits"] == 2 * tokens * vocab * 4 + 2 * vocab * hidden
    assert memory["runtime"] == 0
    assert memory["total"] == sum(value for key, value in memory.items() if key != "total")
    # A 7B QLoRA at 2048 tokens, batch 1, with checkpointing: commonly 6–10 GB on a GPU.
    assert 6e9 < memory["total"] < 10e9, memory["total"] / GIB


def test_tiny_model_figures_are_the_hand_computed_ones(tiny_model):
    config = json.loads((tiny_model / "config.json").read_text())
    vocab, hidden, intermediate, layers = config["vocab_size"], config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"] * config["head_dim"]
    tokens, r = 4 * 128, 16
    parameters, memory = estimate(config, TINY_RUN, runtime_bytes=500 * 2**20)

    # Tied embeddings: the LM head is the embedding matrix, counted once.
    total = vocab * hidden + layers * (2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * intermediate + 2 * hidden) + hidden
    lora = layers * r * (2 * (hidden + hidden) + 2 * (hidden + kv))
    assert parameters == {"total": total, "quantized": 0, "unquantized": total, "lora": lora}
    assert memory["weights"] == 4 * total
    assert memory["lora"] == memory["gradients"] == 4 * lora
    assert memory["optimizer"] == 2 * 4 * lora
    # Without checkpointing every layer keeps its activations, all fp32: the norms, sdpa's q, k, v, output and
    # log-sum-exp, the MLP's three outputs, lora_B's input per adapter, and the norm output q, k and v share.
    one_layer = tokens * (2 * (4 * hidden + 4) + 4 * (2 * hidden + 2 * kv) + 4 * heads + 3 * intermediate * 4 + 4 * r * 4 + hidden * 4)
    assert memory["activations"] == layers * one_layer + tokens * (4 * hidden + 4)
    assert memory["logits"] == 2 * tokens * vocab * 4
    assert memory["runtime"] == 500 * 2**20
    assert memory["total"] == sum(value for key, value in memory.items() if key != "total")


CASES = [
    ("none", "float32", "sdpa", 0.0),
    ("none", "float32", "eager", 0.0),
    ("none", "bfloat16", "sdpa", 0.0),
    ("none", "float32", "sdpa", 0.1),
    ("4bit", "float32", "sdpa", 0.0),
    ("4bit", "bfloat16", "eager", 0.0),
]


@pytest.mark.parametrize(("quantization", "compute_dtype", "attention", "dropout"), CASES)
def test_the_activation_formula_is_what_autograd_saves(tiny_model, quantization, compute_dtype, attention, dropout):
    """The bytes of the tensors a decoder layer saves for the backward pass, with the model loaded and adapted
    as training does it, against layer_activation_bytes."""
    import torch
    from peft import LoraConfig, get_peft_model

    from ats_lora_worker.modeling import load_model

    if quantization == "4bit" and "cpu" not in bitsandbytes_support()["devices"]:
        pytest.skip("this bitsandbytes has no CPU support")
    config = json.loads((tiny_model / "config.json").read_text())
    settings = replace(TINY_RUN, quantization=quantization, compute_dtype=compute_dtype, attn_implementation=attention, lora_dropout=dropout, batch_size=2, max_seq_length=64)
    model = load_model(str(tiny_model), "mistral", QuantizationChoice(quantization, "test", compute_dtype), "cpu", False, quant_type="nf4", double_quant=True)
    model.set_attn_implementation(attention)
    model = get_peft_model(model, LoraConfig(r=settings.lora_r, lora_alpha=32, lora_dropout=dropout, target_modules=list(ATTENTION)))
    if quantization != "none":
        for parameter in model.parameters():  # what TRL's trainers do to a quantized model's adapters
            if parameter.requires_grad:
                parameter.data = parameter.data.to(torch.bfloat16)
    model.train()

    layer = model.get_base_model().model.layers[1]
    parameters = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
    saved: set[int] = set()
    in_layer = {"bytes": 0, "inside": False}
    layer.register_forward_pre_hook(lambda *_: in_layer.update(inside=True))
    layer.register_forward_hook(lambda *_: in_layer.update(inside=False))

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters and storage.data_ptr() not in saved:
            saved.add(storage.data_ptr())
            in_layer["bytes"] += storage.nbytes() if in_layer["inside"] else 0
        return tensor

    types = dtypes(settings, seq2seq=False)
    ids = torch.randint(4, config["vocab_size"], (settings.batch_size, settings.max_seq_length))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), torch.autocast("cpu", dtype=torch.bfloat16, enabled=types.autocast):
        model(input_ids=ids, labels=ids)

    plan = inventory(config, settings)
    adapters = [target for target in plan.lora_targets if target.name.startswith("model.layers.1.")]
    linear = sum(target.parameters for target in plan.linears if target.name.startswith("model.layers.1."))
    expected = layer_activation_bytes(plan.dimensions, settings, types, adapters, linear)
    assert in_layer["bytes"] == pytest.approx(expected, rel=0.02)


def test_fsdp_shards_the_model_and_advice_names_what_would_fit():
    ddp = estimate(MISTRAL, replace(QLORA_7B, devices=2), runtime_bytes=0)[1]
    fsdp = estimate(MISTRAL, replace(QLORA_7B, devices=2, strategy="fsdp"), runtime_bytes=0)[1]
    for part in ("weights", "lora", "gradients", "optimizer"):
        assert fsdp[part] == -(-ddp[part] // 2), part
    for part in ("activations", "logits", "runtime"):
        assert fsdp[part] == ddp[part], part

    heavy = replace(QLORA_7B, gradient_checkpointing=False, batch_size=4, max_seq_length=512, devices=2)
    choice = QuantizationChoice("4bit", "4-bit QLoRA (test)", "bfloat16")
    total = estimate(MISTRAL, heavy, runtime_bytes=0)[1]["total"]
    result = plan_memory(MISTRAL, heavy, choice, runtime_bytes=0, free_bytes=16 * GIB, four_bit_available=True, device_count=4)
    assert result["fits"] is False and result["bytes"]["total"] == total > 16 * GIB
    settings = [entry["setting"] for entry in result["advice"]]
    for setting in ("training.gradient_checkpointing", "training.batch_size", "training.max_seq_length", "training.strategy", "training.devices"):
        assert setting in settings, settings
    assert "model.quantization" not in settings  # 4-bit already
    totals = [entry["estimated_total_bytes"] for entry in result["advice"]]
    assert totals == sorted(totals) and all(value < total for value in totals)
    batch = next(entry for entry in result["advice"] if entry["setting"] == "training.batch_size")
    # The largest batch that fits: one more would not.
    fitting = int(batch["change"].split("--batch-size to ")[1].split()[0])
    assert batch["estimated_total_bytes"] <= 16 * GIB < estimate(MISTRAL, replace(heavy, batch_size=fitting + 1), runtime_bytes=0)[1]["total"]

    roomy = plan_memory(MISTRAL, QLORA_7B, choice, runtime_bytes=0, free_bytes=80 * GIB, four_bit_available=True, device_count=1)
    assert roomy["fits"] is True and roomy["advice"] == [] and roomy["margin"] == MARGIN


def test_a_cpu_run_peaks_within_the_margin_of_its_plan(tiny_model, pairs, tmp_path):
    """One worker process, as the CLI runs it: the plan_memory method, then the run it planned, whose max RSS
    (metrics.json's peak_memory_bytes) lies within MARGIN of the estimate the run itself wrote beside it."""
    schema = load_schema("protocol.schema.json")
    params = train_params(tiny_model, pairs, tmp_path / "run", max_steps=4)
    planned = {key: params[key] for key in schema["$defs"]["PlanMemoryParams"]["properties"] if key in params}
    worker = WorkerProcess()
    try:
        response, _ = worker.request("plan_memory", {**planned, "devices": 1})
        trained, _ = worker.request("train", params)
    finally:
        worker.close()
    result = response["result"]
    jsonschema.Draft202012Validator({**schema, "$ref": "#/$defs/PlanMemoryResult"}).validate(result)
    assert result["device"] == "cpu" and result["quantization"]["mode"] == "none"
    assert result["fits"] is True and result["free_bytes"] > result["bytes"]["total"]

    metrics = json.loads((Path(trained["result"]["output_dir"]) / "metrics.json").read_text())
    estimated, measured = metrics["estimated_peak_memory_bytes"], metrics["peak_memory_bytes"]
    assert metrics["memory_plan"]["total"] == estimated
    # The same settings planned twice: only the runtime, measured each time, may differ.
    assert {key: value for key, value in metrics["memory_plan"].items() if key not in ("runtime", "total")} == {
        key: value for key, value in result["bytes"].items() if key not in ("runtime", "total")
    }
    assert abs(measured - estimated) <= MARGIN * estimated, (measured / GIB, estimated / GIB)
