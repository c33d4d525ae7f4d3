#!/usr/bin/env bash
# Runs the README's first command, `bash scripts/setup.sh && pnpm ats-lora demo`, on a fresh machine image: a
# chroot of this machine's Debian release (debootstrap) holding only Node (this machine's binary, npm and
# headers), Python 3 and g++, with this machine's package-client settings (apt sources, pip and npm config) so
# it reaches the same registries. Needs root and debootstrap (apt-get install debootstrap). Slow: 10–20
# minutes on 2 cores. Usage: bash bench/fresh-machine.sh [ROOT_DIR]   (default /var/tmp/ats-lora-fresh)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="${1:-/var/tmp/ats-lora-fresh}"
say() { echo "fresh-machine: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "needs root (debootstrap, chroot)"; exit 1; }
command -v debootstrap >/dev/null || { say "needs debootstrap: apt-get install debootstrap"; exit 1; }

. /etc/os-release
# The mirror this machine's apt already uses (its configured sources), so no archive is named here.
mirror="$(sed -nE 's/^URIs:[[:space:]]*([^[:space:]]+).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1)"
[ -n "$mirror" ] || mirror="$(sed -nE 's/^deb[[:space:]]+([^[:space:]]+)[[:space:]]+'"$VERSION_CODENAME"'[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n 1)"

cleanup() { for m in proc sys dev opt/wheels opt/pypi opt/pypi-more; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done; }
trap cleanup EXIT
if [ ! -x "$root/usr/bin/python3" ]; then
  say "debootstrap $VERSION_CODENAME into $root"
  rm -rf "$root"
  debootstrap --variant=minbase "$VERSION_CODENAME" "$root" "$mirror" >/tmp/ats-lora-debootstrap.log 2>&1 ||
    { say "debootstrap failed: /tmp/ats-lora-debootstrap.log"; exit 1; }
  cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends python3 g++ ca-certificates >/dev/null
  # Node as this machine has it: the binary, npm, and the headers native addons compile against.
  cp /usr/bin/node "$root/usr/bin/node"
  mkdir -p "$root/usr/lib/node_modules" "$root/usr/include"
  cp -a /usr/lib/node_modules/npm "$root/usr/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
  [ -d /usr/include/node ] && cp -a /usr/include/node "$root/usr/include/node"
  # The package clients' settings of this machine (where pip finds its wheels, npm's options, the certificate
  # authorities its network needs).
  for file in /etc/pip.conf /etc/xdg/pip /root/.config/pip /root/.npmrc /usr/local/share/ca-certificates; do
    [ -e "$file" ] && { mkdir -p "$root$(dirname "$file")"; cp -a "$file" "$root$file"; }
  done
fi
chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
for dir in /opt/wheels /opt/pypi /opt/pypi-more; do
  [ -d "$dir" ] && { mkdir -p "$root$dir"; mount --bind "$dir" "$root$dir"; }
done
mount -t proc proc "$root/proc"
mount --bind /sys "$root/sys"
mount --bind /dev "$root/dev"
rm -rf "$root/work"
mkdir -p "$root/work/ats-lora"
# The committed main, as a fresh clone has it.
git -C "$repo" archive HEAD | tar -x -C "$root/work/ats-lora"
say "in the chroot: bash scripts/setup.sh && pnpm ats-lora demo"
start=$(date +%s)
status=0
# This machine's environment (its clients' certificate and index settings), with the chroot's own PATH.
chroot "$root" /usr/bin/env HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
  bash -c 'cd /work/ats-lora && bash scripts/setup.sh && pnpm ats-lora demo' || status=$?
say "exit $status after $(( $(date +%s) - start )) s"
exit "$status"
