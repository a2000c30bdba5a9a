"""Runs the probe runs `repro prepare` wrote (manifest.json) on a machine with python and torch
only — the GPU box — several at a time, then packs what comes back into a few tar.gz files.

    python3 scripts/gpu/run_variants.py PREPARED_DIR OUT_DIR [--jobs N] [--tensors VARIANT,...]

Every run is a fresh `python3 -m repro_probe train` process (repeats must not share a process).
Each run's artifacts stay in its directory; results.json records exit code, wall seconds and the
stderr tail. The packs: runs-json.tar.gz (every run.json, trace.json, fingerprint.json), one
tensors-<group>.tar.gz per group of variants in --tensors ("a+b,c+d": two files; repeat 1
only), and extra.tar.gz (the CUDA fingerprint and anything under PREPARED_DIR/extra)."""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


START = time.time()
DEADLINE = [0.0]


def run_one(prepared, run, python):
    if DEADLINE[0] and time.time() - START > DEADLINE[0]:
        return {"dir": run["dir"], "variant": run["variant"], "workload": run["workload"], "repeat": run["repeat"],
                "rc": None, "wall_seconds": 0, "stderr_tail": "skipped: past --deadline"}
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "probe"), PYTHONHASHSEED="0")
    env.update(run["knobs"]["env"])
    out = os.path.join(prepared, run["dir"])
    cmd = [python, "-m", "repro_probe", "train", "--config", os.path.join(out, "inputs", "config.json"), "--out", out]
    t0 = time.time()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    with open(os.path.join(out, "stderr.txt"), "w") as f:
        f.write(p.stderr[-65536:])
    return {"dir": run["dir"], "variant": run["variant"], "workload": run["workload"], "repeat": run["repeat"],
            "rc": p.returncode, "wall_seconds": round(time.time() - t0, 3), "stderr_tail": p.stderr[-2000:]}


def fingerprint(prepared, python, device):
    """The fingerprint mode on `device` (after the probe's warm-up on it)."""
    d = os.path.join(prepared, "fingerprint-" + device.replace(":", ""))
    os.makedirs(d, exist_ok=True)
    cfg = {"schema": "repro.config/1", "knobs": {"device": device}}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "probe"))
    cmd = [python, "-m", "repro_probe", "fingerprint", "--config", os.path.join(d, "config.json"), "--out", d]
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return d, p.returncode, p.stderr[-2000:]


def report(res):
    fields = (res["variant"], res["workload"], res["repeat"], res["rc"], res["wall_seconds"])
    line = "%-14s %-10s r%d rc=%s %.1f s" % fields
    print(line, flush=True)


def pack(path, base, names):
    with tarfile.open(path, "w:gz") as tar:
        for n in names:
            full = os.path.join(base, n)
            if os.path.exists(full):
                tar.add(full, arcname=n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prepared")
    ap.add_argument("out")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--tensors", default="default")
    ap.add_argument("--fingerprint-device", default="cuda")
    ap.add_argument("--deadline", type=float, default=0, help="seconds after which runs not started are skipped")
    args = ap.parse_args()
    DEADLINE[0] = args.deadline
    with open(os.path.join(args.prepared, "manifest.json")) as f:
        manifest = json.load(f)
    if manifest.get("schema") != "repro.prepared/1":
        sys.exit("%s: %s is not repro.prepared/1 (knob variants, `repro prepare --variants`), which this script runs; "
                 "a repro.prepared/2 folder runs with its own run.sh, then `repro compare` it"
                 % (args.prepared, manifest.get("schema")))
    runs = manifest["runs"]
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    fp_dir, fp_rc, fp_err = fingerprint(args.prepared, args.python, args.fingerprint_device)
    print("fingerprint rc=%d in %.1f s" % (fp_rc, time.time() - t0), flush=True)
    # compiled runs last and apart: they are the slow ones, and they use every core compiling
    plain = [r for r in runs if not r["knobs"]["compile"]]
    slow = [r for r in runs if r["knobs"]["compile"]]
    results = []
    with ThreadPoolExecutor(args.jobs) as pool:
        for res in pool.map(lambda r: run_one(args.prepared, r, args.python), plain):
            results.append(res)
            report(res)
    with ThreadPoolExecutor(max(1, args.jobs // 2)) as pool:
        for res in pool.map(lambda r: run_one(args.prepared, r, args.python), slow):
            results.append(res)
            report(res)
    summary = {"jobs": args.jobs, "total_seconds": round(time.time() - t0, 1), "fingerprint_rc": fp_rc,
               "fingerprint_stderr": fp_err, "runs": results}
    with open(os.path.join(args.prepared, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    kept = ("run.json", "trace.json", "fingerprint.json", "stderr.txt")
    jsons = [os.path.join(r["dir"], n) for r in runs for n in kept]
    jsons += [os.path.join(r["dir"], "inputs", "config.json") for r in runs]
    pack(os.path.join(args.out, "runs-json.tar.gz"), args.prepared, jsons + ["manifest.json", "results.json"])
    for group in [g for g in args.tensors.split(",") if g]:
        variants = group.split("+")
        names = [os.path.join(r["dir"], "tensors.safetensors") for r in runs
                 if r["variant"] in variants and r["repeat"] == 1]
        pack(os.path.join(args.out, "tensors-%s.tar.gz" % "-".join(variants)), args.prepared, names)
    extra = [os.path.relpath(os.path.join(fp_dir, n), args.prepared) for n in ("fingerprint.json", "config.json")]
    pack(os.path.join(args.out, "extra.tar.gz"), args.prepared, extra + ["extra"])
    print("done in %.1f s" % (time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
