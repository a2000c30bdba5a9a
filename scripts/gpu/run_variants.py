"""Runs the knob variants `repro prepare --variants` staged (repro.prepared/2: manifest.json, one
folder per run with spec.json) on a machine with python and torch only — the GPU box — several at
a time, then packs what comes back into a few tar.gz files.

    python3 scripts/gpu/run_variants.py PREPARED_DIR OUT_DIR [--jobs N] [--tensors VARIANT,...]

Every run is a fresh `python3 -S probe/node_runner.py RUN/spec.json` (the prepared folder's own
runner, as its run.sh starts it; repeats never share a process): the runner starts the probe with
the spec's interpreter (a bare name such as python3 is first resolved on this script's PATH, into
RUN/spec-local.json, so the probe runs with the python this shell finds), leaves RUN/status.json
and the artifacts in RUN/out/. RUN/stderr.txt keeps the runner's stderr; results.json records
each run's variant, the probe's exit code, wall seconds and the stderr tail. The packs:
runs-json.tar.gz (every run's out/run.json, out/trace.json, out/fingerprint.json, stderr.txt,
status.json, spec.json and inputs/config.json, with manifest.json and results.json: unpacked, a
prepared folder `repro compare` and table.mjs read), one tensors-<group>.tar.gz per group of
variants in --tensors ("a+b,c+d": two files; repeat 1 only; RUN/out/tensors.safetensors), and
extra.tar.gz (the CUDA fingerprint and anything under PREPARED_DIR/extra). Stdlib only, Python
3.9+. A repro.prepared/1 folder (an older repro) is refused in one line."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = "repro.prepared/2"
OLD_SCHEMA = "repro.prepared/1"


START = time.time()
DEADLINE = [0.0]


def entry(run):
    return {"dir": run["dir"], "variant": run["variant"], "workload": run["workload"], "repeat": run["repeat"],
            "seed": run["seed"]}


def local_spec(prepared, run):
    """The spec the runner gets: spec.json, or spec-local.json with a bare interpreter name resolved here."""
    folder = os.path.join(prepared, run["dir"])
    path = os.path.join(folder, "spec.json")
    with open(path) as f:
        spec = json.load(f)
    python = spec.get("python")
    if not python or "/" in python:
        return path, python
    found = shutil.which(python)
    if not found:
        return path, python
    spec["python"] = found
    local = os.path.join(folder, "spec-local.json")
    with open(local, "w") as f:
        json.dump(spec, f, indent=2)
    return local, found


def read_status(prepared, run):
    try:
        with open(os.path.join(prepared, run["dir"], "status.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run_one(prepared, run, runner_python):
    res = entry(run)
    if DEADLINE[0] and time.time() - START > DEADLINE[0]:
        res.update(rc=None, wall_seconds=0, stderr_tail="skipped: past --deadline")
        return res
    folder = os.path.join(prepared, run["dir"])
    # a run staged again starts clean: no status or artifacts of an earlier try
    for stale in ("status.json", "out", "out.tar"):
        p = os.path.join(folder, stale)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    spec, python = local_spec(prepared, run)
    cmd = [runner_python, "-S", os.path.join(prepared, "probe", "node_runner.py"), spec]
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    with open(os.path.join(folder, "stderr.txt"), "w") as f:
        f.write(p.stderr[-65536:])
    status = read_status(prepared, run)
    # the probe's own exit code, as the runner saw it (None: killed or timed out); no status: the runner's
    rc = status.get("exit") if status is not None else p.returncode
    res.update(rc=rc, wall_seconds=round(time.time() - t0, 3), stderr_tail=p.stderr[-2000:], python=python)
    if status is not None and status.get("timed_out"):
        res["timed_out"] = True
    return res


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
    ap.add_argument("--python", default=sys.executable,
                    help="starts the runner and the fingerprint (the probe: the spec's)")
    ap.add_argument("--tensors", default="default")
    ap.add_argument("--fingerprint-device", default="cuda")
    ap.add_argument("--deadline", type=float, default=0, help="seconds after which runs not started are skipped")
    args = ap.parse_args()
    DEADLINE[0] = args.deadline
    with open(os.path.join(args.prepared, "manifest.json")) as f:
        manifest = json.load(f)
    schema = manifest.get("schema")
    if schema == OLD_SCHEMA:
        sys.exit("%s: %s is an older repro prepare's folder, which this script no longer runs; prepare it again: "
                 "repro prepare --variants scripts/gpu/variants.json … (repro.prepared/2)" % (args.prepared, schema))
    runs = manifest.get("runs") if schema == SCHEMA else None
    if not runs or any("variant" not in r for r in runs):
        sys.exit("%s: not a folder `repro prepare --variants` wrote (%s, runs without variant names); "
                 "a folder of --python/--image targets runs with its own run.sh, then `repro compare` it"
                 % (args.prepared, schema))
    knobs = {t["index"]: t.get("knobs", {}) for t in manifest.get("targets", [])}
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    fp_dir, fp_rc, fp_err = fingerprint(args.prepared, args.python, args.fingerprint_device)
    print("fingerprint rc=%d in %.1f s" % (fp_rc, time.time() - t0), flush=True)
    # compiled runs last and apart: they are the slow ones, and they use every core compiling
    plain = [r for r in runs if not knobs.get(r["target"], {}).get("compile")]
    slow = [r for r in runs if knobs.get(r["target"], {}).get("compile")]
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
    kept = ("out/run.json", "out/trace.json", "out/fingerprint.json", "stderr.txt", "status.json", "spec.json",
            "inputs/config.json")
    jsons = [os.path.join(r["dir"], n) for r in runs for n in kept]
    pack(os.path.join(args.out, "runs-json.tar.gz"), args.prepared, jsons + ["manifest.json", "results.json"])
    for group in [g for g in args.tensors.split(",") if g]:
        variants = group.split("+")
        names = [os.path.join(r["dir"], "out", "tensors.safetensors") for r in runs
                 if r["variant"] in variants and r["repeat"] == 1]
        pack(os.path.join(args.out, "tensors-%s.tar.gz" % "-".join(variants)), args.prepared, names)
    extra = [os.path.relpath(os.path.join(fp_dir, n), args.prepared) for n in ("fingerprint.json", "config.json")]
    pack(os.path.join(args.out, "extra.tar.gz"), args.prepared, extra + ["extra"])
    print("done in %.1f s" % (time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
