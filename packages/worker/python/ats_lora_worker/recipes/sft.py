"""SFT: TRL's SFTTrainer on prompt–completion rows, the loss on the completion only. With the hybrid loss
(training.regression_*), a weighted regression term on a number in the answer is added to the LM loss.
Encoder–decoder models train through seq2seq_sft.py instead."""

from __future__ import annotations

import inspect

from trl import SFTConfig, SFTTrainer

from ..regression import LogsRegressionTerms, RegressionTerms, make_loss
from . import seq2seq_sft
from .common import TrainerInputs


class HybridLossSFTTrainer(LogsRegressionTerms, SFTTrainer):
    """SFT whose loss adds the weighted regression term, logging both terms."""


class AnswerPositionsSFTTrainer(SFTTrainer):
    """SFT whose LM head projects only the positions whose next token is part of an answer. TRL's fused head keeps
    only those on Triton devices; on a CPU it projects every position, and the prompt is most of an ATS row's
    tokens (a resume in, a score out): SmolLM2 trained the demo's rows at 133 tokens/s, not 92, on 2 AVX2 cores
    (docs/benchmarks.md). The loss is TRL's: the sum of the answer tokens' negative log-likelihoods over their count
    (or over the count across the accumulated batch)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        import torch
        import torch.nn.functional as F

        if return_outputs or not _answer_positions_apply(self, inputs):
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        labels = inputs["labels"]
        # Position t's logits predict token t + 1: keep t where that token carries a label.
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = labels[:, 1:] != -100
        targets = labels[:, 1:][keep[:, :-1]]
        outputs = model(**{key: value for key, value in inputs.items() if key != "labels"}, use_cache=False, logits_to_keep=keep)
        logits = outputs.logits.float()
        count = targets.numel() if num_items_in_batch is None else num_items_in_batch
        loss = F.cross_entropy(logits, targets, reduction="sum") / torch.as_tensor(count).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        with torch.no_grad():
            correct = (logits.argmax(dim=-1) == targets).sum()
        valid = self.accelerator.gather_for_metrics(torch.as_tensor(targets.numel(), device=logits.device)).sum()
        correct = self.accelerator.gather_for_metrics(correct).sum()
        self._metrics[mode]["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
        if mode == "train" and "attention_mask" in inputs:
            self._total_train_tokens += self.accelerator.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return loss


def _answer_positions_apply(trainer: AnswerPositionsSFTTrainer, inputs) -> bool:
    """Where TRL's own loss does more than the answer tokens' plain negative log-likelihood (label smoothing, DFT,
    a MoE router's loss), or already projects only the answer positions (a CUDA device), or the model cannot
    keep chosen positions (no tensor `logits_to_keep`), TRL computes it. What the trainer and model decide is
    settled at the first step; the batch's device and labels are looked at each time."""
    import torch

    if "labels" not in inputs or not isinstance(inputs["labels"], torch.Tensor) or inputs["labels"].device.type == "cuda":
        return False
    settled = getattr(trainer, "_answer_positions_fit", None)
    if settled is None:
        unwrapped = trainer.accelerator.unwrap_model(trainer.model)
        base = unwrapped.get_base_model() if hasattr(unwrapped, "get_base_model") else unwrapped
        parameter = inspect.signature(type(base).forward).parameters.get("logits_to_keep")
        settled = (
            trainer.label_smoother is None
            and trainer.args.loss_type == "nll"
            and not trainer.aux_loss_enabled
            and parameter is not None
            and "Tensor" in str(parameter.annotation)
        )
        trainer._answer_positions_fit = settled
    return settled


def make_trainer(inputs: TrainerInputs) -> SFTTrainer:
    # Packing (training.packing) is TRL's best-fit decreasing packer, padding-free: each row's position ids start
    # at 0, from which transformers masks the rows of a sequence apart. The validation rows are not packed: the
    # evaluation loop drops the row lengths that mark where packed rows start, and they would attend to each other.
    if inputs.seq2seq:
        return seq2seq_sft.make_trainer(inputs)
    params = inputs.params
    common = {
        "model": inputs.model,
        "args": SFTConfig(**inputs.arguments, max_length=params.max_seq_length, packing=params.packing, packing_strategy="bfd", eval_packing=False, completion_only_loss=True),
        "train_dataset": inputs.train_rows,
        "eval_dataset": inputs.validation_rows,
        "processing_class": inputs.tokenizer,
        "peft_config": inputs.lora,
        "callbacks": inputs.callbacks,
    }
    regression = params.regression
    if regression is None:
        return AnswerPositionsSFTTrainer(**common) if params.lm_head_positions == "answers" else SFTTrainer(**common)
    terms = RegressionTerms()
    trainer = HybridLossSFTTrainer(
        **common, compute_loss_func=make_loss(inputs.tokenizer, regression.field, regression.weight, regression.loss, terms)
    )
    trainer.regression_terms = terms
    return trainer
