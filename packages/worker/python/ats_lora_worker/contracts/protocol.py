"""Requests checked against the protocol's JSON Schema, then built as the generated params dataclasses: past
this point the worker reads typed fields, and every field the contract requires is there."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

import jsonschema

from ..errors import BadInput
from . import load_schema

SCHEMA = load_schema("protocol.schema.json")
# The method whose params each definition describes (TrainParams → train), for messages.
_METHOD_OF = {definition: method for method, definition in SCHEMA["x-methods"].items()}

Emit = Callable[[str, Mapping[str, Any]], None]
"""Sends a notification: its method (progress, checkpoint, log) and params."""

Params = TypeVar("Params")


class InvalidParams(BadInput):
    """Params the schema rejects; `data` lists every problem."""

    def __init__(self, method: str, problems: list[str]) -> None:
        super().__init__(f"invalid params for {method}: {problems[0]}", data={"problems": problems})


@cache
def _validator(definition: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{definition}"})


def problems(definition: str, value: Any) -> list[str]:
    """What is wrong with `value` as the schema's definition `definition` (e.g. TrainParams), by path."""
    errors = sorted(_validator(definition).iter_errors(value), key=lambda error: list(error.absolute_path))
    return [f"{'.'.join(str(part) for part in error.absolute_path) or '(params)'}: {error.message}" for error in errors]


def parse_params(params_type: type[Params], params: Any) -> Params:
    """Params checked against the schema definition of the same name as `params_type`, then built as it."""
    definition = params_type.__name__
    found = problems(definition, params)
    if found:
        raise InvalidParams(_METHOD_OF[definition], found)
    return params_type.from_json(params)  # type: ignore[attr-defined]  # every generated params class has one
