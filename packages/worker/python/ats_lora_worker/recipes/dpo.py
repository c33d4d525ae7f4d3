"""DPO: TRL's DPOTrainer on preference pairs, a prompt with a chosen and a rejected answer."""

from __future__ import annotations

from trl import DPOConfig, DPOTrainer

from .common import TrainerInputs, refuse_encoder_decoder


def make_trainer(inputs: TrainerInputs) -> DPOTrainer:
    refuse_encoder_decoder(inputs)
    return DPOTrainer(
        model=inputs.model,
        args=DPOConfig(**inputs.arguments, max_length=inputs.params.max_seq_length),
        train_dataset=inputs.train_rows,
        eval_dataset=inputs.validation_rows,
        processing_class=inputs.tokenizer,
        peft_config=inputs.lora,
        callbacks=inputs.callbacks,
    )
