"""bench/gpu.sh's memory probe for the product's training worker (loaded through PYTHONPATH, never installed).

When ATS_LORA_BENCH_PROBE_DIR is set, a process that ran the ats-lora worker writes, as it exits, its peak memory
by the same instruments bench/gpu_baseline.py reads: torch.cuda.max_memory_allocated() and
max_memory_reserved() over the whole process where CUDA was used, and the process's peak RSS, into
PROBE_DIR/<pid>.json. (The worker's own metrics.json figure on CUDA is the training loop's peak over the peak
before it, which is not comparable with a whole-process peak.) Without the variable it does nothing.

Python imports one sitecustomize: this one shadows any other on the path while the benchmark runs."""

import os

if os.environ.get("ATS_LORA_BENCH_PROBE_DIR"):
    import atexit

    def _write_peak() -> None:
        import json
        import resource
        import sys

        if "ats_lora_worker" not in sys.modules:
            return
        record = {"pid": os.getpid(), "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            record.update(cuda_max_allocated_bytes=torch.cuda.max_memory_allocated(), cuda_max_reserved_bytes=torch.cuda.max_memory_reserved())
        folder = os.environ["ATS_LORA_BENCH_PROBE_DIR"]
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as handle:
            json.dump(record, handle)

    atexit.register(_write_peak)
