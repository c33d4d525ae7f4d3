"""GGUF base models, prepared once for training: transformers trains, generates, scores and merges from an HF
folder, so a GGUF base (a .gguf file, or a folder that holds one) is dequantized to an fp32 HF folder beside it
the first time it is used, and that folder is what every later load reads.

A stamp file in the prepared folder records the GGUF's size, mtime and sha256: a GGUF replaced in place is
prepared again; one merely touched (same hash) is not."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .contracts.protocol import Emit
from .contracts.protocol_types import PrepareBaseParams, PrepareBaseResult
from .errors import BadInput
from .files import replace_folder, staging_folder

MODEL_CARD = "model.json"
STAMP = "prepared-from-gguf.json"
GGUF_MAGIC = b"GGUF"


def gguf_file(model: str) -> Path | None:
    """The .gguf file of a GGUF base, or None when `model` is something else (an HF folder, a hub id)."""
    path = Path(model)
    if path.is_file():
        return path.resolve() if path.suffix == ".gguf" else None
    if not path.is_dir() or (path / "config.json").exists():
        return None
    card_file = path / MODEL_CARD
    if card_file.exists():
        try:
            card = json.loads(card_file.read_text())
        except (OSError, ValueError) as error:
            raise BadInput(f"{card_file}: not valid JSON ({error})", hint="restore it, or pull the model again") from error
        if isinstance(card, dict) and card.get("kind") == "base" and card.get("format") == "gguf":
            named = path / str(card.get("file", ""))
            if not named.is_file():
                raise BadInput(f"{card_file} names the GGUF file {card.get('file')!r}, which is missing", hint="pull the model again")
            return named.resolve()
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) > 1:
        raise BadInput(
            f"{path} holds {len(ggufs)} .gguf files ({', '.join(file.name for file in ggufs)}) and no model.json naming one",
            hint="pass the .gguf file itself",
        )
    return ggufs[0].resolve() if ggufs else None


def prepared_folder(model: str, gguf: Path) -> Path:
    """FOLDER/hf for a folder, F.hf beside a bare F.gguf."""
    path = Path(model)
    return (path.resolve() / "hf") if path.is_dir() else gguf.with_suffix(".hf")


def training_folder(model: str, emit: Emit | None = None) -> str:
    """The HF folder to load for `model`: the model itself unless it is a GGUF base, whose folder is prepared
    the first time."""
    return _ensure_prepared(model, emit)[0]


def prepare_base(params: PrepareBaseParams, emit: Emit) -> PrepareBaseResult:
    started = time.monotonic()
    folder, prepared = _ensure_prepared(params.model, emit)
    return {"model": params.model, "training_folder": folder, "prepared": prepared, "seconds": round(time.monotonic() - started, 3)}


def _ensure_prepared(model: str, emit: Emit | None) -> tuple[str, bool]:
    gguf = gguf_file(model)
    if gguf is None:
        return model, False
    folder = prepared_folder(model, gguf)
    if _is_current(folder, gguf):
        return str(folder), False
    _check_magic(gguf)
    say = emit or (lambda method, params: None)
    say("log", {"message": f"preparing {gguf} for training (once): GGUF → HF folder {folder}"})
    _prepare(gguf, folder, say)
    return str(folder), True


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fingerprint(gguf: Path) -> dict[str, Any]:
    status = gguf.stat()
    return {"size_bytes": status.st_size, "mtime_ns": status.st_mtime_ns}


def _is_current(folder: Path, gguf: Path) -> bool:
    """Whether `folder` was prepared from this GGUF: size and mtime first; the hash only when they differ."""
    stamp_file = folder / STAMP
    if not (folder / "config.json").exists() or not stamp_file.exists():
        return False
    try:
        stamp = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        return False
    now = _fingerprint(gguf)
    if stamp.get("size_bytes") == now["size_bytes"] and stamp.get("mtime_ns") == now["mtime_ns"]:
        return True
    if stamp.get("size_bytes") != now["size_bytes"] or stamp.get("sha256") != sha256_file(gguf):
        return False
    # The same bytes with a new mtime (copied, touched): remember the mtime so the next check is cheap again.
    _write_stamp(folder, {**stamp, **now})
    return True


def _check_magic(gguf: Path) -> None:
    with gguf.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise BadInput(f"{gguf} is not a GGUF file (it does not start with {GGUF_MAGIC!r})", hint="pull the model again, or pass another file")


def _prepare(gguf: Path, folder: Path, emit: Emit) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    total = 3
    emit("progress", {"stage": "prepare", "step": 0, "total": total})
    # Hashed before loading, so a GGUF replaced while it is being prepared is not stamped with the new bytes' hash.
    fingerprint = {**_fingerprint(gguf), "sha256": sha256_file(gguf)}
    try:
        with _tensor_name_maps_built_once():
            quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as error:  # noqa: BLE001 - a truncated file fails in the reader with anything from IndexError to ValueError
        first = str(error).splitlines()[0] if str(error) else ""
        raise BadInput(
            f"cannot read the GGUF model {gguf} ({type(error).__name__}: {first})",
            hint="the file is truncated, corrupt or of an architecture transformers cannot load: pull it again",
        ) from error
    emit("progress", {"stage": "prepare", "step": 1, "total": total})
    # A model loaded from GGUF carries a quantization config and refuses save_pretrained; the same architecture
    # built from a plain config takes its (dequantized) weights and saves as any HF model.
    config = {key: value for key, value in quantized.config.to_dict().items() if key != "quantization_config"}
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config), dtype=torch.float32)
    # strict: a weight the GGUF reader named differently must fail here, not train from random values.
    model.load_state_dict(quantized.state_dict())
    del quantized
    if model.generation_config.eos_token_id is None and tokenizer.eos_token_id is not None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    emit("progress", {"stage": "prepare", "step": 2, "total": total})
    staging = staging_folder(folder)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        _write_stamp(staging, {"gguf": str(gguf), **fingerprint, "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    emit("progress", {"stage": "prepare", "step": total, "total": total})


@contextlib.contextmanager
def _tensor_name_maps_built_once():
    """transformers' GGUF loader asks gguf-py for the architecture's tensor-name map once per submodule (about 400
    times for a 30-layer model, 8 of the 23 seconds SmolLM2-135M takes to load on 2 cores); the map depends only
    on its arguments, so while loading it is built once per argument set."""
    import gguf

    original = gguf.get_tensor_name_map
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(original)
    try:
        yield
    finally:
        gguf.get_tensor_name_map = original


def _write_stamp(folder: Path, stamp: dict[str, Any]) -> None:
    (folder / f"{STAMP}.tmp").write_text(json.dumps(stamp, indent=2) + "\n")
    os.replace(folder / f"{STAMP}.tmp", folder / STAMP)

