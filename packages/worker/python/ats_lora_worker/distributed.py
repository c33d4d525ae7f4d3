"""Training across processes and machines under torchrun (PyTorch's own launcher, `python -m torch.distributed.run`).

torchrun starts one worker per device and sets RANK, WORLD_SIZE and LOCAL_RANK. Only rank 0 speaks the protocol:
it reads the client's requests and sends the notifications; every other rank points its stdout at stderr and
follows. A `train` request reaches the followers from rank 0 over a gloo control group (a broadcast of its
params), and so does the client's cancel: rank 0 broadcasts its cancel flag at each step's end, so every rank
stops at the same step and saves the same checkpoint. The training itself is transformers' Trainer, which runs
DDP or FSDP through accelerate on the process group started here (NCCL between GPUs, gloo between CPUs)."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import Any

# How long a follower waits for rank 0's next job: the client sends `train` right after `initialize`, so this
# only bounds how long followers outlive a rank 0 that hangs.
JOB_WAIT = timedelta(hours=6)

_control: Any = None


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main() -> bool:
    return rank() == 0


def backend() -> str:
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def start() -> None:
    """Joins the process group torchrun set up, and the gloo group jobs and cancel flags travel on."""
    global _control
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        per_node, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", "1")), torch.cuda.device_count()
        if per_node > gpus:
            # Every process of this node says it and leaves: torchrun then ends the run, and the client shows the log.
            raise SystemExit(f"ats-lora worker: --devices {per_node} but this machine has {gpus} CUDA GPU(s); use --devices {gpus} or fewer")
        torch.cuda.set_device(local_rank())
    if not dist.is_initialized():
        dist.init_process_group(backend=backend(), timeout=timedelta(minutes=30))
    _control = dist.new_group(backend="gloo", timeout=JOB_WAIT)


def broadcast_job(job: Any) -> Any:
    """Rank 0's job (train params, or None to leave) as every rank receives it."""
    import torch.distributed as dist

    holder = [job]
    dist.broadcast_object_list(holder, src=0, group=_control)
    return holder[0]


def agree(flag: bool) -> bool:
    """Rank 0's flag on every rank (the others' own is ignored); the flag itself outside torchrun."""
    if not is_distributed():
        return flag
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.broadcast(tensor, src=0, group=_control)
    return bool(tensor.item())


def barrier() -> None:
    if is_distributed():
        import torch.distributed as dist

        dist.barrier(group=_control)


def follow() -> None:
    """A follower's life: run each job rank 0 broadcasts, silently, until it broadcasts None."""
    import sys

    from .errors import WorkerError
    from .training import train

    while True:
        params = broadcast_job(None)
        if params is None:
            break
        print(f"rank {rank()}: training with rank 0", file=sys.stderr, flush=True)
        try:
            train(params, lambda method, notification: None, threading.Event())
        except WorkerError as error:
            # Bad input fails every rank alike before any collective: rank 0 reports it, and the next job may come.
            print(f"rank {rank()}: {error}", file=sys.stderr, flush=True)
    finish()


def finish() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def main_first(run: Any) -> Any:
    """run() on rank 0, then on the others: what writes shared files (a GGUF base's training folder, setting an
    incomplete checkpoint aside) is done once, and the others find it done."""
    if is_main():
        result = run()
        barrier()
        return result
    barrier()
    return run()
