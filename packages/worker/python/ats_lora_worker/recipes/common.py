"""What every recipe builds its trainer from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..contracts.protocol_types import TrainParams
from ..errors import BadInput


@dataclass
class TrainerInputs:
    """Prepared by training.py: the loaded model, the rows, the LoRA configuration and the arguments every
    trainer shares."""

    params: TrainParams
    # The base model, loaded (and quantized, where chosen) for training, and its tokenizer.
    model: Any
    tokenizer: Any
    model_type: str
    seq2seq: bool
    # A datasets.DatasetDict of the format's trainer columns: "train", and "validation" where the val split has rows.
    dataset: Any
    # The adapter to train (peft.LoraConfig).
    lora: Any
    # The transformers TrainingArguments every recipe passes, as keywords (its own config class adds the rest).
    arguments: dict[str, Any]
    callbacks: list[Any]

    @property
    def train_rows(self) -> Any:
        return self.dataset["train"]

    @property
    def validation_rows(self) -> Any:
        return self.dataset["validation"] if "validation" in self.dataset else None


def refuse_encoder_decoder(inputs: TrainerInputs) -> None:
    """TRL's preference trainers handle decoder-only models."""
    fmt = inputs.params.format
    if inputs.seq2seq:
        raise BadInput(
            f"--format {fmt} is not supported for the encoder–decoder model ({inputs.model_type}): TRL's {fmt.upper()} trainer"
            " handles decoder-only models",
            hint="train this model with --format sft, or pick a decoder-only base model for DPO / KTO",
        )
