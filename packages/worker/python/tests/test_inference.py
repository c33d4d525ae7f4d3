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
