"""Running another program for a job (pip, llama.cpp's converters): its output goes to the worker's log, its
last lines into the error when it fails, and a cancel stops it."""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
from pathlib import Path

from .errors import WorkerError

TAIL_LINES = 15


def run_logged(command: list[str], *, what: str, hint: str, cancel: threading.Event | None = None, cwd: Path | None = None) -> None:
    """Runs `command`; a non-zero exit is a WorkerError saying `what` failed, with the output's last lines."""
    process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def relay() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip("\n"))
            # stderr is the worker's log; stdout is the protocol's and must not see this.
            sys.stderr.write(line)
        sys.stderr.flush()

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    cancelled = False
    if cancel is None:
        process.wait()
    while process.poll() is None:
        if cancel is not None and cancel.wait(0.2):
            cancelled = True
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    reader.join()
    if cancelled:
        raise WorkerError(f"{what}: cancelled")
    if process.returncode != 0:
        lines = [line for line in tail if line.strip()]
        raise WorkerError(
            f"{what} failed (exit {process.returncode})" + (":\n" + "\n".join(lines) if lines else ""),
            hint=hint,
            data={"command": command, "output_tail": lines},
        )
