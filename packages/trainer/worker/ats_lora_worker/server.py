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
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from . import PROTOCOL_VERSION
from .errors import BadInput, WorkerError

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
BUSY = -32001
INTERNAL = -32603

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "src" / "protocol.schema.json"


def guard_stdout() -> IO[str]:
    """Returns the protocol stream and makes fd 1 (and sys.stdout) write to stderr from now on."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "w", encoding="utf-8", buffering=1)


class Server:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.write_lock = threading.Lock()
        self.job: threading.Thread | None = None
        self.cancel = threading.Event()
        # Set while a background job runs; cleared just before its answer is sent.
        self.busy = threading.Event()
        self.stopping = False
        self.validator = _load_validator()
        self.methods: dict[str, tuple[Callable[[dict[str, Any]], Any], bool]] = {
            # name: (handler, runs as a cancellable background job)
            "initialize": (self.initialize, False),
            "cancel": (self.cancel_job, False),
            "shutdown": (self.shutdown, False),
            "train": (self.train, True),
            "generate": (self.generate, True),
            "score": (self.score, True),
            "merge": (self.merge, True),
            "create_tiny": (self.create_tiny, True),
        }

    # -- transport -----------------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps({"jsonrpc": "2.0", **message}, ensure_ascii=False, allow_nan=False, default=str)
        with self.write_lock:
            self.out.write(line + "\n")
            self.out.flush()

    def notify(self, method: str, params: dict[str, Any]) -> None:
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
        method = message["method"]
        params = message.get("params") or {}
        if method not in self.methods:
            return self.error(request_id, METHOD_NOT_FOUND, f"unknown method {method!r}")
        problems = self.validator(method, params)
        if problems:
            return self.error(request_id, INVALID_PARAMS, f"invalid params for {method}: {problems[0]}", {"problems": problems})
        handler, background = self.methods[method]
        if not background:
            return self.respond(request_id, lambda: handler(params))
        if self.busy.is_set():
            return self.error(request_id, BUSY, "the worker is busy with another job; cancel it first")
        self.cancel.clear()
        self.busy.set()
        self.job = threading.Thread(target=self.respond, args=(request_id, lambda: handler(params), self.busy.clear), daemon=True)
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
            message = {"id": request_id, "error": {"code": INTERNAL, "message": f"{type(error).__name__}: {error}", "data": {"type": type(error).__name__}}}
        if finished is not None:
            finished()
        if request_id is not None or "error" in message:
            self.send(message)

    # -- methods -------------------------------------------------------------------------------------------
    def initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("protocol_version", PROTOCOL_VERSION) != PROTOCOL_VERSION:
            raise BadInput(f"protocol version {params['protocol_version']} asked, this worker speaks {PROTOCOL_VERSION}")
        from .environment import describe

        return describe()

    def cancel_job(self, params: dict[str, Any]) -> dict[str, Any]:
        running = self.job is not None and self.job.is_alive()
        if running:
            self.cancel.set()
        return {"cancelled": running}

    def shutdown(self, params: dict[str, Any]) -> dict[str, Any]:
        self.stopping = True
        self.cancel.set()
        return {}

    def train(self, params: dict[str, Any]) -> dict[str, Any]:
        from .inference import release_inference_model
        from .training import train

        release_inference_model()
        return train(params, self.notify, self.cancel)

    def generate(self, params: dict[str, Any]) -> dict[str, Any]:
        from .inference import generate

        return generate(params, self.notify, self.cancel)

    def score(self, params: dict[str, Any]) -> dict[str, Any]:
        from .inference import score

        return score(params, self.notify, self.cancel)

    def merge(self, params: dict[str, Any]) -> dict[str, Any]:
        from .inference import merge

        return merge(params)

    def create_tiny(self, params: dict[str, Any]) -> dict[str, Any]:
        from .tiny import create_tiny_model

        return create_tiny_model(
            Path(params["output_dir"]),
            [Path(source) for source in params["sources"]],
            pretrain_steps=params.get("pretrain_steps", 0),
            seed=params.get("seed", 42),
            on_progress=lambda progress: self.notify("progress", progress),
            should_stop=self.cancel.is_set,
        )


def _finite(value: Any) -> Any:
    """NaN and infinity are not JSON: they become null."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _load_validator() -> Callable[[str, dict[str, Any]], list[str]]:
    """Validates params against the protocol's JSON Schema (generated from the zod definitions)."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    validators = {
        method: jsonschema.Draft202012Validator({**schema, "$ref": f"#/$defs/{name}"})
        for method, name in schema["x-methods"].items()
    }

    def validate(method: str, params: dict[str, Any]) -> list[str]:
        validator = validators.get(method)
        if validator is None:
            return []
        return [
            f"{'.'.join(str(part) for part in error.absolute_path) or '(params)'}: {error.message}"
            for error in sorted(validator.iter_errors(params), key=lambda error: list(error.absolute_path))
        ]

    return validate


def main() -> None:
    out = guard_stdout()
    # Ctrl-C in the terminal reaches the whole process group; the client turns it into a `cancel` request.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(f"ats-lora worker {os.getpid()} ready (protocol {PROTOCOL_VERSION})", file=sys.stderr, flush=True)
    Server(out).serve(sys.stdin)
