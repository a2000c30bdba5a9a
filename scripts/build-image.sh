#!/usr/bin/env bash
# Builds the repro image (Dockerfile) from a staging directory holding only what the tool needs
# at run time: bin/, dist/src, the probe (and its container launcher), production node_modules.
# No network is used.
#   usage: scripts/build-image.sh [TAG]   (default repro:dev)
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-repro:dev}"
[ -d dist/src ] && [ -f oclif.manifest.json ] || npm run --silent build
docker image inspect repro-base:trixie-node >/dev/null 2>&1 || bash fixtures/images/build.sh --only trixie-node
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/dist" "$stage/probe"
cp -r bin package.json package-lock.json oclif.manifest.json "$stage/"
cp -r dist/src "$stage/dist/src"
cp -r probe/repro_probe "$stage/probe/repro_probe"
cp probe/container_boot.py "$stage/probe/"
cp -r node_modules "$stage/node_modules"
(cd "$stage" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
find "$stage" -name '__pycache__' -prune -exec rm -rf {} +
docker build -q -t "$tag" -f Dockerfile "$stage" >/dev/null 2>"$stage.log" || { cat "$stage.log" >&2; exit 1; }
rm -f "$stage.log"
echo "$tag"
