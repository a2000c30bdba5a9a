#!/usr/bin/env bash
# Installs what repro and its tests need on a fresh Debian machine, then builds repro.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Debian's PyTorch for the local-python target (the probe runs with /usr/bin/python3).
if ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  say "installing python3-torch (Debian's PyTorch)"
  apt_install python3 python3-torch python3-numpy
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

say "building repro"
npm run --silent build
