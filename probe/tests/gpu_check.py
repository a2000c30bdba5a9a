"""Manual CUDA check of every workload (no GPU in CI, so not a unittest): on `cuda`, fp32 twice (bitwise
rerun?), fp16 and bf16 autocast, deterministic=warn and true (with CUBLAS_WORKSPACE_CONFIG); prints one
line per run and writes gpu-summary.json to $OUT (or the temp directory).

    cd probe && python3 tests/gpu_check.py
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import helpers

WORKSPACE = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
CASES = [("fp32", {}), ("fp32-rerun", {}), ("fp16", {"amp": "fp16"}), ("bf16", {"amp": "bf16"}),
         ("warn", {"deterministic": "warn", "env": WORKSPACE}), ("det", {"deterministic": True, "env": WORKSPACE})]
ROWS = {"mlp": 1024, "cnn": 512, "lstm": 512, "attention": 512}


def one(root, workload, case, knobs):
    d = os.path.join(root, workload, case)
    os.makedirs(d)
    sha = helpers.MAKERS[workload](os.path.join(d, "data.safetensors"), rows=ROWS[workload])
    cfg = helpers.write_config(d, sha, workload=workload, knobs=dict(knobs, device="cuda"))
    out = os.path.join(d, "out")
    r = helpers.run_probe("train", cfg, out, extra_env=knobs.get("env"))
    run = helpers.load_json(os.path.join(out, "run.json"))
    has_trace = os.path.exists(os.path.join(out, "trace.json"))  # not when CUDA is unavailable
    trace = helpers.load_json(os.path.join(out, "trace.json")) if has_trace else {"steps": []}
    fingerprint = helpers.load_json(os.path.join(out, "fingerprint.json"))
    digests = "".join(e["sha256"] for s in trace["steps"] for e in s["entries"])
    return {"workload": workload, "case": case, "rc": r.returncode, "status": run["status"], "error": run["error"],
            "final": run["final"], "steps": run["steps"], "model": run["model"],
            "alerts": run["nondeterministic_alerts"], "trace": hashlib.sha256(digests.encode()).hexdigest(),
            "timings": run["timings"], "attention": fingerprint["attention"], "cuda": fingerprint["cuda"],
            "stderr": r.stderr[-2000:] if r.returncode else ""}


def main():
    root = tempfile.mkdtemp(prefix="repro-gpu-check-")
    try:
        with ThreadPoolExecutor(len(ROWS)) as pool:
            per_workload = pool.map(lambda w: [one(root, w, c, k) for c, k in CASES], sorted(ROWS))
            results = [r for rs in per_workload for r in rs]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    with open(os.path.join(os.environ.get("OUT", tempfile.gettempdir()), "gpu-summary.json"), "w") as f:
        json.dump(results, f, indent=1)
    for r in results:
        print(r["workload"], r["case"], r["rc"], r["status"], r["error"], r["final"],
              r["model"] and r["model"]["attention_path"], r["alerts"], r["trace"][:12])
        sys.stdout.write(r["stderr"])
    return 1 if any(r["rc"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
