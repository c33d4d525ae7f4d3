#!/usr/bin/env bash
# bench/gpu.sh: 4-bit QLoRA training throughput and memory of `ats-lora train` against a plain transformers
# Trainer + PEFT + bitsandbytes baseline, on a Mistral-7B-architecture model with random weights
# (configs/models/mistral-7b.json; nothing downloaded), sequence length 2048, in one run. docs/benchmarks.md
# ("GPU benchmark: bench/gpu.sh") says what it measures; bash bench/gpu.sh --help says how to run it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
say() { echo "gpu-bench: $*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
  cat <<'EOF'
Usage: bash bench/gpu.sh [--cpu-dry] [--out DIR] [--work DIR] [--steps N] [--seq N] [--no-packing]

On one NVIDIA GPU (H100/H200 class), meant to take under 8 minutes (not yet timed on one): builds a
Mistral-7B-architecture model with random weights from configs/models/mistral-7b.json on the GPU (bf16, saved
as safetensors, cached in the work folder) with a BPE tokenizer trained on data/, writes SFT rows of the
bundled reviewed interactions, each filled to the sequence length, and trains 4-bit QLoRA on them twice with
the same settings: `ats-lora train` (the product) and bench/gpu_baseline.py (transformers Trainer + PEFT +
bitsandbytes). Writes OUT/gpu-<date>.json and OUT/gpu-<date>.md (the table, also printed): tokens/s, MFU,
peak memory, the ratios, and whether the goal (product tokens/s >= 1.5x the baseline's at no more memory) is
met. The goal's verdict never fails the script.

Options:
  --cpu-dry       the whole pipeline on the CPU in about a minute: the 7B config shrunk to about 18 million
                  parameters, quantization none, sequence length 128, 4 steps (what CI runs; no GPU needed)
  --out DIR       where the results go (default: bench/results; --cpu-dry: the work folder's results/)
  --work DIR      cache and run folder (default: ${XDG_CACHE_HOME:-~/.cache}/ats-lora/bench-gpu[-cpu-dry]);
                  the 7B model takes 14.5 GB there and is reused by later runs
  --steps N       optimizer steps of each run (default 30; --cpu-dry 4)
  --seq N         sequence length, tokens per row (default 2048; --cpu-dry 128)
  --batch-size N  rows per step (default 1)
  --grad-accum N  gradient accumulation steps (default 1)
  --no-packing    train the product without --packing
  -h, --help      this message

Needs: Node 20.19+ with the CLI built (pnpm install && pnpm build), and a Python with the worker's requirements
(scripts/python-env.sh makes .venv; on a machine with an NVIDIA GPU it installs PyPI's CUDA build of torch);
ATS_LORA_PYTHON points at another interpreter. ATS_LORA_BENCH_PEAK_FLOPS overrides the GPU's peak dense bf16
FLOP/s used for MFU (the table knows H100 SXM/PCIe/NVL, H200, A100).
EOF
}

dry=0
out=""
work=""
steps=""
seq=""
batch=1
accum=1
packing=1
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-dry) dry=1 ;;
    --out) out="${2:?--out needs a folder}"; shift ;;
    --work) work="${2:?--work needs a folder}"; shift ;;
    --steps) steps="${2:?--steps needs a number}"; shift ;;
    --seq) seq="${2:?--seq needs a number}"; shift ;;
    --batch-size) batch="${2:?--batch-size needs a number}"; shift ;;
    --grad-accum) accum="${2:?--grad-accum needs a number}"; shift ;;
    --no-packing) packing=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
for value in "${steps:-1}" "${seq:-1}" "$batch" "$accum"; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "--steps, --seq, --batch-size and --grad-accum take positive whole numbers, not '$value'"
done

if [ "$dry" = 1 ]; then
  mode=cpu-dry
  steps="${steps:-4}"
  seq="${seq:-128}"
  quantization=none
  work="${work:-${XDG_CACHE_HOME:-$HOME/.cache}/ats-lora/bench-gpu-cpu-dry}"
  # A dry run's figures are no measurement: they stay out of bench/results unless --out says otherwise.
  out="${out:-$work/results}"
  device=cpu
  dtype=float32
  # The 7B's architecture, vocabulary and config file, at a size two CPU cores train in seconds.
  shrink=(--set hidden_size=256 --set intermediate_size=768 --set num_hidden_layers=2 --set num_attention_heads=8 --set num_key_value_heads=4 --set head_dim=32)
else
  mode=gpu
  steps="${steps:-30}"
  seq="${seq:-2048}"
  quantization=4bit
  work="${work:-${XDG_CACHE_HOME:-$HOME/.cache}/ats-lora/bench-gpu}"
  out="${out:-$repo/bench/results}"
  device=cuda
  dtype=bfloat16
  shrink=()
fi
config="$repo/configs/models/mistral-7b.json"
rows=$((steps * batch * accum))
warmup=$(((steps + 9) / 10))
lr=2e-4
lora_r=16
lora_alpha=32
lora_dropout=0.05
targets=q_proj,k_proj,v_proj,o_proj
seed=42

# --- what the run needs -------------------------------------------------------------------------------------
python="${ATS_LORA_PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || command -v "$python" >/dev/null 2>&1 ||
  die "no Python environment at $python: run bash scripts/python-env.sh (it makes .venv with the worker's requirements), or set ATS_LORA_PYTHON"
# One interpreter start: the packages it lacks, else its CUDA device (or why there is none).
probe="$("$python" - <<'EOF' 2>/dev/null || echo "missing (the interpreter does not run)"
import importlib.util
missing = [name for name in ("torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "tokenizers", "yaml") if importlib.util.find_spec(name) is None]
if missing:
    print("missing", " ".join(missing))
else:
    import torch
    print("cuda", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
    print("torch", torch.__version__, "CUDA", torch.version.cuda or "none")
EOF
)"
case "$probe" in
  missing*) die "$python lacks: ${probe#missing }. Run bash scripts/python-env.sh, or point ATS_LORA_PYTHON at a Python with packages/worker/python/requirements.txt" ;;
esac
command -v node >/dev/null 2>&1 || die "node is missing: install Node.js 20.19 or newer, then pnpm install && pnpm build"
cli="$repo/packages/cli/dist/bin.js"
[ -f "$cli" ] || die "the CLI is not built ($cli is missing): run pnpm install && pnpm build"
if [ "$dry" = 0 ]; then
  cuda="$(sed -n 's/^cuda //p' <<<"$probe")"
  if [ -z "$cuda" ]; then
    die "no CUDA device visible to $python ($(sed -n 's/^torch //p' <<<"$probe")). On a GPU machine: nvidia-smi must list the GPU and torch must be a CUDA build (bash scripts/python-env.sh installs it there). Without a GPU: bash bench/gpu.sh --cpu-dry"
  fi
  say "GPU: $cuda"
fi
packing_flag=()
if [ "$packing" = 1 ]; then
  if node "$cli" train --help 2>/dev/null | grep -q -- "--packing"; then packing_flag=(--packing); else say "this CLI's train has no --packing: the product trains without it"; packing=0; fi
fi

# The work folder is the benchmark's own (its runs/ and data/ are replaced each time): a folder that holds anything
# else is refused.
if [ -d "$work" ] && [ -n "$(ls -A "$work")" ] && [ ! -f "$work/.ats-lora-bench-gpu" ]; then
  die "--work $work holds other files; name an empty or new folder, or one an earlier bench/gpu.sh run made"
fi
mkdir -p "$work" "$out"
touch "$work/.ats-lora-bench-gpu"
work="$(cd "$work" && pwd)"
out="$(cd "$out" && pwd)"
runs="$work/runs"
rm -rf "$runs"
mkdir -p "$runs"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
declare -A seconds
now() { date +%s.%N; }
begun="$(now)"
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Runs a stage with its output in LOG; on failure, its last lines and the log's path.
stage() {
  local name="$1" log="$2"
  shift 2
  local started
  started="$(now)"
  if ! "$@" >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "$name failed; its whole log: $log"
  fi
  seconds[$name]="$(elapsed "$started")"
}

# --- 1. the random model, with a BPE tokenizer trained on data/ ---------------------------------------------
model="$work/model-$mode"
say "1/4 random model from ${config#"$repo"/} on $device ($dtype)${shrink:+, shrunk for the dry run}, with a BPE tokenizer trained on data/"
stage model "$runs/model.log" "$python" "$repo/bench/random_model.py" --config "$config" --tokenizer-corpus "$repo/data" --out "$model" \
  --device "$device" --dtype "$dtype" "${shrink[@]}"
grep -E "^gpu-bench:" "$runs/model.log" >&2 || true

# --- 2. the training rows -----------------------------------------------------------------------------------
data="$work/data"
rm -rf "$data"
say "2/4 training rows: $rows SFT rows of the bundled reviewed interactions, each filled to $seq tokens"
stage data "$runs/data.log" "$python" "$repo/bench/gpu_data.py" --tokenizer "$model" --rows "$rows" --max-seq-length "$seq" --out "$data"
grep -E "^gpu-bench:" "$runs/data.log" >&2 || true

# --- 3. the product: ats-lora train -------------------------------------------------------------------------
say "3/4 product: ats-lora train --quantization $quantization, $steps steps of $batch x $accum rows at $seq tokens${packing_flag:+, --packing} (log: $runs/product.log)"
# Tracking is off for the run, and the settings flags do not name are pinned to the defaults the baseline shares.
stage product "$runs/product.log" env -u MLFLOW_TRACKING_URI \
  ATS_LORA_PYTHON="$python" \
  ATS_LORA_TRAINING__GRADIENT_CHECKPOINTING=true ATS_LORA_TRAINING__LR_SCHEDULER=cosine \
  node "$cli" --workdir "$work" --json train --base "$model" --training-data "$data" --output-dir "$runs/product" \
  --format sft --quantization "$quantization" --max-seq-length "$seq" --batch-size "$batch" --grad-accum "$accum" \
  --max-steps "$steps" --warmup-steps "$warmup" --lr "$lr" --lora-r "$lora_r" --lora-alpha "$lora_alpha" \
  --lora-dropout "$lora_dropout" --target-modules "$targets" --seed "$seed" "${packing_flag[@]}"
say "product: $(grep -oE '"tokens_per_second": [0-9.]+' "$runs/product/metrics.json" | head -n 1) in ${seconds[product]} s"

# --- 4. the baseline ----------------------------------------------------------------------------------------
say "4/4 baseline: transformers Trainer + PEFT + bitsandbytes, the same rows and settings (log: $runs/baseline.log)"
stage baseline "$runs/baseline.log" "$python" "$repo/bench/gpu_baseline.py" --model "$model" --data "$data" --out "$runs/baseline" \
  --max-seq-length "$seq" --steps "$steps" --batch-size "$batch" --grad-accum "$accum" --lr "$lr" --warmup-steps "$warmup" \
  --lr-scheduler cosine --lora-r "$lora_r" --lora-alpha "$lora_alpha" --lora-dropout "$lora_dropout" \
  --target-modules "$targets" --quantization "$quantization" --seed "$seed"
say "baseline: $(grep -oE '"tokens_per_second": [0-9.]+' "$runs/baseline/metrics.json" | head -n 1) in ${seconds[baseline]} s"

# --- 5. the results -----------------------------------------------------------------------------------------
settings="$(printf '{"config": "%s", "max_seq_length": %d, "steps": %d, "batch_size": %d, "grad_accum": %d, "lr": %s, "lr_scheduler": "cosine", "warmup_steps": %d, "lora_r": %d, "lora_alpha": %s, "lora_dropout": %s, "target_modules": "%s", "quantization": "%s", "packing": %s, "gradient_checkpointing": true, "seed": %d}' \
  "configs/models/mistral-7b.json" "$seq" "$steps" "$batch" "$accum" "$lr" "$warmup" "$lora_r" "$lora_alpha" "$lora_dropout" "$targets" "$quantization" \
  "$([ "$packing" = 1 ] && echo true || echo false)" "$seed")"
seconds[total]="$(elapsed "$begun")"
timings="{"
for name in "${!seconds[@]}"; do timings+="\"$name\": ${seconds[$name]}, "; done
timings="${timings%, }}"
cd "$repo"
"$python" "$repo/bench/gpu_report.py" --mode "$mode" --model "$model" --data "$data" --product "$runs/product" \
  --baseline "$runs/baseline" --settings "$settings" --timings "$timings" --out "$out"
