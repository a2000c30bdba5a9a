#!/usr/bin/env bash
# Makes Debian's rootful Podman usable for repro's tests on this host, idempotently:
#  1. the fixture images are loaded from docker (`docker save | podman load`), skipped when
#     podman already holds the same image ID;
#  2. if podman cannot start a container with its defaults, and the reason is one this script
#     knows, a drop-in /etc/containers/containers.conf.d/50-repro.conf fixes it:
#       - "error setting rlimit …: operation not permitted": the host gives no CAP_SYS_RESOURCE
#         (some VMs and nested containers), so podman may not raise rlimits to its defaults →
#         default_ulimits at or under the hard limits;
#       - crun failing on a hybrid cgroup v1/v2 host → runtime = "runc".
#     A host where podman starts containers already is left alone.
# repro itself passes explicit --ulimit values, so its own containers start either way; the
# drop-in is for `podman build` of the derived fixtures and plain `podman run`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
DROPIN=/etc/containers/containers.conf.d/50-repro.conf

# 1. images: every repro-fixture image docker has, when podman lacks that exact ID
want=()
while read -r ref id; do
  [ -n "$ref" ] || continue
  have=$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
  [ "sha256:$have" = "$id" ] || want+=("$ref")
done < <(docker images --filter 'reference=repro-fixture:*' --format '{{.Repository}}:{{.Tag}} {{.ID}}' --no-trunc)
if [ ${#want[@]} -gt 0 ]; then
  say "loading into podman: ${want[*]}"
  docker save "${want[@]}" | podman load -q >/dev/null
fi

# 2. can podman start a container with its own defaults?
err=$(mktemp)
trap 'rm -f "$err"' EXIT
starts() { podman run --rm --network none repro-fixture:no-python true >/dev/null 2>"$err"; }
if starts; then
  exit 0
fi
lines=()
if grep -q 'rlimit' "$err"; then
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] || [ "$nofile" -gt 1024 ] && nofile=1024
  [ "$nproc" = unlimited ] || [ "$nproc" -gt 1024 ] && nproc=1024
  lines+=("[containers]" "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]")
fi
# crun fails on hybrid cgroup hosts (v1 controllers plus a v2 mount at /sys/fs/cgroup/unified)
if command -v runc >/dev/null 2>&1 && { grep -qi 'crun' "$err" || grep -q ' /sys/fs/cgroup/unified cgroup2 ' /proc/mounts; }; then
  lines+=("[engine]" 'runtime = "runc"')
fi
if [ ${#lines[@]} -eq 0 ]; then
  echo "podman cannot start a container, for a reason this script does not know:" >&2
  cat "$err" >&2
  exit 1
fi
say "podman cannot start containers with its defaults here ($(tail -n1 "$err" | cut -c1-120)); writing $DROPIN"
$SUDO mkdir -p "$(dirname "$DROPIN")"
printf '# written by repro scripts/podman-setup.sh: podman could not start containers with its defaults\n%s\n' "$(printf '%s\n' "${lines[@]}")" | $SUDO tee "$DROPIN" >/dev/null
starts || { echo "podman still cannot start a container:" >&2; cat "$err" >&2; exit 1; }
