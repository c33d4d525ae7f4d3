"""Errors the worker reports to the client as JSON-RPC errors with a stable code and a hint."""

from __future__ import annotations

from .contracts.protocol_types import INVALID_PARAMS, WORKER_ERROR


class WorkerError(Exception):
    """A failure the user can act on: `message` says what, `hint` what to do."""

    code = WORKER_ERROR

    def __init__(self, message: str, hint: str | None = None, data: dict | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.data = data or {}


class BadInput(WorkerError):
    """Bad parameters, a missing model or unusable training data (the CLI exits 2)."""

    code = INVALID_PARAMS
