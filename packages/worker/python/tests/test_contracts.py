"""The worker reads the contracts the TypeScript side generates (ats_lora_worker/contracts): its Python types
agree with the protocol's JSON Schema, its method table with the protocol's methods, and its recipes read only
columns that core's row schemas require, so a field removed from a row schema in core fails here."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import sys
import typing

import pytest
from conftest import WORKER, train_params, write_split

from ats_lora_worker.contracts import load_schema, protocol_types
from ats_lora_worker.contracts.protocol import InvalidParams, parse_params
from ats_lora_worker.contracts.protocol_types import PARAMS, TrainParams
from ats_lora_worker.contracts.training_pairs import FORMATS, SPLITS, TRAINER_COLUMNS, check_rows, pairs_file, row_schema
from ats_lora_worker.errors import BadInput

PROTOCOL = load_schema("protocol.schema.json")


def test_the_generated_python_types_agree_with_the_protocol_schema():
    assert protocol_types.PROTOCOL_VERSION == PROTOCOL["x-protocol-version"]
    for name, code in PROTOCOL["x-error-codes"].items():
        assert getattr(protocol_types, name) == code, name
    for method, definition in PROTOCOL["x-methods"].items():
        params = PARAMS[method]
        schema = PROTOCOL["$defs"][definition]
        assert params.__name__ == definition
        fields = {field.name: field for field in dataclasses.fields(params)}
        assert list(fields) == list(schema.get("properties", {})), definition
        for field in fields.values():
            # A field the contract requires has no default on the Python side.
            has_default = field.default is not dataclasses.MISSING
            assert has_default == (field.name not in schema.get("required", [])), f"{definition}.{field.name}"
    for kind in ("x-results", "x-notifications"):
        table = protocol_types.RESULTS if kind == "x-results" else protocol_types.NOTIFICATIONS
        for method, definition in PROTOCOL[kind].items():
            schema = PROTOCOL["$defs"][definition]
            members = typing.get_args(table[method]) or (table[method],)
            shapes = schema.get("anyOf", [schema])
            assert len(members) == len(shapes), definition
            for member, shape in zip(members, shapes, strict=True):
                assert set(member.__required_keys__) == set(shape.get("required", [])), member.__name__
                assert set(member.__annotations__) == set(shape.get("properties", {})), member.__name__


def test_the_server_has_one_table_entry_per_protocol_method():
    from ats_lora_worker.server import Server

    methods = Server(io.StringIO()).methods
    assert set(methods) == set(PROTOCOL["x-methods"])
    for name, method in methods.items():
        assert method.params is PARAMS[name], name


def test_params_are_validated_and_typed_with_nothing_filled_in(tmp_path):
    params = train_params(tmp_path / "model", tmp_path / "pairs", tmp_path / "out")
    typed = parse_params(TrainParams, params)
    assert typed.seed == 42 and typed.bnb_4bit_quant_type == "nf4" and typed.regression is None
    assert dataclasses.asdict(typed) == params
    for required in ("seed", "bnb_4bit_quant_type", "max_seq_length"):
        missing = {key: value for key, value in params.items() if key != required}
        with pytest.raises(InvalidParams, match=rf"invalid params for train: \(params\): '{required}' is a required property"):
            parse_params(TrainParams, missing)


def test_every_format_has_a_recipe_and_every_column_it_reads_is_required_by_the_row_schema():
    from ats_lora_worker.recipes import RECIPES

    assert set(RECIPES) == set(FORMATS)
    assert {"train", "val"} <= set(SPLITS)
    for fmt in FORMATS:
        schema = row_schema(fmt)
        for column in TRAINER_COLUMNS[fmt]:
            assert column in schema["properties"], f"{fmt} trainers read {column!r}, which the {fmt} row schema does not define"
            assert column in schema["required"], f"{fmt} trainers read {column!r}, which the {fmt} row schema does not require"


def test_rows_are_checked_against_the_row_schema_and_named_by_line(tmp_path):
    good = {"prompt": "Score: Go developer.", "completion": '{"match_score": 0.9}'}
    write_split(tmp_path, "sft", "train", [good, {"prompt": "Score: nurse."}])
    file = pairs_file(tmp_path, "sft", "train")
    assert file == tmp_path / "sft" / "train.jsonl"
    with pytest.raises(BadInput, match=r"train\.jsonl:2: not a sft row: 'completion' is a required property"):
        check_rows(file, "sft")
    write_split(tmp_path, "kto", "train", [{**good, "label": "yes"}])
    with pytest.raises(BadInput, match=r"train\.jsonl:1: not a kto row: label: 'yes' is not of type 'boolean'"):
        check_rows(pairs_file(tmp_path, "kto", "train"), "kto")
    write_split(tmp_path, "sft", "val", [good, good])
    assert check_rows(pairs_file(tmp_path, "sft", "val"), "sft") == 2


def test_an_installed_worker_finds_its_schemas(tmp_path):
    """pip installs the JSON Schemas with the package (package data), so no path outside it is needed."""
    pytest.importorskip("setuptools")
    source = tmp_path / "source"
    shutil.copytree(WORKER, source, ignore=shutil.ignore_patterns("tests", "__pycache__", "*.egg-info", "build"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(source)], check=True)
    wheel = next((tmp_path / "wheel").glob("ats_lora_worker-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "installed"), str(wheel)], check=True)
    check = (
        "import ats_lora_worker.contracts.protocol as protocol, ats_lora_worker.contracts.training_pairs as pairs;"
        "print(protocol.__file__, protocol.SCHEMA['x-protocol-version'], pairs.FORMATS)"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "installed")}
    out = subprocess.run([sys.executable, "-c", check], env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out.startswith(str(tmp_path / "installed"))
    assert f"{protocol_types.PROTOCOL_VERSION} {FORMATS}" in out
