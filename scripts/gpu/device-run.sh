#!/bin/bash
# The GPU validation as one command for the device machine (python and torch only; no node):
# the prepared variants × workloads (run_variants.py: each run through the folder's
# node_runner.py), the CUDA fingerprint, and the user-script tracer on CUDA with its observer
# check. Writes at most 8 files to $OUT.
#   repro prepare --variants scripts/gpu/variants.json --workload all --repeats 2 --epochs 1 \
#     --store-steps 0 --out .gpu/prepared          (here, first: repro.prepared/2, each variant a
#     --python python3 target with its --set list; python3 is the one this machine's PATH finds)
#   OUT=... bash scripts/gpu/device-run.sh          (there)
set -o pipefail
cd "$(dirname "$0")/../.."
P=.gpu/prepared
mkdir -p "$P/extra" "$OUT"
{
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.backends.cudnn.version(), torch.cuda.get_device_name(0))"
} > "$P/extra/machine.txt" 2>&1
cat "$P/extra/machine.txt"
# the user's-script tracer on CUDA: AMP, GradScaler and the observer check (traced vs untraced)
for args in '[]' '["--fp16"]'; do
  name=script-amp$([ "$args" = '[]' ] || echo -fp16)
  d="$P/extra/$name"; mkdir -p "$d"
  echo "{\"schema\": \"repro.config/1\", \"knobs\": {\"device\": \"cuda\"}, \"script\": {\"path\": \"$PWD/probe/tests/scripts/cuda_amp.py\", \"args\": $args, \"observer\": true}}" > "$d/config.json"
  PYTHONPATH=$PWD/probe timeout 120 python3 -m repro_probe script --config "$d/config.json" --out "$d/out" > "$d/log.txt" 2>&1
  echo "$name rc=$?"
  rm -f "$d/out/tensors.safetensors"
done
python3 scripts/gpu/run_variants.py "$P" "$OUT" --jobs 6 --deadline 360 --tensors "default+tf32-on,tf32-off+fp16,bf16+compile" 2>&1 | tee "$P/extra/log.txt"
ls -la "$OUT"
