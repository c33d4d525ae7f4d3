"""The hybrid loss for score-valued answers: loss = LM loss + W × regression loss on a number field.

The number must move the gradient, so it is read from the model's own distributions, not from sampled text:
at each digit of the reference's number (e.g. the 7 and 2 of "match_score": 0.72) the model's probabilities
over the ten digit tokens give an expected digit, and the expected digits weighted by their place values give
the predicted number. The regression loss (MSE, MAE or Huber) compares it with the reference's value. Numbers
whose digits are not single tokens in this tokenizer are skipped and counted."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import BadInput


@dataclass
class RegressionTerms:
    """Running sums since the last log, and over the run."""

    lm: float = 0.0
    regression: float = 0.0
    batches: int = 0
    rows_with_number: int = 0
    rows: int = 0
    totals: dict[str, float] = field(default_factory=lambda: {"lm": 0.0, "regression": 0.0, "batches": 0, "rows_with_number": 0, "rows": 0})

    def add(self, lm: float, regression: float, with_number: int, rows: int) -> None:
        self.lm += lm
        self.regression += regression
        self.batches += 1
        self.rows_with_number += with_number
        self.rows += rows
        for key, value in (("lm", lm), ("regression", regression), ("batches", 1), ("rows_with_number", with_number), ("rows", rows)):
            self.totals[key] += value

    def drain(self) -> dict[str, float]:
        if self.batches == 0:
            return {}
        logs = {"lm_loss": self.lm / self.batches, "regression_loss": self.regression / self.batches}
        self.lm = self.regression = 0.0
        self.batches = self.rows_with_number = self.rows = 0
        return logs


class LogsRegressionTerms:
    """A Trainer mixin: each logged loss carries the two terms of the hybrid loss since the last log (the trainer's
    `regression_terms`, None when it trains on the LM loss alone)."""

    regression_terms: RegressionTerms | None = None

    def log(self, logs, *rest, **kwargs):
        if self.regression_terms is not None and "loss" in logs:
            logs = {**logs, **self.regression_terms.drain()}
        return super().log(logs, *rest, **kwargs)


def make_loss(tokenizer, field_name: str, weight: float, kind: str, terms: RegressionTerms, causal: bool = True):
    """A `compute_loss_func(outputs, labels, num_items_in_batch)` for transformers' Trainer. A decoder-only
    model's logits at t predict the label at t + 1 (`causal`); an encoder–decoder's decoder logits at t predict
    the label at t (the model shifted its labels into the decoder's inputs)."""
    import torch
    import torch.nn.functional as F

    digit_ids = []
    for digit in "0123456789":
        token_id = tokenizer.convert_tokens_to_ids(digit)
        if token_id is None or token_id == tokenizer.unk_token_id:
            raise BadInput(f"the tokenizer has no single token for the digit {digit!r}; the regression loss needs one per digit")
        digit_ids.append(token_id)
    digit_index = torch.tensor(digit_ids)
    digit_values = torch.arange(10, dtype=torch.float32)
    pattern = re.compile(rf'"{re.escape(field_name)}"\s*:\s*(-?)(\d+)(?:\.(\d+))?')
    regression_fn = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.smooth_l1_loss}[kind]

    def loss_func(outputs: Any, labels, num_items_in_batch=None):
        logits = outputs.logits.float()
        offset = 1 if causal else 0
        shift_logits = logits[:, : logits.size(1) - offset, :]
        shift_labels = labels[:, offset:].to(logits.device)
        token_losses = F.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=-100, reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else (shift_labels != -100).sum()
        lm_loss = token_losses / torch.as_tensor(count, device=logits.device).clamp(min=1)

        predictions, targets = [], []
        for row in range(labels.size(0)):
            found = _number_positions(tokenizer, labels[row].tolist(), pattern, digit_ids)
            if found is None:
                continue
            positions, places, sign, target = found
            # Logits at position t - 1 predict the token at t (at t itself in a decoder of an encoder–decoder).
            probabilities = torch.softmax(logits[row, [p - offset for p in positions]][:, digit_index.to(logits.device)], dim=-1)
            expected = probabilities @ digit_values.to(logits.device)
            scale = torch.tensor([10.0**place for place in places], device=logits.device)
            predictions.append(sign * (expected * scale).sum())
            targets.append(target)
        if predictions:
            regression = regression_fn(torch.stack(predictions), torch.tensor(targets, device=logits.device))
        else:
            regression = torch.zeros((), device=logits.device)
        terms.add(float(lm_loss.detach()), float(regression.detach()), len(predictions), labels.size(0))
        return lm_loss + weight * regression

    return loss_func


def _number_positions(tokenizer, label_ids: list[int], pattern: re.Pattern[str], digit_ids: list[int]):
    """Token positions and place values of the reference number's digits in one row of labels, or None."""
    positions = [index for index, token in enumerate(label_ids) if token != -100]
    if not positions:
        return None
    text = ""
    starts: list[tuple[int, int]] = []  # (char offset, token position)
    for position in positions:
        starts.append((len(text), position))
        text += tokenizer.decode([label_ids[position]])
    match = pattern.search(text)
    if match is None:
        return None
    sign = -1.0 if match.group(1) else 1.0
    integer, fraction = match.group(2), match.group(3) or ""
    digits = [(match.start(2) + i, len(integer) - 1 - i) for i in range(len(integer))]
    if fraction:
        digits += [(match.start(3) + i, -(i + 1)) for i in range(len(fraction))]
    token_positions, places = [], []
    for char_offset, place in digits:
        covering = [position for start, position in starts if start <= char_offset]
        position = covering[-1]
        if label_ids[position] not in digit_ids:
            return None  # this digit shares a token with other characters
        token_positions.append(position)
        places.append(place)
    target = sign * float(f"{integer}.{fraction}" if fraction else integer)
    return token_positions, places, sign, target
