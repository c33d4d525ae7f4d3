"""Checkpoints that --resume can trust.

transformers writes a checkpoint folder file by file (adapter weights, optimizer, scheduler, RNG state, and
trainer_state.json last), so a worker killed while saving leaves a folder that looks like the newest
checkpoint but cannot be loaded ("Can't find a valid checkpoint at …"). A checkpoint is **complete** when:

- it holds the marker file this worker writes from the trainer's `on_save` callback, which runs only after
  transformers has finished writing the whole folder; or, for a folder without the marker (saved by an
  older worker, or killed between the last write and the marker),
- trainer_state.json parses, the adapter weights are present and their safetensors header and length check
  out, and optimizer.pt and scheduler.pt are present and non-empty.

--resume takes the newest complete checkpoint; incomplete ones are moved aside (out of transformers'
`checkpoint-*` pattern, so neither resuming nor checkpoint rotation sees them) and named in the log."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .contracts.protocol import Emit
from .errors import BadInput

MARKER = "ats_lora_checkpoint.json"
PATTERN = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin")


def mark_complete(folder: Path, step: int) -> None:
    """Writes the completeness marker (atomically: a temporary file renamed into place)."""
    files = sorted(entry.name for entry in folder.iterdir() if entry.name != MARKER and not entry.name.startswith("."))
    temporary = folder / f".{MARKER}.tmp"
    temporary.write_text(json.dumps({"step": step, "files": files}) + "\n")
    os.replace(temporary, folder / MARKER)


def incomplete_reason(folder: Path) -> str | None:
    """Why this checkpoint folder cannot be resumed from, or None when it is complete."""
    if (folder / MARKER).is_file():
        return None
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "it has no trainer_state.json (the save was cut off)"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError) as error:
        return f"its trainer_state.json is unreadable ({error})"
    weights = next((folder / name for name in WEIGHTS if (folder / name).is_file()), None)
    if weights is None:
        return "it has no adapter weights"
    if weights.suffix == ".safetensors":
        problem = _safetensors_problem(weights)
        if problem:
            return f"its {weights.name} is unreadable ({problem})"
    elif weights.stat().st_size == 0:
        return f"its {weights.name} is empty"
    for name in ("optimizer.pt", "scheduler.pt"):
        file = folder / name
        if not file.is_file() or file.stat().st_size == 0:
            return f"it has no {name}"
    return None


def _safetensors_problem(file: Path) -> str | None:
    """A safetensors file's header parses and the tensors it lists fit in the file."""
    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            header_length = int.from_bytes(handle.read(8), "little")
            if header_length <= 0 or 8 + header_length > size:
                return "truncated header"
            header = json.loads(handle.read(header_length))
    except (OSError, ValueError) as error:
        return str(error)
    end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    if 8 + header_length + end > size:
        return f"truncated: {size} bytes, the header lists {8 + header_length + end}"
    return None


def checkpoint_folders(checkpoints: Path) -> list[tuple[int, Path]]:
    """checkpoint-N folders, oldest first."""
    if not checkpoints.is_dir():
        return []
    found = [(int(match.group(1)), entry) for entry in checkpoints.iterdir() if entry.is_dir() and (match := PATTERN.match(entry.name))]
    return sorted(found)


def newest_complete(checkpoints: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest complete checkpoint (or None), and every incomplete one with the reason."""
    chosen: Path | None = None
    incomplete: list[tuple[Path, str]] = []
    for _, folder in checkpoint_folders(checkpoints):
        reason = incomplete_reason(folder)
        if reason is None:
            chosen = folder
        else:
            incomplete.append((folder, reason))
    return chosen, incomplete


def set_aside(folder: Path) -> Path:
    """Moves an incomplete checkpoint to incomplete-checkpoint-N[-k] beside it."""
    target = folder.with_name(f"incomplete-{folder.name}")
    index = 1
    while target.exists():
        index += 1
        target = folder.with_name(f"incomplete-{folder.name}-{index}")
    folder.rename(target)
    return target


def resumable_checkpoint(checkpoints: Path, emit: Emit) -> str:
    """The checkpoint --resume continues from: the newest complete one. Incomplete ones are moved aside and named."""
    chosen, incomplete = newest_complete(checkpoints)
    for folder, reason in incomplete:
        moved = set_aside(folder)
        emit("log", {"message": f"--resume: skipped {folder.name}: incomplete, {reason}; moved aside to {moved}"})
    if chosen is None:
        what = f"no complete checkpoint in {checkpoints} ({', '.join(folder.name for folder, _ in incomplete)} cut off while saving)" if incomplete else f"no checkpoint in {checkpoints}"
        raise BadInput(
            f"--resume: {what}",
            hint="start the run again without --resume (--overwrite to reuse this output folder)",
        )
    emit("log", {"message": f"--resume: resuming from {chosen} (the newest complete checkpoint)"})
    return str(chosen)
