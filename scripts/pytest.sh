#!/usr/bin/env bash
# The Python worker's tests, with the worker's interpreter ($ATS_LORA_PYTHON, else .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${ATS_LORA_PYTHON:-.venv/bin/python}"
exec "$python" -m pytest -q -p no:cacheprovider packages/worker/python/tests "$@"
