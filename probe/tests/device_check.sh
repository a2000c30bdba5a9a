#!/bin/bash
# Script mode on a CUDA machine, by hand (e.g. `OUT=/tmp/x bash probe/tests/device_check.sh`): the python there, CUDA
# scripts with the observer check, then the tracer tests. Writes summaries to $OUT.
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/repro-device-check}
mkdir -p "$OUT"
nvidia-smi -L
python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())" || exit 0
for args in '[]' '["--fp16"]'; do
  d=$(mktemp -d -p "$OUT")
  echo "{\"schema\": \"repro.config/1\", \"knobs\": {\"device\": \"cuda\"}, \"script\": {\"path\": \"$PWD/tests/scripts/cuda_amp.py\", \"args\": $args, \"observer\": true}}" > "$d/config.json"
  PYTHONPATH=$PWD python3 -m repro_probe script --config "$d/config.json" --out "$d/out" > "$d/log.txt" 2>&1
  echo "cuda_amp.py $args rc=$?"; tail -3 "$d/log.txt"
  python3 - "$d/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/run.json")); s = r["script"] or {}
print(r["status"], r["error"], "steps", r["steps"], "effective", {k: r["knobs_effective"].get(k) for k in ("device", "amp", "tf32_matmul")},
      "overridden", r.get("knobs_overridden"), "hooks", (s.get("hooks") or {}).get("optimizer"))
print("observer", s.get("observer_check"), "final", r["final"], "nonfinite", r["nonfinite"])
t = json.load(open(sys.argv[1] + "/trace.json"))
print([(e["name"], e["dtype"]) for e in t["steps"][1]["entries"]][:8] if len(t["steps"]) > 1 else None)
PY
done
cd tests && timeout 400 python3 -m unittest test_tracer_units test_tracer test_tracer_failures 2>&1 | tail -25
