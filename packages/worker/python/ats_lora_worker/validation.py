"""The validation loss at the end of every epoch, its history, and early stopping on it.

transformers evaluates the validation split at each epoch's end (eval_strategy "epoch", set by training.py when
the val split has rows); when max_steps ends the run inside an epoch, the loop still ends that partial epoch and
evaluates there. This callback records each evaluation, says it in a log, and with a patience stops the run once
the loss has not improved for that many evaluations.

Why not transformers' EarlyStoppingCallback with load_best_model_at_end: that pair needs a checkpoint at every
evaluation (save_strategy equal to eval_strategy), so it would replace the run's checkpoint every save_steps that
--resume relies on, and the best model it loads must survive save_total_limit's rotation. Here the best epoch's
adapter (a few MB of LoRA weights) is written to its own folder beside the checkpoints whenever the loss improves,
the checkpoints go on every save_steps as before, and training.py loads the best adapter back at the end. On
--resume the history comes back from the checkpoint's trainer state; a best adapter written after that step (by
the run that was stopped) is discarded, since the resumed run trains those steps again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .contracts.protocol import Emit

BEST_FOLDER = "best-epoch"
RECORD = "best.json"


class ValidationCallback(TrainerCallback):
    def __init__(self, emit: Emit, patience: int | None, checkpoints: Path) -> None:
        self.emit = emit
        self.patience = patience
        self.best_folder = checkpoints / BEST_FOLDER
        self.history: list[dict[str, Any]] = []
        self.stopped_early = False
        self.training = False

    @property
    def best(self) -> dict[str, Any] | None:
        return min(self.history, key=lambda entry: entry["loss"]) if self.history else None

    def evaluations_since_best(self) -> int:
        best = self.best
        return 0 if best is None else len(self.history) - 1 - self.history.index(best)

    def on_train_begin(self, args, state, control, **kwargs):
        self.training = True
        # A resumed run's state holds the evaluations up to its checkpoint.
        self.history = [_entry(entry.get("epoch"), entry["step"], entry["eval_loss"]) for entry in state.log_history if "eval_loss" in entry]
        saved = self.saved_best()
        best = self.best
        if saved is not None and (best is None or saved["step"] != best["step"]):
            shutil.rmtree(self.best_folder, ignore_errors=True)

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        # The before/after measurements on training rows report train_sample_loss; they are not validation.
        if not self.training or not metrics or "eval_loss" not in metrics:
            return
        self.record(state.epoch, state.global_step, metrics["eval_loss"], model)
        if self.patience is not None and self.evaluations_since_best() >= self.patience:
            best = self.best
            self.emit(
                "log",
                {"message": f"early stopping: no better validation loss in {self.patience} evaluations since epoch {best['epoch']:g} (step {best['step']}, {best['loss']:.4f})"},
            )
            self.stopped_early = True
            control.should_training_stop = True

    def record(self, epoch: float | None, step: int, loss: float, model: Any) -> None:
        """One evaluation: logged, added to the history, and its adapter kept when it is the best so far (with a
        patience, the saved adapter is the best one's)."""
        previous = self.best
        entry = _entry(epoch, step, loss)
        self.history.append(entry)
        improved = previous is None or loss < previous["loss"]
        note = "best so far" if improved else f"best {previous['loss']:.4f} at epoch {previous['epoch']:g}"
        self.emit("log", {"message": f"epoch {entry['epoch']:g} (step {step}): validation loss {loss:.4f} ({note})"})
        if improved and self.patience is not None and model is not None:
            self._keep(model, entry)

    def _keep(self, model: Any, entry: dict[str, Any]) -> None:
        """Writes the adapter to the best folder: into a temporary folder first, renamed into place (by rank 0
        alone under torchrun: every process holds the same adapter)."""
        from . import distributed

        if not distributed.is_main():
            return
        temporary = self.best_folder.with_name(f".{BEST_FOLDER}.tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        model.save_pretrained(str(temporary))
        (temporary / RECORD).write_text(json.dumps(entry) + "\n")
        shutil.rmtree(self.best_folder, ignore_errors=True)
        temporary.rename(self.best_folder)

    def saved_best(self) -> dict[str, Any] | None:
        record = self.best_folder / RECORD
        try:
            return json.loads(record.read_text())
        except (OSError, ValueError):
            return None

    def restore_best(self, model: Any) -> dict[str, Any] | None:
        """Loads the best evaluation's adapter weights into the model, when they are not the model's already;
        returns that evaluation, or None when the last one is the best (or its adapter is missing)."""
        best, saved = self.best, self.saved_best()
        if best is None or best is self.history[-1] or saved is None or saved["step"] != best["step"]:
            return None
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(self.best_folder / "adapter_model.safetensors")))
        return best


def _entry(epoch: float | None, step: int, loss: float) -> dict[str, Any]:
    return {"epoch": round(float(epoch or 0), 4), "step": int(step), "loss": float(loss)}
