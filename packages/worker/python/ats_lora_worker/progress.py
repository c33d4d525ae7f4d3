"""Turns a transformers Trainer's steps, logs and saves into protocol notifications, and stops it on cancel."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from . import distributed
from .checkpoints import mark_complete
from .contracts.protocol import Emit


class ProgressCallback(TrainerCallback):
    def __init__(self, emit: Emit, cancel: threading.Event, started: float) -> None:
        self.emit = emit
        self.cancel = cancel
        self.started = started
        self.step_started: float | None = None
        self.first_step: int | None = None
        self.last: dict[str, Any] = {}
        self.stopping = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.step_started = time.monotonic()
        self.first_step = state.global_step
        self.emit("progress", {"stage": "train", "step": state.global_step, "total": state.max_steps, "epoch": state.epoch or 0})

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            # transformers logs after on_step_end: this is the loss of the step just ended, sent now so that the
            # last logging step's loss is not lost and each loss is named with the step it belongs to.
            self.last = {"loss": logs["loss"], "learning_rate": logs.get("learning_rate"), "loss_step": state.global_step}
            self.emit(
                "progress",
                {"stage": "train", "step": state.global_step, "total": state.max_steps, "epoch": round(state.epoch or 0, 4), **self.last},
            )

    def on_step_end(self, args, state, control, **kwargs):
        elapsed = time.monotonic() - (self.step_started or self.started)
        done = state.global_step - (self.first_step or 0)
        remaining = state.max_steps - state.global_step
        tokens = int(state.num_input_tokens_seen or 0)
        self.emit(
            "progress",
            {
                "stage": "train",
                "step": state.global_step,
                "total": state.max_steps,
                "epoch": round(state.epoch or 0, 4),
                "loss": self.last.get("loss"),
                "learning_rate": self.last.get("learning_rate"),
                "loss_step": self.last.get("loss_step"),
                "tokens": tokens,
                "tokens_per_second": round(tokens / elapsed, 1) if elapsed > 0 and tokens else None,
                "eta_seconds": round(elapsed / done * remaining, 1) if done > 0 else None,
            },
        )
        # Under torchrun every process stops at rank 0's word, at the same step (distributed.py).
        self.stopping = distributed.agree(self.cancel.is_set())
        if self.stopping:
            # Save where we are and stop: --resume continues from this step.
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        # A cancelled run ends its epoch early: save and stop, without evaluating the validation split first.
        if self.stopping:
            control.should_evaluate = False
        return control

    def on_save(self, args, state, control, **kwargs):
        # Called after transformers has written the whole folder: mark it complete before telling anyone.
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        # Rank 0 writes the model and optimizer state: its word marks the folder complete.
        if distributed.is_main() and os.path.isdir(path):
            mark_complete(Path(path), state.global_step)
        self.emit("checkpoint", {"step": state.global_step, "path": path})
