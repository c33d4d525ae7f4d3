#!/usr/bin/env bash
# Creates (or updates) .venv with the pinned Python tools of requirements/tools.txt. Idempotent: does nothing
# when the installed set already matches the pins. ATS_LORA_TOOLS_PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${ATS_LORA_TOOLS_PYTHON:-python3}"
venv=.venv
stamp="$venv/.requirements.sha256"
want="$(sha256sum requirements/tools.txt | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "python-env: Python 3.10 or newer is needed")'
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
echo "python-env: installing requirements/tools.txt into $venv (a few minutes the first time)" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements/tools.txt 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
echo "$want" > "$stamp"
