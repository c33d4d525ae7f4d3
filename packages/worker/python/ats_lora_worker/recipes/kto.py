"""KTO: TRL's KTOTrainer on unpaired answers, each labelled desirable (true) or undesirable (false)."""

from __future__ import annotations

from trl import KTOConfig, KTOTrainer

from ..errors import BadInput
from .common import TrainerInputs, refuse_encoder_decoder


def make_trainer(inputs: TrainerInputs) -> KTOTrainer:
    refuse_encoder_decoder(inputs)
    if set(inputs.train_rows["label"]) != {True, False}:
        raise BadInput("KTO needs both desirable (label true) and undesirable (label false) rows in the training split")
    return KTOTrainer(
        model=inputs.model,
        args=KTOConfig(**inputs.arguments, max_length=inputs.params.max_seq_length),
        train_dataset=inputs.train_rows,
        eval_dataset=inputs.validation_rows,
        processing_class=inputs.tokenizer,
        peft_config=inputs.lora,
        callbacks=inputs.callbacks,
    )
