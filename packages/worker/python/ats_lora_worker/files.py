"""Folders written whole or not at all: built in a staging folder beside the target, then renamed into place, so
a failed or interrupted job never leaves a half-written model where a later run would load it."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def staging_folder(target: Path) -> Path:
    """A new hidden folder beside `target` (made with os.mkdir, so the umask applies as to any folder)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    os.mkdir(staging)
    return staging


def replace_folder(staging: Path, target: Path) -> None:
    """Puts `staging` at `target`; what was there is moved aside first and removed after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.old")
        os.rename(target, old)
    os.rename(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
