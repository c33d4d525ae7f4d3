#!/usr/bin/env bash
# Makes faiss-node's native addon (build/Release/faiss-node.node) usable. Its own install script downloads a
# prebuilt binary or clones faiss from GitHub; pnpm does not run it (pnpm-workspace.yaml). Here: first the
# prebuilt download, where the network allows it; otherwise a build of faiss-node's src/faiss.cc against the
# system's faiss (Debian: apt-get install libfaiss-dev). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg="$(node -e 'console.log(require("path").dirname(require.resolve("faiss-node/package.json", {paths: [require("path").resolve("packages/rag")]})))')"
addon="$pkg/build/Release/faiss-node.node"

works() { node -e "const f = require('$pkg'); const i = new f.IndexFlatIP(2); i.add([1, 0]); if (i.ntotal() !== 1) process.exit(1)" >/dev/null 2>&1; }

if [ -f "$addon" ] && works; then
  exit 0
fi

echo "build-faiss-node: trying faiss-node's prebuilt binary" >&2
if (cd "$pkg" && timeout 120 node "$(dirname "$(node -e 'console.log(require.resolve("prebuild-install/package.json", {paths: [process.argv[1]]}))' "$pkg")")/bin.js" --runtime napi >/dev/null 2>&1) && works; then
  echo "build-faiss-node: using the prebuilt binary" >&2
  exit 0
fi

if [ ! -f /usr/include/faiss/Index.h ]; then
  echo "build-faiss-node: no prebuilt binary could be downloaded and the faiss headers are missing; install them (Debian/Ubuntu: apt-get install libfaiss-dev) and run this again" >&2
  exit 1
fi
addon_api="$(node -e 'console.log(require("node-addon-api").include_dir)' 2>/dev/null || true)"
if [ -z "$addon_api" ]; then
  addon_api="$(node -e 'console.log(require(require.resolve("node-addon-api", {paths: [process.argv[1]]})).include_dir)' "$pkg")"
fi
node_headers="$(node -e 'const p=require("path"); console.log(p.join(p.dirname(process.execPath), "..", "include", "node"))')"
[ -f "$node_headers/node_api.h" ] || node_headers=/usr/include/node
echo "build-faiss-node: compiling against the system faiss ($(dpkg-query -W -f '${Version}' libfaiss-dev 2>/dev/null || echo unknown))" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# faiss 1.7.3 keeps idx_t inside Index; faiss-node 0.5 expects it in the namespace.
{ echo '#include <faiss/Index.h>'; echo 'namespace faiss { using idx_t = Index::idx_t; }'; cat "$pkg/src/faiss.cc"; } >"$work/faiss.cc"
mkdir -p "$(dirname "$addon")"
g++ -O3 -march=native -shared -fPIC -std=c++17 -fopenmp -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS \
  -I"$addon_api" -I"$node_headers" "$work/faiss.cc" -o "$addon" -lfaiss -lblas -llapack
works || { echo "build-faiss-node: the built addon does not load" >&2; exit 1; }
echo "build-faiss-node: built $addon" >&2
