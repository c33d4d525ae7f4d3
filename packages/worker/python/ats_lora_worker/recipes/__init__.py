"""The training recipes, one module per format of training pairs (the way litgpt keeps one recipe per file):
each builds its trainer from what training.py prepared for every recipe (TrainerInputs).

- sft.py: TRL's SFTTrainer on prompt–completion rows, with the optional hybrid regression loss;
  seq2seq_sft.py, the same rows for encoder–decoder models;
- dpo.py: TRL's DPOTrainer on preference pairs;
- kto.py: TRL's KTOTrainer on unpaired, labelled answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import dpo, kto, sft
from .common import TrainerInputs

RECIPES: dict[str, Callable[[TrainerInputs], Any]] = {"sft": sft.make_trainer, "dpo": dpo.make_trainer, "kto": kto.make_trainer}

__all__ = ["RECIPES", "TrainerInputs"]
