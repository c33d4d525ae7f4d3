"""The contracts the TypeScript side defines, shipped inside this package (as package data, so an installed
worker has them too).

Generated, not to be edited (`pnpm --filter @ats-lora/worker worker-contracts` writes them):
- protocol.schema.json: the worker protocol (packages/worker/src/protocol.ts), and protocol_types.py, its
  params dataclasses, result and notification TypedDicts, version and error codes;
- training-pairs.schema.json: the rows the worker trains on (packages/core/src/training-pairs.ts).

Written by hand: protocol.py and training_pairs.py, which check data against them."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load_schema(name: str) -> dict[str, Any]:
    """One of the JSON Schemas beside this file."""
    return json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))
