"""Exporting a trained adapter in the formats llama.cpp, node-llama-cpp and PEFT read: a LoRA GGUF (applied to
its base GGUF at run time), the merged model as GGUF, or the merged model as an HF folder. The GGUF files are
written by llama.cpp's own converters, run from a llama.cpp checkout, and read back to check what they carry."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .child_process import run_logged
from .contracts.protocol import Emit
from .contracts.protocol_types import ExportParams, ExportResult
from .errors import BadInput, WorkerError
from .files import replace_folder, staging_folder
from .gguf_base import gguf_file, training_folder
from .inference import resolve, save_merged

CONVERTERS = {"gguf-lora": "convert_lora_to_gguf.py", "gguf": "convert_hf_to_gguf.py"}
LLAMA_CPP_HINT = "pass a llama.cpp source checkout (node-llama-cpp ships one as llama/gitRelease.bundle: git clone it)"


def export(params: ExportParams, emit: Emit, cancel: threading.Event) -> ExportResult:
    started = time.monotonic()
    adapter = Path(params.adapter)
    if not (adapter / "adapter_config.json").exists():
        raise BadInput(f"{adapter} is not an adapter folder (no adapter_config.json)", hint="pass the folder train wrote")
    converter = _converter(params)
    # Absolute: the converters run in the llama.cpp checkout.
    output = Path(params.output).resolve()
    if output.exists() and output.is_dir() != (params.format == "hf-merged"):
        kind = "a folder" if output.is_dir() else "a file"
        raise BadInput(f"the output {output} is {kind}; {params.format} writes {'a folder' if params.format == 'hf-merged' else 'a .gguf file'}", hint="choose another --out path")
    base_arg, _ = resolve(str(adapter), params.base)
    steps = 4 if params.format == "gguf" else 3
    emit("progress", {"stage": "export", "step": 0, "total": steps})
    base = training_folder(base_arg, emit)
    emit("progress", {"stage": "export", "step": 1, "total": steps})
    output.parent.mkdir(parents=True, exist_ok=True)
    if params.format == "gguf-lora":
        assert converter is not None
        base_option = ["--base", str(Path(base).resolve())] if Path(base).is_dir() else ["--base-model-id", base]
        _write_gguf(output, converter, lambda partial: [*base_option, "--outtype", params.quant, "--outfile", str(partial), str(adapter.resolve())], cancel)
        emit("progress", {"stage": "export", "step": 2, "total": steps})
        written = gguf_metadata(output)
        chat_template, eos = _base_chat_facts(base_arg, base)
        result = {"architecture": written["general.architecture"], "chat_template": chat_template, "eos_token_id": eos, "lora_alpha": written["adapter.lora.alpha"]}
    elif params.format == "gguf":
        assert converter is not None
        result = _export_merged_gguf(params, adapter, base, output, converter, emit, cancel, steps)
    else:
        _export_hf_merged(adapter, base, output, emit, cancel)
        emit("progress", {"stage": "export", "step": 2, "total": steps})
        chat_template, eos = _hf_chat_facts(output)
        result = {"architecture": None, "chat_template": chat_template, "eos_token_id": eos, "lora_alpha": None}
    emit("progress", {"stage": "export", "step": steps, "total": steps})
    return {
        "format": params.format,
        "output": str(output),
        "size_bytes": _size(output),
        "base": base,
        **result,  # type: ignore[typeddict-item]
        "seconds": round(time.monotonic() - started, 3),
    }


def _converter(params: ExportParams) -> Path | None:
    """The llama.cpp converter the format needs (none for hf-merged)."""
    name = CONVERTERS.get(params.format)
    if name is None:
        return None
    llama_cpp = Path(params.llama_cpp)
    if not llama_cpp.is_dir():
        raise WorkerError(f"the llama.cpp checkout {llama_cpp} does not exist", hint=LLAMA_CPP_HINT)
    converter = llama_cpp / name
    if not converter.is_file():
        raise WorkerError(f"{llama_cpp} has no {name}: it is not a llama.cpp source checkout", hint=LLAMA_CPP_HINT)
    return converter


def _write_gguf(
    output: Path,
    converter: Path,
    arguments_for: Callable[[Path], list[str]],
    cancel: threading.Event,
    check: Callable[[Path], None] | None = None,
) -> None:
    """Runs a converter (in its checkout, with this interpreter) writing OUTPUT.tmp, checks that file, and renames
    it into place; nothing is left behind on failure."""
    partial = output.with_name(output.name + ".tmp")
    what = f"llama.cpp's {converter.name}"
    try:
        command = [sys.executable, str(converter), *arguments_for(partial)]
        run_logged(command, what=what, hint="see the worker's log for the converter's whole output", cancel=cancel, cwd=converter.parent)
        if not partial.is_file():
            raise WorkerError(f"{what} finished without writing {partial}", hint="see the worker's log for the converter's whole output")
        if check is not None:
            check(partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def _export_merged_gguf(params: ExportParams, adapter: Path, base: str, output: Path, converter: Path, emit: Emit, cancel: threading.Event, steps: int) -> dict[str, Any]:
    merged = staging_folder(output.with_name(output.name + ".merged"))
    metadata: dict[str, Any] = {}

    def check(partial: Path) -> None:
        metadata.update(gguf_metadata(partial))
        check_chat_ready(metadata, base)

    try:
        save_merged(str(adapter), base, merged, emit)
        emit("progress", {"stage": "export", "step": 2, "total": steps})
        if cancel.is_set():
            raise WorkerError("export: cancelled")
        _write_gguf(
            output,
            converter,
            lambda partial: [str(merged), "--outtype", params.quant, "--outfile", str(partial)],
            cancel,
            check,
        )
    finally:
        shutil.rmtree(merged, ignore_errors=True)
    emit("progress", {"stage": "export", "step": 3, "total": steps})
    return {
        "architecture": metadata["general.architecture"],
        "chat_template": metadata["tokenizer.chat_template"] is not None,
        "eos_token_id": metadata["tokenizer.ggml.eos_token_id"],
        "lora_alpha": None,
    }


def check_chat_ready(metadata: dict[str, Any], base: str) -> None:
    """A merged GGUF (its gguf_metadata) must carry a chat template and an EOS token: without them a chat front end
    cannot frame the prompt or stop, and the answer runs on to the token limit."""
    missing = [what for what, key in (("chat template", "tokenizer.chat_template"), ("EOS token", "tokenizer.ggml.eos_token_id")) if metadata[key] is None]
    if missing:
        raise WorkerError(
            f"the merged GGUF would carry no {' and no '.join(missing)} (the base {base} has none to give it)",
            hint="use a base model with a chat template, or export --format gguf-lora and run it on a base GGUF that has them",
        )


def _export_hf_merged(adapter: Path, base: str, output: Path, emit: Emit, cancel: threading.Event) -> None:
    """Merges into a folder beside OUTPUT and puts it in place; an earlier export there is replaced, any other
    non-empty folder is left alone."""
    if output.is_dir() and any(output.iterdir()) and not (output / "config.json").exists():
        raise BadInput(f"the output {output} is a non-empty folder that holds no model", hint="choose a new or empty --out folder")
    staging = staging_folder(output)
    try:
        save_merged(str(adapter), base, staging, emit)
        if cancel.is_set():
            raise WorkerError("export: cancelled")
        replace_folder(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


GGUF_KEYS = ("general.architecture", "tokenizer.chat_template", "tokenizer.ggml.eos_token_id", "adapter.lora.alpha")


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The GGUF_KEYS of a GGUF file (None where absent). Read with the installed gguf package (pinned in
    requirements.txt; transformers' GGUF loading uses it), not the checkout's gguf-py: that one would have to go on
    sys.path of this long-lived process, beside the gguf module transformers has already imported, and the
    metadata keys read here are the same in both."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except Exception as error:  # noqa: BLE001 - a damaged file fails in numpy or the reader alike
        raise WorkerError(f"cannot read the GGUF file {path} back ({type(error).__name__}: {error})") from error
    values: dict[str, Any] = {}
    for key in GGUF_KEYS:
        field = reader.get_field(key)
        values[key] = field.contents() if field is not None else None
    return values


def _base_chat_facts(base_arg: str, base: str) -> tuple[bool, int | None]:
    """(chat template present, EOS id) of the base a LoRA GGUF runs on: llama.cpp applies the adapter to the base
    GGUF, whose template and EOS are then the ones in use; for an HF base, its tokenizer's."""
    gguf = gguf_file(base_arg)
    if gguf is not None:
        metadata = gguf_metadata(gguf)
        return metadata["tokenizer.chat_template"] is not None, metadata["tokenizer.ggml.eos_token_id"]
    if Path(base).is_dir():
        return _hf_chat_facts(Path(base))
    from .modeling import load_tokenizer

    tokenizer = load_tokenizer(base)
    return bool(getattr(tokenizer, "chat_template", None)), tokenizer.eos_token_id


def _hf_chat_facts(folder: Path) -> tuple[bool, int | None]:
    """(chat template present, EOS id) of an HF model folder, from its files."""
    tokenizer_config = _read_json(folder / "tokenizer_config.json")
    template = (folder / "chat_template.jinja").exists() or (folder / "chat_template.json").exists() or bool(tokenizer_config.get("chat_template"))
    eos = _read_json(folder / "generation_config.json").get("eos_token_id")
    if eos is None:
        eos = _read_json(folder / "config.json").get("eos_token_id")
    if isinstance(eos, list):
        eos = eos[0] if eos else None
    return template, eos


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())
