"""The JSON-RPC 2.0 loop: one message per line on stdin, responses and notifications on the saved stdout.

At start-up the real stdout is moved out of the way: file descriptor 1 is pointed at stderr, so a print from
any library or C extension lands in the log, and protocol messages go only to a private duplicate of the
original descriptor."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from .contracts.protocol import InvalidParams, parse_params
from .contracts.protocol_types import (
    BUSY,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    PROTOCOL_VERSION,
    CancelParams,
    CancelResult,
    CreateTinyParams,
    CreateTinyResult,
    ExportParams,
    ExportResult,
    GenerateParams,
    GenerateResult,
    InitializeParams,
    InitializeResult,
    MergeParams,
    MergeResult,
    PlanMemoryParams,
    PlanMemoryResult,
    PrepareBaseParams,
    PrepareBaseResult,
    PullHubParams,
    PullHubResult,
    PullPackageFileParams,
    PullPackageFileResult,
    ScoreParams,
    ScoreResult,
    ShutdownParams,
    ShutdownResult,
    TrainParams,
    TrainResult,
)
from . import distributed
from .errors import WorkerError


def guard_stdout() -> IO[str]:
    """Returns the protocol stream and makes fd 1 (and sys.stdout) write to stderr from now on."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "w", encoding="utf-8", buffering=1)


@dataclass(frozen=True)
class Method:
    """A protocol method: the dataclass its params become, what answers it, and whether it runs as a background
    job (one at a time, cancellable) or at once."""

    params: type
    handler: Callable[[Any], Any]
    background: bool = False


class Server:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.write_lock = threading.Lock()
        self.job: threading.Thread | None = None
        self.cancel = threading.Event()
        # Set while a background job runs; cleared just before its answer is sent.
        self.busy = threading.Event()
        self.stopping = False
        # The protocol's methods: each one's params dataclass (generated from protocol.schema.json), handler, and
        # whether it runs as a cancellable background job.
        self.methods: dict[str, Method] = {
            "initialize": Method(InitializeParams, self.initialize),
            "cancel": Method(CancelParams, self.cancel_job),
            "shutdown": Method(ShutdownParams, self.shutdown),
            "train": Method(TrainParams, self.train, background=True),
            "generate": Method(GenerateParams, self.generate, background=True),
            "score": Method(ScoreParams, self.score, background=True),
            "merge": Method(MergeParams, self.merge, background=True),
            "create_tiny": Method(CreateTinyParams, self.create_tiny, background=True),
            "pull_package_file": Method(PullPackageFileParams, self.pull_package_file, background=True),
            "pull_hub": Method(PullHubParams, self.pull_hub, background=True),
            "prepare_base": Method(PrepareBaseParams, self.prepare_base, background=True),
            "export": Method(ExportParams, self.export, background=True),
            "plan_memory": Method(PlanMemoryParams, self.plan_memory),
        }

    # -- transport -----------------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps({"jsonrpc": "2.0", **message}, ensure_ascii=False, allow_nan=False, default=str)
        with self.write_lock:
            self.out.write(line + "\n")
            self.out.flush()

    def notify(self, method: str, params: Mapping[str, Any]) -> None:
        self.send({"method": method, "params": _finite(params)})

    def error(self, request_id: Any, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        self.send({"id": request_id, "error": {"code": code, "message": message, **({"data": data} if data else {})}})

    def serve(self, stdin: IO[str]) -> None:
        for raw in stdin:
            if not raw.strip():
                continue
            self.handle_line(raw)
            if self.stopping:
                break
        # stdin closed (the client went away) or shutdown: stop any job and leave.
        self.cancel.set()
        if self.job is not None:
            self.job.join()

    def handle_line(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except json.JSONDecodeError as error:
            return self.error(None, PARSE_ERROR, f"not JSON: {error}")
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
            return self.error(message.get("id") if isinstance(message, dict) else None, INVALID_REQUEST, "not a JSON-RPC 2.0 request")
        request_id = message.get("id")
        method = self.methods.get(message["method"])
        if method is None:
            return self.error(request_id, METHOD_NOT_FOUND, f"unknown method {message['method']!r}")
        try:
            params = parse_params(method.params, message.get("params") or {})
        except InvalidParams as error:
            return self.error(request_id, error.code, str(error), error.data)
        run = partial(method.handler, params)
        if not method.background:
            return self.respond(request_id, run)
        if self.busy.is_set():
            return self.error(request_id, BUSY, "the worker is busy with another job; cancel it first")
        self.cancel.clear()
        self.busy.set()
        self.job = threading.Thread(target=self.respond, args=(request_id, run, self.busy.clear), daemon=True)
        self.job.start()

    def respond(self, request_id: Any, run: Callable[[], Any], finished: Callable[[], None] | None = None) -> None:
        """Runs a request and sends its result or error; `finished` runs just before, so a client that sends its
        next job as soon as this answer arrives never finds the worker still busy."""
        try:
            message: dict[str, Any] = {"id": request_id, "result": _finite(run())}
        except WorkerError as error:
            data = {"type": type(error).__name__, **({"hint": error.hint} if error.hint else {}), **error.data}
            message = {"id": request_id, "error": {"code": error.code, "message": str(error), "data": data}}
        except Exception as error:  # noqa: BLE001 - every failure must reach the client as an error response
            traceback.print_exc(file=sys.stderr)
            message = {"id": request_id, "error": {"code": INTERNAL_ERROR, "message": f"{type(error).__name__}: {error}", "data": {"type": type(error).__name__}}}
        if finished is not None:
            finished()
        if request_id is not None or "error" in message:
            self.send(message)

    # -- methods -------------------------------------------------------------------------------------------
    def initialize(self, params: InitializeParams) -> InitializeResult:
        # The schema admits only this worker's protocol version.
        from .environment import describe

        return describe()

    def cancel_job(self, params: CancelParams) -> CancelResult:
        running = self.job is not None and self.job.is_alive()
        if running:
            self.cancel.set()
        return {"cancelled": running}

    def shutdown(self, params: ShutdownParams) -> ShutdownResult:
        self.stopping = True
        self.cancel.set()
        return {}

    def train(self, params: TrainParams) -> TrainResult:
        from .inference import release_inference_model
        from .training import train

        release_inference_model()
        if distributed.is_distributed():
            distributed.broadcast_job(params)
        return train(params, self.notify, self.cancel)

    def generate(self, params: GenerateParams) -> GenerateResult:
        from .inference import generate

        return generate(params, self.notify, self.cancel)

    def score(self, params: ScoreParams) -> ScoreResult:
        from .inference import score

        return score(params, self.notify, self.cancel)

    def merge(self, params: MergeParams) -> MergeResult:
        from .inference import merge

        return merge(params)

    def create_tiny(self, params: CreateTinyParams) -> CreateTinyResult:
        from .tiny import create_tiny_model

        return create_tiny_model(
            Path(params.output_dir),
            [Path(source) for source in params.sources],
            pretrain_steps=params.pretrain_steps,
            seed=params.seed,
            on_progress=lambda progress: self.notify("progress", progress),
            should_stop=self.cancel.is_set,
        )

    def pull_package_file(self, params: PullPackageFileParams) -> PullPackageFileResult:
        from .pull import pull_package_file

        return pull_package_file(params, self.notify, self.cancel)

    def pull_hub(self, params: PullHubParams) -> PullHubResult:
        from .pull import pull_hub

        return pull_hub(params, self.notify)

    def prepare_base(self, params: PrepareBaseParams) -> PrepareBaseResult:
        from .gguf_base import prepare_base

        return prepare_base(params, self.notify)

    def export(self, params: ExportParams) -> ExportResult:
        from .export import export

        return export(params, self.notify, self.cancel)

    def plan_memory(self, params: PlanMemoryParams) -> PlanMemoryResult:
        from .memory_plan import plan

        return plan(params, self.notify)


def _finite(value: Any) -> Any:
    """NaN and infinity are not JSON: they become null."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def serve() -> None:
    out = guard_stdout()
    # Ctrl-C in the terminal reaches the whole process group; the client turns it into a `cancel` request.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(f"ats-lora worker {os.getpid()} ready (protocol {PROTOCOL_VERSION})", file=sys.stderr, flush=True)
    Server(out).serve(sys.stdin)


def main() -> None:
    if not distributed.is_distributed():
        return serve()
    # Under torchrun: rank 0 serves the client, the others follow it (distributed.py).
    distributed.start()
    if not distributed.is_main():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        return distributed.follow()
    try:
        serve()
    finally:
        distributed.broadcast_job(None)
        distributed.finish()
