"""The worker keeps the last model it loaded for generate and score, and loads again when the folder changes."""

import os
import time
from pathlib import Path

from ats_lora_worker.inference import load_for_inference, release_inference_model


def test_keeps_the_last_model_until_its_folder_changes(tiny_model: Path) -> None:
    first = load_for_inference(str(tiny_model), None)
    assert load_for_inference(str(tiny_model), None) is first
    # A model written again (a retrained adapter in the same folder) is another model.
    stamp = time.time() + 5
    os.utime(tiny_model / "config.json", (stamp, stamp))
    again = load_for_inference(str(tiny_model), None)
    assert again is not first
    release_inference_model()
    assert load_for_inference(str(tiny_model), None) is not again
    release_inference_model()


def test_batched_greedy_answers_are_the_answers_generated_one_at_a_time(tiny_model: Path) -> None:
    """Left-padded batches (prompts of different lengths, a last batch not full) answer as one prompt at a time
    does: the same tokens, the same text, ending at the same EOS."""
    import threading

    from conftest import SCORES

    from ats_lora_worker.contracts.protocol import parse_params
    from ats_lora_worker.contracts.protocol_types import GenerateParams
    from ats_lora_worker.inference import generate

    prompts = [prompt + "\nAnswer:\n" for prompt, _ in SCORES[:5]] + ["Summarise this resume in one line: ten years of Go, Kubernetes and on-call.\n"]
    lengths = {len(prompt) for prompt in prompts}
    assert len(lengths) > 3

    def answers(batch_size: int) -> list[dict]:
        request = {"model": str(tiny_model), "prompts": prompts, "max_new_tokens": 24, "temperature": 0, "seed": 1, "batch_size": batch_size}
        result = generate(parse_params(GenerateParams, request), lambda *_: None, threading.Event())
        assert result["cancelled"] is False and len(result["outputs"]) == len(prompts)
        return [{key: output[key] for key in ("text", "tokens", "ended_with_eos")} for output in result["outputs"]]

    assert answers(4) == answers(1)
    release_inference_model()
    # test_training's SFT test checks the same on an adapter whose answers end at EOS at different lengths.
