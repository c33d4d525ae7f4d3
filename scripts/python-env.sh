#!/usr/bin/env bash
# Creates (or updates) .venv, the Python environment of the worker (packages/worker/python/requirements*.txt)
# and of the project's tools (requirements/tools.txt), from pinned versions. Idempotent: does nothing when the
# installed set already matches the pins. ATS_LORA_TOOLS_PYTHON picks the interpreter that creates it (default
# python3); ATS_LORA_PYTHON, read by the CLI, can point the worker at another environment instead.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${ATS_LORA_TOOLS_PYTHON:-python3}"
venv=.venv
stamp="$venv/.requirements.sha256"
requirements=(requirements/tools.txt packages/worker/python/requirements.txt packages/worker/python/requirements-test.txt)
want="$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "python-env: Python 3.10 or newer is needed")'
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
echo "python-env: installing ${requirements[*]} into $venv (a few minutes the first time)" >&2
pip_args=(--quiet --disable-pip-version-check)
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  # A CUDA machine: PyPI's Linux torch wheels are the CUDA builds.
  echo "python-env: NVIDIA GPU found; installing the CUDA build of torch" >&2
elif [ -n "${ATS_LORA_TORCH_INDEX:-}" ]; then
  # e.g. PyTorch's own CPU wheel index, for the small CPU-only torch, where that index is reachable.
  pip_args+=(--extra-index-url "$ATS_LORA_TORCH_INDEX")
fi
"$venv/bin/pip" install "${pip_args[@]}" $(printf -- '-r %s ' "${requirements[@]}") 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
echo "$want" > "$stamp"
