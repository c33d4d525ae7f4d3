"""SFT for encoder–decoder models (FLAN-T5, BART). TRL's SFTTrainer feeds prompt and answer as one sequence,
which is a decoder-only model's framing; here the prompt goes to the encoder and the answer (with EOS) becomes
the decoder's labels, trained by transformers' Seq2SeqTrainer over the same PEFT adapter."""

from __future__ import annotations

from typing import Any

from peft import get_peft_model
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

from ..inference import format_prompt
from ..modeling import seq2seq_answer_ids
from ..regression import LogsRegressionTerms, RegressionTerms, make_loss
from .common import TrainerInputs


class AdapterSeq2SeqTrainer(LogsRegressionTerms, Seq2SeqTrainer):
    """Seq2SeqTrainer logging the hybrid loss's terms when it has them."""


def make_trainer(inputs: TrainerInputs) -> Seq2SeqTrainer:
    params, tokenizer = inputs.params, inputs.tokenizer
    max_length = params.max_seq_length
    chat = bool(getattr(tokenizer, "chat_template", None))

    def tokenize(row: dict[str, Any]) -> dict[str, Any]:
        encoded = tokenizer(format_prompt(tokenizer, row["prompt"]), add_special_tokens=not chat, truncation=True, max_length=max_length)
        return {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "labels": seq2seq_answer_ids(tokenizer, row["completion"], max_length),
        }

    tokenized = inputs.dataset.map(tokenize, remove_columns=inputs.train_rows.column_names)
    model = get_peft_model(inputs.model, inputs.lora)
    if params.gradient_checkpointing:
        model.enable_input_require_grads()
    terms = None
    extra: dict[str, Any] = {}
    if params.regression is not None:
        terms = RegressionTerms()
        regression = params.regression
        extra["compute_loss_func"] = make_loss(tokenizer, regression.field, regression.weight, regression.loss, terms, causal=False)
    trainer = AdapterSeq2SeqTrainer(
        model=model,
        args=Seq2SeqTrainingArguments(**inputs.arguments),
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"] if "validation" in tokenized else None,
        # The collator pads labels with -100 and makes the decoder's inputs from them (the model's own shift).
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer,
        callbacks=inputs.callbacks,
        **extra,
    )
    trainer.regression_terms = terms
    return trainer
