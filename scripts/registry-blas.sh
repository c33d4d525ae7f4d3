#!/usr/bin/env bash
# BLAS and LAPACK for faiss where the system has none and none can be installed (no root, no sudo): the OpenBLAS
# that PyPI's scipy-openblas32 ships. Its symbols carry a scipy_ prefix (scipy_sgemm_), while faiss calls the
# plain Fortran names (sgemm_), so a small forwarding library named libblas.so / liblapack.so is made beside it:
# one jump per symbol, which passes every argument through untouched whatever the function's signature.
# Prints the folder holding the forwarding libraries. Usage: registry-blas.sh CACHE_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.3.34.481.3
dir="$1/scipy-openblas32-$version"
say() { echo "registry-blas: $*" >&2; }

if [ ! -f "$dir/forward/libblas.so" ]; then
  case "$(uname -m)" in
    x86_64) jump='jmp scipy_%s@PLT' ;;
    aarch64) jump='b scipy_%s' ;;
    *) say "no forwarding library for $(uname -m)"; exit 1 ;;
  esac
  rm -rf "$dir"
  mkdir -p "$dir/wheel" "$dir/forward"
  # pip of the project's venv where setup made it, else the system's.
  pip=(python3 -m pip)
  [ -x .venv/bin/pip ] && pip=(.venv/bin/pip)
  "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d "$dir/wheel" "scipy-openblas32==$version" ||
    { say "could not download scipy-openblas32 $version from PyPI with ${pip[*]}"; exit 1; }
  python3 -m zipfile -e "$dir"/wheel/scipy_openblas32-*.whl "$dir/package"
  lib="$dir/package/scipy_openblas32/lib"
  [ -f "$lib/libscipy_openblas.so" ] || { say "the wheel has no lib/libscipy_openblas.so"; exit 1; }
  # Every Fortran-named function (scipy_name_) gets a plain twin that jumps to it.
  nm -D --defined-only "$lib/libscipy_openblas.so" | awk '$2 == "T" && $3 ~ /^scipy_[a-z0-9_]+_$/ { print substr($3, 7) }' | sort -u >"$dir/symbols"
  [ -s "$dir/symbols" ] || { say "no scipy_-prefixed BLAS symbols found in libscipy_openblas.so"; exit 1; }
  {
    echo '.text'
    while read -r name; do
      printf '.globl %s\n.type %s, @function\n%s:\n  '"$jump"'\n' "$name" "$name" "$name" "$name"
    done <"$dir/symbols"
    echo '.section .note.GNU-stack,"",@progbits'
  } >"$dir/forward.S"
  gcc -shared -fPIC "$dir/forward.S" -o "$dir/forward/libblas.so" -L"$lib" -lscipy_openblas -Wl,-rpath,"$lib"
  ln -sf libblas.so "$dir/forward/liblapack.so"
  say "made $dir/forward/libblas.so: $(wc -l <"$dir/symbols") BLAS/LAPACK functions forwarded to scipy-openblas32 $version"
fi
echo "$dir/forward"
