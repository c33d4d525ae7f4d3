"""Fixtures: a tiny model made by the worker itself, and small training-pair folders in build-db's layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parents[1]
REPO = WORKER.parents[2]
sys.path.insert(0, str(WORKER))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from ats_lora_worker.tiny import create_tiny_model

    folder = tmp_path_factory.mktemp("tiny") / "model"
    create_tiny_model(folder, [REPO / "data"], pretrain_steps=40, seed=42, hidden_size=128, layers=2, heads=4, kv_heads=2, intermediate_size=384)
    return folder


# A ChatML-shaped template on the tiny tokenizer's own special tokens: each turn ends with </s> (its EOS) and
# then a newline, as SmolLM2's <|im_end|>\n does.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<s>' + message['role'] + '\\n' + message['content'] + '</s>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<s>assistant\\n' }}{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_chat_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny model with a chat template in its tokenizer (the weights are the tiny model's)."""
    import shutil

    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-chat") / "model"
    shutil.copytree(tiny_model, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> Path:
    """A tiny FLAN-T5-architecture encoder–decoder: random weights from a T5Config, and a byte-level BPE tokenizer
    trained here on the bundled data with T5's special tokens (<pad> 0 starts the decoder, </s> 1 ends every
    sequence). Nothing is downloaded."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    from ats_lora_worker.tiny import corpus_texts

    folder = tmp_path_factory.mktemp("tiny-t5") / "model"
    texts = [text for text in corpus_texts([REPO / "data"]) if text.strip()]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(
        texts,
        trainer=trainers.BpeTrainer(vocab_size=1024, special_tokens=["<pad>", "</s>", "<unk>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False),
    )
    eos = backend.token_to_id("</s>")
    # Like T5's tokenizer: </s> closes every encoded text, the encoder's input and the decoder's labels alike.
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", model_max_length=512)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=64,
        d_kv=16,
        d_ff=128,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="relu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_split(folder: Path, fmt: str, split: str, rows: list[dict]) -> None:
    (folder / fmt).mkdir(parents=True, exist_ok=True)
    with (folder / fmt / f"{split}.jsonl").open("w") as handle:
        for row in rows:
            handle.write(json.dumps({**row, "task": "match_score", "source_ids": ["x"]}) + "\n")


# Short, fixed examples: enough for a tiny model to learn the answers, and to end them with EOS.
SCORES = [
    ("Score: Go developer for a Go role.", '{"match_score": 0.9}'),
    ("Score: nurse for a Go role.", '{"match_score": 0.1}'),
    ("Score: Java developer for a Go role.", '{"match_score": 0.5}'),
    ("Score: SRE with Kubernetes for a DevOps role.", '{"match_score": 0.8}'),
    ("Score: accountant for a DevOps role.", '{"match_score": 0.1}'),
    ("Score: SAP FICO consultant for an SAP role.", '{"match_score": 0.9}'),
    ("Score: teacher for an SAP role.", '{"match_score": 0.2}'),
    ("Score: data analyst for a data scientist role.", '{"match_score": 0.6}'),
]


@pytest.fixture(scope="session")
def pairs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pairs")
    sft = [{"prompt": prompt + "\nAnswer:\n", "completion": answer} for prompt, answer in SCORES]
    write_split(folder, "sft", "train", sft)
    write_split(folder, "sft", "val", sft[:2])
    dpo = [{"prompt": prompt + "\nAnswer:\n", "chosen": answer, "rejected": '{"match_score": 0.5}'} for prompt, answer in SCORES if "0.5" not in answer]
    write_split(folder, "dpo", "train", dpo)
    kto = [{"prompt": prompt + "\nAnswer:\n", "completion": answer, "label": True} for prompt, answer in SCORES] + [
        {"prompt": prompt + "\nAnswer:\n", "completion": "I cannot score this.", "label": False} for prompt, _ in SCORES
    ]
    write_split(folder, "kto", "train", kto)
    return folder


def train_params(base: Path, data: Path, output: Path, **overrides) -> dict:
    params = {
        "base": str(base),
        "data_dir": str(data),
        "output_dir": str(output),
        "format": "sft",
        "epochs": 100,
        "batch_size": 4,
        "max_steps": 20,
        "learning_rate": 3e-3,
        "grad_accum": 1,
        "warmup_steps": 1,
        "max_seq_length": 128,
        "quantization": "none",
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_double_quant": True,
        "compute_dtype": "float32",
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "target_modules": "auto",
        "lora_top_layers": None,
        "lora_bias": "none",
        "packing": False,
        "gradient_checkpointing": False,
        "attn_implementation": "sdpa",
        "strategy": "ddp",
        "lm_head_positions": "answers",
        "lr_scheduler": "constant",
        "save_steps": 5,
        "logging_steps": 2,
        "seed": 42,
        "resume": False,
        "early_stopping_patience": None,
        "regression": None,
    }
    params.update(overrides)
    return params


class WorkerProcess:
    """The real worker as a child process, spoken to over its stdin/stdout."""

    def __init__(self, extra_pythonpath: str | None = None, code: str | None = None, processes: int = 1) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(WORKER), extra_pythonpath])), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "ats_lora_worker"]
        if processes > 1:
            # Under torchrun, as `train --devices N` starts it: rank 0 speaks the protocol.
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m", "ats_lora_worker"]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=WORKER)
        self.next_id = 1
        self.lines: list[str] = []

    def request(self, method: str, params: dict) -> tuple[dict, list[dict]]:
        """Sends a request; returns its response and the notifications that came before it."""
        request_id = self.next_id
        self.next_id += 1
        self.process.stdin.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}) + "\n")
        self.process.stdin.flush()
        notifications = []
        while True:
            line = self.process.stdout.readline()
            assert line, f"the worker closed its stdout; stderr:\n{self.process.stderr.read()[-3000:]}"
            self.lines.append(line)
            message = json.loads(line)  # every stdout line must be protocol JSON
            if message.get("id") == request_id:
                return message, notifications
            notifications.append(message)

    def close(self) -> tuple[int, str]:
        self.process.stdin.close()
        code = self.process.wait(timeout=60)
        return code, self.process.stderr.read()
