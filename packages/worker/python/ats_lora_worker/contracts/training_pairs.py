"""The training-pairs contract as core defines it (training-pairs.schema.json): the formats, the splits, the
columns each format's trainer reads, and each format's row schema, which every row is checked against before
training, and the folder layout (DIR/{format}/{split}.jsonl)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from ..errors import BadInput
from . import load_schema

SCHEMA = load_schema("training-pairs.schema.json")
FORMATS: tuple[str, ...] = tuple(SCHEMA["formats"])
SPLITS: tuple[str, ...] = tuple(SCHEMA["splits"])
LAYOUT: str = SCHEMA["layout"]
TRAINER_COLUMNS: dict[str, tuple[str, ...]] = {fmt: tuple(columns) for fmt, columns in SCHEMA["trainer_columns"].items()}

REBUILD = "build the training pairs again with ats-lora build-db"


def row_schema(fmt: str) -> dict[str, Any]:
    """The JSON Schema of one format's rows."""
    return SCHEMA["$defs"][fmt]


def pairs_file(data_dir: Path, fmt: str, split: str) -> Path:
    """The file of one format and split under the training pairs folder (core's layout)."""
    if fmt not in FORMATS or split not in SPLITS:
        raise ValueError(f"no training pairs file for format {fmt!r} and split {split!r}: formats {FORMATS}, splits {SPLITS}")
    return data_dir.joinpath(*LAYOUT.format(format=fmt, split=split).split("/"))


@cache
def _validator(fmt: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{fmt}"})


def check_rows(file: Path, fmt: str) -> int:
    """Checks every row of a training-pairs file against its format's row schema and returns how many there are;
    the first row that does not fit is named by line."""
    validator = _validator(fmt)
    rows = 0
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise BadInput(f"{file}:{number}: not a JSON row ({error.msg})", hint=REBUILD) from error
            problem = jsonschema.exceptions.best_match(validator.iter_errors(row))
            if problem is not None:
                where = ".".join(str(part) for part in problem.absolute_path)
                raise BadInput(f"{file}:{number}: not a {fmt} row: {f'{where}: ' if where else ''}{problem.message}", hint=REBUILD)
            rows += 1
    return rows
