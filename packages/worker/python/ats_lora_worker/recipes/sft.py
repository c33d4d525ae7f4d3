"""SFT: TRL's SFTTrainer on prompt–completion rows, the loss on the completion only. With the hybrid loss
(training.regression_*), a weighted regression term on a number in the answer is added to the LM loss.
Encoder–decoder models train through seq2seq_sft.py instead."""

from __future__ import annotations

from trl import SFTConfig, SFTTrainer

from ..regression import LogsRegressionTerms, RegressionTerms, make_loss
from . import seq2seq_sft
from .common import TrainerInputs


class HybridLossSFTTrainer(LogsRegressionTerms, SFTTrainer):
    """SFT whose loss adds the weighted regression term, logging both terms."""


def make_trainer(inputs: TrainerInputs) -> SFTTrainer:
    if inputs.seq2seq:
        return seq2seq_sft.make_trainer(inputs)
    params = inputs.params
    common = {
        "model": inputs.model,
        "args": SFTConfig(**inputs.arguments, max_length=params.max_seq_length, packing=params.packing, completion_only_loss=True),
        "train_dataset": inputs.train_rows,
        "eval_dataset": inputs.validation_rows,
        "processing_class": inputs.tokenizer,
        "peft_config": inputs.lora,
        "callbacks": inputs.callbacks,
    }
    regression = params.regression
    if regression is None:
        return SFTTrainer(**common)
    terms = RegressionTerms()
    trainer = HybridLossSFTTrainer(
        **common, compute_loss_func=make_loss(inputs.tokenizer, regression.field, regression.weight, regression.loss, terms)
    )
    trainer.regression_terms = terms
    return trainer
