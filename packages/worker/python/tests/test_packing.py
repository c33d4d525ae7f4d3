"""Padding-free packing of SFT rows: several rows share one sequence, each with position ids from 0, and none
attends to another, so the loss over the same rows is the loss unpacked."""

from __future__ import annotations

import json
import threading

from conftest import SCORES, train_params

from ats_lora_worker.contracts.protocol import parse_params
from ats_lora_worker.contracts.protocol_types import TrainParams
from ats_lora_worker.training import train


def loss_before_training(tiny_model, pairs, output, packing: bool) -> tuple[dict, list[str]]:
    logs: list[str] = []
    rows = len(SCORES)
    # One batch holds every row (or every packed sequence), and the loss sample is every row: both losses are
    # the mean over the same answer tokens.
    params = train_params(tiny_model, pairs, output, packing=packing, batch_size=rows, max_steps=7, save_steps=100, logging_steps=1)
    result = train(parse_params(TrainParams, params), lambda kind, payload: logs.append(payload.get("message", "")) if kind == "log" else None, threading.Event())
    return result["metrics"], logs


def first_step_loss(output) -> float:
    entries = [json.loads(line) for line in (output / "loss_curve.jsonl").read_text().splitlines()]
    return next(entry["loss"] for entry in entries if "loss" in entry and entry.get("step") == 1)


def test_packed_rows_give_the_loss_of_the_same_rows_unpacked(tiny_model, pairs, tmp_path):
    packed, logs = loss_before_training(tiny_model, pairs, tmp_path / "packed", packing=True)
    unpacked, _ = loss_before_training(tiny_model, pairs, tmp_path / "unpacked", packing=False)
    packing_line = next(line for line in logs if line.startswith("packing:"))
    # 8 short rows fit in fewer sequences of 128 tokens.
    assert f"{len(SCORES)} rows in 1 sequences" in packing_line or f"{len(SCORES)} rows in 2 sequences" in packing_line, packing_line
    # The first step trains on every row, packed into those sequences or padded in one batch: the same loss.
    first = [first_step_loss(tmp_path / name) for name in ("packed", "unpacked")]
    assert abs(first[0] - first[1]) < 1e-4
    # The loss before and after is measured on the rows themselves (unpacked) either way.
    assert packed["train_loss_sample_rows"] == unpacked["train_loss_sample_rows"] == len(SCORES)
    assert abs(packed["train_loss_first"] - unpacked["train_loss_first"]) < 1e-4
    # The same tokens trained, and both runs learned.
    assert packed["tokens"] == unpacked["tokens"]
    assert packed["train_loss_last"] < packed["train_loss_first"]
