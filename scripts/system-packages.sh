#!/usr/bin/env bash
# Installs the system packages setup needs and the machine lacks, through the system's package manager where
# this user may (root, or sudo without a password); otherwise says the exact command and stops. Only what is
# missing is installed; a machine that has everything is left alone. ATS_LORA_NO_SYSTEM_PACKAGES=1 skips the
# installation and only reports.
set -euo pipefail
say() { echo "system-packages: $*" >&2; }

have_cblas() { for dir in /usr/include /usr/include/*-linux-gnu /usr/local/include; do [ -f "$dir/cblas.h" ] && return 0; done; return 1; }
have_lib() { for file in /usr/lib/*-linux-gnu/"$1".so /usr/lib/"$1".so /usr/lib64/"$1".so /usr/local/lib/"$1".so; do [ -e "$file" ] && return 0; done; return 1; }
have_chromium() { [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ] && return 0; command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; }

# Debian/Ubuntu package names. patch applies scripts/faiss/*.patch to faiss's source; git clones the llama.cpp
# source node-llama-cpp ships (a git bundle) for `export`'s converters.
missing=()
command -v make >/dev/null 2>&1 || missing+=(make)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v patch >/dev/null 2>&1 || missing+=(patch)
command -v git >/dev/null 2>&1 || missing+=(git)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
have_cblas || missing+=(libblas-dev)
have_lib liblapack || missing+=(liblapack-dev)
have_chromium || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

command="apt-get install -y --no-install-recommends ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  say "missing: ${missing[*]} (Debian/Ubuntu names); this machine has no apt-get: install their equivalents with its package manager and run setup again"
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  sudo=(sudo -n)
else
  # Without root: BLAS/LAPACK can come from PyPI (scripts/registry-blas.sh) and Chromium is for the tests only;
  # anything else has to be installed by someone who may.
  needed=()
  for package in "${missing[@]}"; do
    case "$package" in libblas-dev | liblapack-dev | chromium) ;; *) needed+=("$package") ;; esac
  done
  if [ ${#needed[@]} -gt 0 ]; then
    say "missing: ${missing[*]}; installing them needs root. Run this, then setup again:"
    say "  sudo apt-get update && sudo $command"
    exit 1
  fi
  case " ${missing[*]} " in *" libblas-dev "* | *" liblapack-dev "*)
    say "no system BLAS/LAPACK and no root to install them: faiss will link PyPI's OpenBLAS (scipy-openblas32) instead" ;;
  esac
  case " ${missing[*]} " in *" chromium "*)
    say "no Chromium: only the tests need it (sudo apt-get install chromium, or set CHROMIUM_PATH)" ;;
  esac
  exit 0
fi
if [ -n "${ATS_LORA_NO_SYSTEM_PACKAGES:-}" ]; then
  prefix="${sudo:+sudo }"
  say "missing: ${missing[*]}; ATS_LORA_NO_SYSTEM_PACKAGES is set, so nothing is installed. Run: ${prefix}apt-get update && ${prefix}$command"
  exit 1
fi
say "installing with apt-get${sudo:+ through sudo}: ${missing[*]} (Chromium is for the tests only)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  # Ubuntu ships Chromium as a snap only; the tests then need CHROMIUM_PATH pointing at a Chrome or Chromium.
  rest=()
  for package in "${missing[@]}"; do [ "$package" = chromium ] || rest+=("$package"); done
  if [ ${#rest[@]} -gt 0 ]; then "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${rest[@]}" >/dev/null || { say "apt-get could not install ${rest[*]}"; exit 1; }; fi
  have_chromium || say "Chromium could not be installed; only the tests need it (set CHROMIUM_PATH to a Chrome or Chromium binary)"
fi
