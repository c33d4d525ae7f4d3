#!/usr/bin/env bash
# Makes faiss-node's native addon (build/Release/faiss-node.node) usable. pnpm applies
# patches/faiss-node@0.5.1.patch (Float32Array input without a per-number copy, setParameter) but does not run
# faiss-node's own install script (pnpm-workspace.yaml). In order of preference:
#   1. faiss 1.7.3 compiled here from Debian's source package for this CPU (-march=native, AVX2 kernels, plus
#      scripts/faiss/*.patch), cached under ~/.cache/ats-lora, and the patched addon linked against it;
#   2. faiss-node's prebuilt binary, where that download works (no typed-array fast path: slower adds);
#   3. the patched addon compiled against the system's faiss (Debian: apt-get install libfaiss-dev).
# docs/benchmarks.md shows why (1) comes first. Idempotent; ATS_LORA_FAISS=prebuilt|system skips (1).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
pkg="$(node -e 'console.log(require("path").dirname(require.resolve("faiss-node/package.json", {paths: [require("path").resolve("packages/rag")]})))')"
addon="$pkg/build/Release/faiss-node.node"
faiss_version=1.7.3
faiss_sha256=3e4fac26d8c9e9008ecea4ae5fc414c658998fce4ba75835058b1a71d3516002

loads() { node -e "const f = require('$pkg'); const i = new f.IndexFlatIP(2); i.add([1, 0]); if (i.ntotal() !== 1) process.exit(1)" >/dev/null 2>&1; }
fast() { node -e "const f = require('$pkg'); const i = new f.IndexFlatIP(2); i.add(new Float32Array([1, 0])); if (i.search(new Float32Array([1, 0]), 1).labels[0] !== 0) process.exit(1)" >/dev/null 2>&1; }
say() { echo "build-faiss-node: $*" >&2; }

# fetch_faiss_source DIR: faiss's upstream tarball, through apt-get source from the deb-src twins of this machine's
# configured apt sources (a private list folder: the system's apt state is not touched, no root needed).
fetch_faiss_source() {
  local dir="$1" apt="$1/apt"
  command -v apt-get >/dev/null || { say "apt-get is needed to fetch faiss's source from Debian's archive"; return 1; }
  mkdir -p "$apt/lists/partial" "$apt/sources"
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] && { sed -E 's/^Types:.*/Types: deb-src/' "$file"; echo; }
  done >"$apt/sources/deb-src.sources"
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] && sed -nE 's/^[[:space:]]*deb[[:space:]]+/deb-src /p' "$file"
  done >"$apt/sources/deb-src.list"
  local options=(-qq -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$apt/sources" -o Dir::State::Lists="$apt/lists"
    -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)")
  apt-get "${options[@]}" update >"$apt/update.log" 2>&1 || { say "apt-get update of the source lists failed: $(tail -n 3 "$apt/update.log")"; return 1; }
  local revision
  revision="$(apt-cache "${options[@]}" showsrc faiss 2>/dev/null | sed -n "s/^Version: \(${faiss_version//./\\.}-.*\)/\1/p" | head -n 1)"
  [ -n "$revision" ] || { say "the configured apt sources have no faiss $faiss_version source package"; return 1; }
  (cd "$dir" && apt-get "${options[@]}" source --download-only "faiss=$revision" >"$apt/source.log" 2>&1) ||
    { say "apt-get source faiss=$revision failed: $(tail -n 3 "$apt/source.log")"; return 1; }
  mv "$dir/faiss_${faiss_version}.orig.tar.gz" "$dir/faiss.tar.gz"
}

if [ -f "$addon" ] && fast; then
  exit 0
fi

addon_api="$(node -e 'console.log(require(require.resolve("node-addon-api", {paths: [process.argv[1]]})).include_dir)' "$pkg")"
node_headers="$(node -e 'const p=require("path"); console.log(p.join(p.dirname(process.execPath), "..", "include", "node"))')"
[ -f "$node_headers/node_api.h" ] || node_headers=/usr/include/node
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# faiss 1.7.3 keeps idx_t inside Index; faiss-node 0.5 expects it in the namespace.
{ echo '#include <faiss/Index.h>'; echo 'namespace faiss { using idx_t = Index::idx_t; }'; cat "$pkg/src/faiss.cc"; } >"$work/faiss.cc"

# compile_addon INCLUDE_DIR LIBS...: the patched faiss-node source against one faiss.
compile_addon() {
  local include="$1"
  shift
  mkdir -p "$(dirname "$addon")"
  g++ -O3 -march=native -shared -fPIC -std=c++17 -fopenmp -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS \
    -I"$include" -I"$addon_api" -I"$node_headers" "$work/faiss.cc" -o "$addon" "$@" "${blas_link[@]}" -lblas -llapack
}

# BLAS/LAPACK: the system's (libblas-dev, liblapack-dev), else PyPI's OpenBLAS through scripts/registry-blas.sh
# (also when ATS_LORA_BLAS=registry).
blas_link=()
cmake_blas=()
have_lib() { for file in /usr/lib/*-linux-gnu/"$1".so /usr/lib/"$1".so /usr/lib64/"$1".so /usr/local/lib/"$1".so; do [ -e "$file" ] && return 0; done; return 1; }
system_blas() { have_lib libblas && have_lib liblapack; }
if [ "${ATS_LORA_BLAS:-}" = registry ] || ! system_blas; then
  if forward="$(bash scripts/registry-blas.sh "${ATS_LORA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ats-lora}")"; then
    say "BLAS/LAPACK from PyPI's scipy-openblas32 ($forward)"
    blas_link=(-L"$forward" -Wl,-rpath,"$forward")
    cmake_blas=(-DBLA_VENDOR=Generic -DCMAKE_LIBRARY_PATH="$forward")
  fi
fi

# build_faiss: prints the folder holding the static library and the include root.
build_faiss() {
  command -v cmake >/dev/null && command -v g++ >/dev/null || { say "cmake and g++ are needed to compile faiss"; return 1; }
  local level=generic
  grep -qw avx2 /proc/cpuinfo 2>/dev/null && level=avx2
  local key
  key="$(cat scripts/faiss/*.patch | sha256sum | cut -c1-12)-$level-$(gcc -march=native -Q --help=target 2>/dev/null | awk '$1 == "-march=" { print $2; exit }')"
  local cache="${ATS_LORA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ats-lora}/faiss-$faiss_version-$key"
  local lib="$cache/build/faiss/libfaiss$([ "$level" = avx2 ] && echo _avx2).a"
  if [ ! -f "$lib" ]; then
    say "compiling faiss $faiss_version ($level, -march=native) into $cache (about a minute on 2 cores)"
    rm -rf "$cache"
    mkdir -p "$cache"
    fetch_faiss_source "$work" || return 1
    echo "$faiss_sha256  $work/faiss.tar.gz" | sha256sum -c --quiet - || { say "faiss_${faiss_version}.orig.tar.gz: checksum mismatch"; return 1; }
    tar -xzf "$work/faiss.tar.gz" -C "$cache" --strip-components=1
    for patch in scripts/faiss/*.patch; do patch -s -d "$cache" -p1 <"$root/$patch"; done
    cmake -S "$cache" -B "$cache/build" -DCMAKE_BUILD_TYPE=Release -DFAISS_OPT_LEVEL="$level" -DCMAKE_CXX_FLAGS=-march=native \
      -DFAISS_ENABLE_GPU=OFF -DFAISS_ENABLE_PYTHON=OFF -DFAISS_ENABLE_C_API=OFF -DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=OFF \
      -DCMAKE_POSITION_INDEPENDENT_CODE=ON "${cmake_blas[@]}" >"$cache/cmake.log" 2>&1 || { say "cmake failed: $cache/cmake.log"; return 1; }
    cmake --build "$cache/build" --target "faiss$([ "$level" = avx2 ] && echo _avx2)" -j "$(nproc)" >"$cache/build.log" 2>&1 ||
      { say "faiss did not compile: $cache/build.log"; return 1; }
  fi
  echo "$cache" "$lib"
}

if [ "${ATS_LORA_FAISS:-}" != prebuilt ] && [ "${ATS_LORA_FAISS:-}" != system ]; then
  if built="$(build_faiss)"; then
    read -r source lib <<<"$built"
    if compile_addon "$source" "$lib" && fast; then
      say "built $addon against faiss $faiss_version compiled for this CPU"
      exit 0
    fi
    say "the addon did not build against $source"
  fi
fi

if [ "${ATS_LORA_FAISS:-}" != system ]; then
  say "trying faiss-node's prebuilt binary"
  prebuild="$(dirname "$(node -e 'console.log(require.resolve("prebuild-install/package.json", {paths: [process.argv[1]]}))' "$pkg")")/bin.js"
  if (cd "$pkg" && timeout 120 node "$prebuild" --runtime napi >/dev/null 2>&1) && loads; then
    say "using the prebuilt binary (plain-array input: adding vectors is slower than with the compiled build)"
    exit 0
  fi
fi

if [ -f /usr/include/faiss/Index.h ]; then
  say "compiling against the system faiss ($(dpkg-query -W -f '${Version}' libfaiss-dev 2>/dev/null || echo unknown))"
  compile_addon /usr/include -lfaiss && loads && { say "built $addon"; exit 0; }
fi
say "no way to a working faiss-node: it needs cmake, g++ and BLAS/LAPACK headers (scripts/system-packages.sh installs them; Debian: apt-get install cmake g++ libblas-dev liblapack-dev) or libfaiss-dev; run setup again"
exit 1
