"""A model of a given architecture with random weights, made from its config.json alone (no download), for
bench/gpu.sh: e.g. configs/models/mistral-7b.json, built directly on the GPU in bf16 (seconds) and saved with
save_pretrained (safetensors), with a tokenizer whose ids all fall inside the config's vocabulary: a byte-level BPE
trained on the bundled data/ with the `tokenizers` package (as `ats-lora models create-tiny` makes the tiny model's:
<unk> <s> </s> <pad> as ids 0-3, Mistral's BOS and EOS ids, digits one token each, <s> opening every sequence),
or one copied from a folder (--tokenizer).

--set KEY=VALUE changes config keys (the CPU dry run shrinks the 7B's dimensions this way, keeping its architecture
and vocabulary). The folder is reused when its stamp (bench_model.json: the config as built, the tokenizer's hash)
matches, so a rerun does not build it again. bench_model.json also records the parameter count, counted on the
instantiated model, which the MFU figures use.

Usage: python bench/random_model.py --config FILE --out DIR [--tokenizer DIR | --tokenizer-corpus PATH ...]
       [--tokenizer-vocab N] [--device cuda|cpu] [--dtype bfloat16|float32] [--set KEY=VALUE ...] [--seed N]"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

STAMP = "bench_model.json"
# Bump when what this script writes changes, so cached folders are rebuilt.
VERSION = 1


def say(message: str) -> None:
    print(f"gpu-bench: {message}", file=sys.stderr, flush=True)


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "worker" / "python"))
from ats_lora_worker.tiny import TEXT_SUFFIXES  # noqa: E402 - the worker's package, beside this script


def corpus_files(sources: list[Path]) -> list[Path]:
    files = []
    for source in sources:
        files += [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.suffix in TEXT_SUFFIXES)
    return files


def tokenizer_hash(folder: Path | None, corpus: list[Path], vocab: int) -> str:
    """What the tokenizer is made from: a folder's tokenizer files, or the corpus and the vocabulary size."""
    digest = hashlib.sha256()
    if folder is not None:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            file = folder / name
            if file.exists():
                digest.update(name.encode() + b"\0" + file.read_bytes())
    else:
        digest.update(f"bpe {vocab}\0".encode())
        for file in corpus_files(corpus):
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def train_tokenizer(corpus: list[Path], vocab: int):
    """The tiny model's byte-level BPE scheme (the worker's own), trained on the corpus, for sequences of any length."""
    from ats_lora_worker.tiny import corpus_texts, train_tokenizer as train_bpe

    texts = [text for text in corpus_texts(corpus) if text.strip()]
    if not texts:
        raise SystemExit(f"gpu-bench: no text under {', '.join(map(str, corpus))} to train the tokenizer on")
    tokenizer = train_bpe(texts, vocab)
    tokenizer.model_max_length = 32768
    return tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="config.json of the architecture (e.g. configs/models/mistral-7b.json)")
    parser.add_argument("--tokenizer", help="folder whose tokenizer the model gets (default: train one on --tokenizer-corpus)")
    parser.add_argument("--tokenizer-corpus", action="append", default=[], help="text to train the BPE tokenizer on (repeatable; default: the bundled data/)")
    parser.add_argument("--tokenizer-vocab", type=int, default=8000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (JSON value)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config_dict = json.loads(Path(args.config).read_text())
    for item in args.set:
        key, _, value = item.partition("=")
        if not key or not _:
            raise SystemExit(f"gpu-bench: --set {item!r}: expected KEY=VALUE")
        config_dict[key] = parse_value(value)
    tokenizer_dir, out = (Path(args.tokenizer) if args.tokenizer else None), Path(args.out)
    corpus = [Path(p) for p in args.tokenizer_corpus] or [Path(__file__).resolve().parent.parent / "data"]
    want = {"version": VERSION, "config": config_dict, "dtype": args.dtype, "seed": args.seed, "tokenizer_sha256": tokenizer_hash(tokenizer_dir, corpus, args.tokenizer_vocab)}
    stamp = out / STAMP
    if stamp.exists():
        have = json.loads(stamp.read_text())
        if {key: have.get(key) for key in want} == want and any(out.glob("*.safetensors")):
            say(f"random model: reusing {out} ({have['parameters']:,} parameters)")
            return

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"gpu-bench: no CUDA device for the random model (torch {torch.__version__}); use --device cpu")
    if tokenizer_dir is not None:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        source = str(tokenizer_dir)
    else:
        tokenizer = train_tokenizer(corpus, args.tokenizer_vocab)
        source = f"a BPE tokenizer trained on {', '.join(map(str, corpus))}"
    config = AutoConfig.for_model(**{k: v for k, v in config_dict.items() if k != "architectures"})
    config.architectures = config_dict.get("architectures")
    if len(tokenizer) > config.vocab_size:
        raise SystemExit(f"gpu-bench: the tokenizer ({source}) has {len(tokenizer)} ids, more than the model's vocabulary of {config.vocab_size}")
    for name in ("bos", "eos", "pad"):
        token_id = getattr(tokenizer, f"{name}_token_id")
        if token_id is not None:
            setattr(config, f"{name}_token_id", token_id)

    started = time.monotonic()
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(args.seed)
    # Created where it will be saved from, in its final dtype: a 7B model's random init on a GPU takes seconds.
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    parameters = sum(p.numel() for p in model.parameters())
    say(
        f"random model: {config_dict.get('architectures', ['?'])[0]}, {parameters:,} parameters, {args.dtype} on {args.device} in"
        f" {time.monotonic() - started:.1f} s, tokenizer of {len(tokenizer):,} ids; saving to {out}"
    )
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    del model
    if args.device == "cuda":
        torch.cuda.empty_cache()
    stamp.write_text(json.dumps({**want, "parameters": parameters, "architecture": (config.architectures or ["?"])[0], "seconds": round(time.monotonic() - started, 1)}, indent=2) + "\n")
    say(f"random model: saved in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
