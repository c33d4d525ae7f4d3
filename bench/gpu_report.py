"""The result writer of bench/gpu.sh: reads what the product run and the baseline run measured and writes
OUT/gpu-<date>[-cpu-dry].json and the Markdown table beside it (.md), and prints the table.

Per system: tokens/s (non-padding tokens trained on / the trainer's train_runtime, as both runs define it), MFU
(tokens/s × 6·N / the device's peak dense bf16 FLOP/s, N the model's parameter count counted on the instantiated
model; 6·N is the usual forward + backward count, whatever gradient checkpointing recomputes or LoRA skips), peak
memory by one instrument for both (CUDA: torch.cuda.max_memory_allocated over the whole training process; CPU: the
process's peak RSS), and the ratios product / baseline. The goal line: product tokens/s at least 1.5× the
baseline's, at no more peak memory. A CPU dry run writes the same files, marked as a dry run, with MFU against no
peak (null) unless ATS_LORA_BENCH_PEAK_FLOPS names one, and judges no goal."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

GOAL_SPEEDUP = 1.5
# Peak dense bf16 tensor FLOP/s (no sparsity), by GPU model as torch.cuda.get_device_name names it; the first
# match wins, so the specific names come first.
PEAK_BF16 = [
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H200 NVL", 835e12),
    ("H100", 989e12),  # H100 SXM (HBM3)
    ("H200", 989e12),
    ("A100", 312e12),
]
INSTRUMENTS = {"cuda_allocated": "torch.cuda.max_memory_allocated, whole process", "process_max_rss": "peak RSS of the process"}
PACKAGES = ["torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets"]


def say(message: str) -> None:
    print(f"gpu-bench: {message}", file=sys.stderr, flush=True)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"gpu-bench: {path} is missing: the run that writes it did not finish") from None


def versions() -> dict:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["python"] = platform.python_version()
    return found


def device_info(kind: str) -> dict:
    override = os.environ.get("ATS_LORA_BENCH_PEAK_FLOPS")
    if kind == "cuda":
        import torch

        name = torch.cuda.get_device_name(0)
        info = {"kind": "cuda", "name": name, "cuda": torch.version.cuda, "memory_bytes": torch.cuda.get_device_properties(0).total_memory}
        match = next(((label, peak) for label, peak in PEAK_BF16 if label.lower() in name.lower()), None)
        info["peak_bf16_flops"], info["peak_flops_source"] = (match[1], f"table: {match[0]}") if match else (None, "unknown GPU: set ATS_LORA_BENCH_PEAK_FLOPS")
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        info = {"kind": "cpu", "name": name, "cores": os.cpu_count(), "peak_bf16_flops": None, "peak_flops_source": "a CPU dry run states no peak; ATS_LORA_BENCH_PEAK_FLOPS names one"}
    if override:
        info["peak_bf16_flops"], info["peak_flops_source"] = float(override), "ATS_LORA_BENCH_PEAK_FLOPS"
    return info


def product_runtime(run_dir: Path, metrics: dict) -> float | None:
    """The trainer's train_runtime of the product run (its loss curve's last summary), else tokens / tokens/s."""
    curve = run_dir / "loss_curve.jsonl"
    if curve.exists():
        for line in reversed(curve.read_text().splitlines()):
            entry = json.loads(line) if line.strip() else {}
            if "train_runtime" in entry:
                return entry["train_runtime"]
    tokens, rate = metrics.get("tokens"), metrics.get("tokens_per_second")
    return tokens / rate if tokens and rate else None


def product_system(run_dir: Path) -> dict:
    metrics = read_json(run_dir / "metrics.json")
    settings = {}
    if (run_dir / "training_args.json").exists():
        settings = json.loads((run_dir / "training_args.json").read_text())
    return {
        "what": "ats-lora train (the CLI and its Python worker: TRL SFTTrainer, PEFT, bitsandbytes)",
        "tokens": metrics.get("tokens"),
        "tokens_per_second": metrics.get("tokens_per_second"),
        "train_runtime": product_runtime(run_dir, metrics),
        "steps": metrics.get("steps"),
        "quantization": metrics.get("quantization"),
        # The worker's whole-process peak: CUDA's max allocated bytes, or the CPU process's max RSS, as the baseline's.
        "peak_memory_bytes": metrics.get("peak_memory_bytes"),
        "peak_memory_kind": metrics.get("peak_memory_kind"),
        "estimated_peak_memory_bytes": metrics.get("estimated_peak_memory_bytes"),
        "wall_seconds": metrics.get("wall_seconds"),
        "trainable_parameters": metrics.get("trainable_parameters"),
        "train_loss": metrics.get("train_loss"),
        "packing": settings.get("packing"),
        "attn_implementation": settings.get("attn_implementation"),
    }


def baseline_system(run_dir: Path) -> dict:
    metrics = read_json(run_dir / "metrics.json")
    return {"what": "transformers Trainer + PEFT get_peft_model + bitsandbytes (bench/gpu_baseline.py)", **{k: v for k, v in metrics.items() if k != "system"}}


def ratio(a, b):
    return round(a / b, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def gib(value) -> str:
    return f"{value / 2**30:.2f}" if isinstance(value, (int, float)) else "–"


def number(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def markdown(result: dict) -> str:
    product, baseline = result["systems"]["product"], result["systems"]["baseline"]
    ratios, settings, device, model = result["ratios"], result["settings"], result["device"], result["model"]
    peak = device["peak_bf16_flops"]
    title = "GPU benchmark" + (" — CPU DRY RUN (exercises the pipeline; not a measurement)" if result["dry_run"] else "")
    lines = [
        f"## {title}: {result['date']}",
        "",
        f"Device: {device['name']} ({device['kind']}); "
        + (f"MFU against a peak of {peak / 1e12:g} dense bf16 TFLOP/s ({device['peak_flops_source']})." if peak else f"no MFU ({device['peak_flops_source']})."),
        "Versions: " + ", ".join(f"{name} {version}" for name, version in result["versions"].items() if version) + ".",
        f"Model: {model['architecture']} from `{model['config']}` with random weights"
        + (f", shrunk ({', '.join(f'{k}={v}' for k, v in model['overrides'].items())})" if model["overrides"] else "")
        + f", N = {model['parameters']:,} parameters.",
        f"Settings: {settings['steps']} steps, batch {settings['batch_size']} × grad-accum {settings['grad_accum']}, sequence length {settings['max_seq_length']} "
        f"({result['data']['rows']} rows of {result['data']['min_row_tokens']}–{result['data']['max_row_tokens']} tokens), quantization {settings['quantization']}, "
        f"LoRA r {settings['lora_r']} / α {settings['lora_alpha']:g} / dropout {settings['lora_dropout']:g} on {settings['target_modules']}, lr {settings['lr']:g} "
        f"({settings['lr_scheduler']}, {settings['warmup_steps']} warm-up), gradient checkpointing; product --packing: {'yes' if settings['packing'] else 'no'}.",
        "",
        "| figure | product (`ats-lora train`) | baseline (Trainer + PEFT + bitsandbytes) | product / baseline |",
        "| --- | ---: | ---: | ---: |",
        f"| tokens/s | {number(product['tokens_per_second'])} | {number(baseline['tokens_per_second'])} | {number(ratios['tokens_per_second'], 2)}× |",
        f"| MFU (6·N·tokens/s ÷ peak) | {number(product['mfu'] * 100, 1) + ' %' if product['mfu'] is not None else '–'} | "
        f"{number(baseline['mfu'] * 100, 1) + ' %' if baseline['mfu'] is not None else '–'} | |",
        f"| peak memory, GiB ({INSTRUMENTS.get(result['memory_instrument'], result['memory_instrument'])}) | {gib(product['peak_memory_bytes'])} | {gib(baseline['peak_memory_bytes'])} | {number(ratios['peak_memory'], 2)}× |",
        f"| tokens trained on | {number(product['tokens'])} | {number(baseline['tokens'])} | |",
        f"| train runtime, s | {number(product['train_runtime'], 1)} | {number(baseline['train_runtime'], 1)} | |",
        f"| wall time of the run, s (loading, loss before/after, saving) | {number(product['wall_seconds'], 1)} | {number(baseline['wall_seconds'], 1)} | |",
        "",
        f"Goal: product tokens/s ≥ {GOAL_SPEEDUP}× the baseline's at no more peak memory — **{result['goal']['verdict']}**"
        + (f" ({result['goal']['why']})" if result["goal"].get("why") else "")
        + ".",
    ]
    if result["notes"]:
        lines += ["", *[f"- {note}" for note in result["notes"]]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["gpu", "cpu-dry"], required=True)
    parser.add_argument("--model", required=True, help="the random model's folder (bench_model.json)")
    parser.add_argument("--data", required=True, help="the training rows' folder (rows.json)")
    parser.add_argument("--product", required=True, help="the product run's output folder")
    parser.add_argument("--baseline", required=True, help="the baseline run's output folder")
    parser.add_argument("--settings", required=True, help="the run's settings as JSON")
    parser.add_argument("--timings", default="{}", help="seconds per stage of gpu.sh, as JSON")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    dry = args.mode == "cpu-dry"
    kind = "cpu" if dry else "cuda"
    stamp = json.loads((Path(args.model) / "bench_model.json").read_text())
    overrides = {k: v for k, v in stamp["config"].items() if k in {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim"}}
    settings = json.loads(args.settings)
    config_file = settings.pop("config")
    base_config = json.loads(Path(config_file).read_text())
    overrides = {k: v for k, v in overrides.items() if base_config.get(k) != v}
    rows = read_json(Path(args.data) / "rows.json")
    device = device_info(kind)
    product = product_system(Path(args.product))
    baseline = baseline_system(Path(args.baseline))
    parameters = stamp["parameters"]
    for system in (product, baseline):
        rate, peak = system.get("tokens_per_second"), device["peak_bf16_flops"]
        system["mfu"] = round(rate * 6 * parameters / peak, 4) if rate and peak else None
    notes = []
    same_instrument = product["peak_memory_kind"] == baseline.get("peak_memory_kind")
    if not same_instrument:
        notes.append(f"peak memory is not by one instrument (product: {product['peak_memory_kind']}; baseline: {baseline.get('peak_memory_kind')}): the memory ratio is left out")
    if product["tokens"] and baseline.get("tokens") and abs(product["tokens"] - baseline["tokens"]) > 0.01 * baseline["tokens"]:
        notes.append(f"the two runs trained on different token counts ({product['tokens']:,} vs {baseline['tokens']:,})")
    if product.get("steps") != baseline.get("steps"):
        notes.append(f"the two runs took different step counts ({product.get('steps')} vs {baseline.get('steps')})")
    if kind == "cuda" and product.get("reported_peak_memory_bytes") is not None:
        notes.append(
            f"the worker's own metrics.json reports {gib(product['reported_peak_memory_bytes'])} GiB: the training loop's CUDA peak over the peak before it "
            f"(the baseline's figure of that kind: {gib(baseline.get('peak_memory_train_over_pretrain_bytes'))} GiB)"
        )
    if dry:
        notes.append("CPU dry run: a shrunk model, a few steps, short rows; the figures only show that the pipeline works")
    ratios = {"tokens_per_second": ratio(product.get("tokens_per_second"), baseline.get("tokens_per_second")), "peak_memory": ratio(product["peak_memory_bytes"], baseline.get("peak_memory_bytes")) if same_instrument else None}
    faster = ratios["tokens_per_second"] is not None and ratios["tokens_per_second"] >= GOAL_SPEEDUP
    leaner = ratios["peak_memory"] is not None and ratios["peak_memory"] <= 1.0
    would_pass = faster and leaner
    if dry:
        goal = {"pass": None, "would_pass": would_pass, "verdict": "not judged (CPU dry run)"}
    elif ratios["peak_memory"] is None or ratios["tokens_per_second"] is None:
        goal = {"pass": None, "would_pass": None, "verdict": "UNKNOWN", "why": "a ratio is missing (see the notes)"}
    else:
        why = [] if would_pass else [w for w, bad in ((f"tokens/s ratio {ratios['tokens_per_second']} < {GOAL_SPEEDUP}", not faster), (f"memory ratio {ratios['peak_memory']} > 1", not leaner)) if bad]
        goal = {"pass": would_pass, "verdict": "PASS" if would_pass else "FAIL", "why": "; ".join(why) if why else None}
    goal.update(speedup_wanted=GOAL_SPEEDUP, memory_ratio_wanted=1.0)
    today = dt.date.today().isoformat()
    result = {
        "benchmark": "bench/gpu.sh",
        "date": today,
        "mode": args.mode,
        "dry_run": dry,
        "device": device,
        "versions": versions(),
        "model": {"config": config_file, "architecture": stamp.get("architecture"), "overrides": overrides, "parameters": parameters, "dtype": stamp.get("dtype")},
        "settings": settings,
        "data": {key: rows[key] for key in ("rows", "tokens", "min_row_tokens", "max_row_tokens")},
        "systems": {"product": product, "baseline": baseline},
        "memory_instrument": product["peak_memory_kind"] if same_instrument else "not one instrument",
        "ratios": ratios,
        "goal": goal,
        "timings_seconds": json.loads(args.timings),
        "notes": notes,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"gpu-{today}" + ("-cpu-dry" if dry else "")
    table = markdown(result)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{name}.md").write_text(table)
    print(table)
    say(f"wrote {out / (name + '.json')} and {out / (name + '.md')}")


if __name__ == "__main__":
    main()
