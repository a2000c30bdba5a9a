#!/usr/bin/env bash
# Installs what repro and its tests need on a fresh Debian machine, then builds repro.
# Idempotent: each step is skipped when its result is already there.
#   --full  also what the whole test suite needs: docker.io + debootstrap (dockerd started
#           if none answers, fixture images built), Podman (Debian's podman, catatonit, runc;
#           configured where the host needs it, fixture images loaded into it), openssh
#           server and client (remote-engine tests), Debian's chromium (HTML report tests),
#           python3-flake8 (the probe's linter) and python3-jsonschema (contract tests), and a
#           single-node Slurm cluster (scripts/slurm-setup.sh: slurmctld, slurmd, munge)
set -euo pipefail
cd "$(dirname "$0")/.."
containers=""
for arg in "$@"; do
  case "$arg" in
    --full) containers=1 ;;
    *) echo "bootstrap.sh: unknown option $arg (the only option is --full)" >&2; exit 2 ;;
  esac
done

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

if [ -n "$containers" ]; then
  if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    say "installing docker.io and debootstrap"
    apt_install docker.io debootstrap
  fi
  if ! docker info >/dev/null 2>&1; then
    say "starting dockerd"
    $SUDO sh -c 'setsid nohup dockerd >/var/log/repro-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/repro-dockerd.log" >&2; exit 1; }
  fi
  if ! /usr/bin/python3 -c 'import flake8, jsonschema' >/dev/null 2>&1; then
    say "installing python3-flake8 and python3-jsonschema (the probe's linter and contract tests)"
    apt_install python3-flake8 python3-jsonschema
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    say "installing chromium (headless, for the HTML report tests)"
    apt_install chromium
  fi
  say "building fixture images (skipped when present)"
  bash fixtures/images/build.sh
  if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then
    say "installing openssh-server and openssh-client (remote-engine tests start their own sshd)"
    apt_install openssh-server openssh-client
  fi
  if ! command -v podman >/dev/null 2>&1 || ! command -v catatonit >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
    say "installing podman, catatonit and runc"
    apt_install podman catatonit runc
  fi
  bash scripts/podman-setup.sh
  say "a single-node Slurm cluster (scripts/slurm-setup.sh; the --executor slurm tests)"
  bash scripts/slurm-setup.sh
fi
