"""What this worker's machine can do: versions, CUDA devices, bf16, bitsandbytes."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

from . import __version__
from .contracts.protocol_types import PROTOCOL_VERSION, InitializeResult
from .modeling import bitsandbytes_support

PACKAGES = ["torch", "transformers", "peft", "trl", "accelerate", "bitsandbytes", "datasets", "safetensors", "tokenizers", "gguf", "sentencepiece"]


def describe() -> InitializeResult:
    import torch

    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    devices = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            devices.append(
                {
                    "index": index,
                    "name": properties.name,
                    "total_memory_bytes": properties.total_memory,
                    "capability": f"{properties.major}.{properties.minor}",
                }
            )
    cuda = torch.cuda.is_available()
    bf16 = torch.cuda.is_bf16_supported() if cuda else bool(torch.cpu._is_avx512_bf16_supported())  # noqa: SLF001
    return {
        "protocol_version": PROTOCOL_VERSION,
        "worker_version": __version__,
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "packages": versions,
        "device": "cuda" if cuda else "cpu",
        "cuda": {"available": cuda, "version": torch.version.cuda, "devices": devices},
        "bf16": bf16,
        "distributed": _distributed_backends(torch),
        "bitsandbytes": bitsandbytes_support(),
    }


def _distributed_backends(torch) -> dict[str, object]:
    import os

    dist = torch.distributed
    available = dist.is_available()
    return {
        "available": available,
        "gloo": available and dist.is_gloo_available(),
        "nccl": available and dist.is_nccl_available() and torch.cuda.is_available(),
        "cpu_cores": len(os.sched_getaffinity(0)),
    }
