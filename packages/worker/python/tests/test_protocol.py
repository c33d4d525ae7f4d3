"""The protocol is defined once, in TypeScript (zod); the committed JSON Schema generated from it must accept
the shared example messages here too, and the worker validates requests against it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from conftest import WorkerProcess

from ats_lora_worker.contracts import load_schema

SRC = Path(__file__).resolve().parents[2] / "src"
SCHEMA = load_schema("protocol.schema.json")
EXAMPLES = json.loads((SRC / "protocol-examples.json").read_text())


def validator(definition: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{definition}"})


def test_examples_match_the_schema():
    assert len(EXAMPLES) > 10
    for example in EXAMPLES:
        message, method = example["message"], example["method"]
        assert message["jsonrpc"] == "2.0"
        if example["kind"] == "request":
            validator(SCHEMA["x-methods"][method]).validate(message["params"])
        elif example["kind"] == "response":
            validator(SCHEMA["x-results"][method]).validate(message["result"])
        elif example["kind"] == "notification":
            validator(SCHEMA["x-notifications"][method]).validate(message["params"])
        else:
            assert set(message["error"]) >= {"code", "message"}


def test_the_worker_rejects_invalid_params_and_unknown_methods():
    worker = WorkerProcess()
    try:
        response, _ = worker.request("train", {"base": "x"})
        assert response["error"]["code"] == -32602
        assert "invalid params for train" in response["error"]["message"]
        response, _ = worker.request("fly", {})
        assert response["error"]["code"] == -32601
        response, _ = worker.request("initialize", {"protocol_version": 1})
        result = response["result"]
        validator(SCHEMA["x-results"]["initialize"]).validate(result)
        assert result["packages"]["torch"] and result["packages"]["peft"] and result["packages"]["trl"]
        response, _ = worker.request("shutdown", {})
        assert response["result"] == {}
    finally:
        code, _ = worker.close()
    assert code == 0


NOISY = '''
import ctypes, os, sys
print("noise from a library at import")
os.write(1, b"raw bytes on fd 1\\n")
libc = ctypes.CDLL(None)
libc.printf(b"printf from C\\n")
libc.fflush(None)
'''


def test_prints_to_stdout_cannot_corrupt_the_protocol(tmp_path):
    (tmp_path / "noisy_lib.py").write_text(NOISY)
    # The guard first, as main() does; then a library that prints every way it can, at import and mid-request.
    code = (
        "import sys, ats_lora_worker.server as s\n"
        "out = s.guard_stdout()\n"
        "import noisy_lib\n"
        "orig = s.Server.initialize\n"
        "def noisy(self, params):\n"
        "    print('noise inside a request'); import os; os.write(1, b'more raw bytes\\n')\n"
        "    return orig(self, params)\n"
        "s.Server.initialize = noisy\n"
        "s.Server(out).serve(sys.stdin)\n"
    )
    worker = WorkerProcess(extra_pythonpath=str(tmp_path), code=code)
    response, notifications = worker.request("initialize", {"protocol_version": 1})
    assert response["result"]["protocol_version"] == 1
    assert notifications == []
    worker.request("shutdown", {})
    _, stderr = worker.close()
    # Every stdout line was JSON (request() parsed each); the noise went to the log instead.
    for noise in ["noise from a library at import", "raw bytes on fd 1", "printf from C", "noise inside a request", "more raw bytes"]:
        assert noise in stderr
