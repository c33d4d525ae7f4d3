"""Training under torchrun, as `train --devices N` starts it: two CPU processes on gloo, with DDP or FSDP, train
as one process does with the same global batch, and a cancelled two-process run resumes in one process."""

from __future__ import annotations

import json
import threading

import pytest

from conftest import SCORES, WorkerProcess, train_params

from ats_lora_worker.contracts.protocol import parse_params
from ats_lora_worker.contracts.protocol_types import TrainParams
from ats_lora_worker.training import train

STEPS = 8


def two_processes(params: dict, cancel_at_step: int | None = None) -> tuple[dict, list[dict]]:
    """A train request to the worker under torchrun with two processes; cancels once a step is reached."""
    worker = WorkerProcess(processes=2)
    try:
        init, _ = worker.request("initialize", {"protocol_version": 1})
        assert "result" in init, init
        request = {"jsonrpc": "2.0", "id": 99, "method": "train", "params": params}
        worker.process.stdin.write(json.dumps(request) + "\n")
        worker.process.stdin.flush()
        notifications = []
        while True:
            line = worker.process.stdout.readline()
            assert line, f"the worker closed its stdout; stderr:\n{worker.process.stderr.read()[-3000:]}"
            message = json.loads(line)  # rank 0 alone writes, and only protocol JSON
            if message.get("id") == 99:
                break
            notifications.append(message)
            step = message.get("params", {}).get("step")
            if cancel_at_step is not None and message.get("method") == "progress" and step == cancel_at_step:
                worker.process.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 100, "method": "cancel", "params": {}}) + "\n")
                worker.process.stdin.flush()
        return message, notifications
    finally:
        code, log = worker.close()
        assert code == 0, log[-3000:]


def read_curve(output) -> list[dict]:
    return [json.loads(line) for line in (output / "loss_curve.jsonl").read_text().splitlines()]


def one_process(params: dict) -> dict:
    return train(parse_params(TrainParams, params), lambda kind, payload: None, threading.Event())


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_train_as_one_with_the_same_global_batch(tiny_model, pairs, tmp_path, strategy):
    # Each step's global batch is all 8 rows (4 on each of two processes, or 8 on one), so the comparison does not
    # hang on how the sampler deals rows to processes; no dropout, so no random numbers differ either.
    rows = len(SCORES)
    settings = {"max_steps": STEPS, "save_steps": 100, "lora_dropout": 0.0, "warmup_steps": 0, "logging_steps": 1}
    response, notifications = two_processes(train_params(tiny_model, pairs, tmp_path / "two", batch_size=rows // 2, strategy=strategy, **settings))
    alone = one_process(train_params(tiny_model, pairs, tmp_path / "one", batch_size=rows, **settings))
    together = response["result"]
    assert together["status"] == "completed", response
    metrics, reference = together["metrics"], alone["metrics"]
    assert metrics["processes"] == 2 and metrics["strategy"] == strategy and reference["processes"] == 1
    assert metrics["steps"] == reference["steps"] == STEPS
    # Both saw the same rows: the global batch, split over two processes or not.
    assert metrics["tokens"] == reference["tokens"]
    # Each step's training loss (over the global batch's answer tokens, whichever process held them) and gradient
    # norm: the same within 1e-3 at every step, so the gradients were averaged across the processes.
    curves = [[entry for entry in read_curve(tmp_path / name) if "loss" in entry] for name in ("two", "one")]
    assert len(curves[0]) == len(curves[1]) == STEPS
    for together_step, alone_step in zip(*curves):
        assert abs(together_step["loss"] - alone_step["loss"]) < 1e-3, (together_step, alone_step)
        assert abs(together_step["grad_norm"] - alone_step["grad_norm"]) < 1e-3 * alone_step["grad_norm"], (together_step, alone_step)
    # The loss after the last step, on the same sample of rows: the same within 1e-3, and it moved.
    assert abs(metrics["train_loss_last"] - reference["train_loss_last"]) < 1e-3
    assert curves[1][0]["loss"] - curves[1][-1]["loss"] > 0.1
    assert curves[1][0]["loss"] - curves[1][-1]["loss"] > 0.1
    assert (tmp_path / "two" / "adapter_model.safetensors").exists()
    assert any(message["method"] == "progress" for message in notifications)


def test_a_cancelled_two_process_run_resumes_in_one_process(tiny_model, pairs, tmp_path):
    output = tmp_path / "run"
    settings = {"max_steps": 12, "save_steps": 100, "warmup_steps": 0}
    response, _ = two_processes(train_params(tiny_model, pairs, output, batch_size=1, **settings), cancel_at_step=3)
    cancelled = response["result"]
    assert cancelled["status"] == "cancelled", response
    assert 3 <= cancelled["step"] < 12 and cancelled["checkpoint"].endswith(f"checkpoint-{cancelled['step']}")
    # One process with the same global batch (2 rows a step) continues from that checkpoint.
    resumed = one_process(train_params(tiny_model, pairs, output, batch_size=2, resume=True, **settings))
    assert resumed["status"] == "completed"
    assert resumed["metrics"]["steps"] == 12 and resumed["metrics"]["processes"] == 1
    assert resumed["metrics"]["resumed_from"] == cancelled["checkpoint"]
