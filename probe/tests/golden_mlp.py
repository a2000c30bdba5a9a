"""Golden mlp traces: the digests the mlp workload produced before the workloads refactor, per torch
version and CPU capability, so the refactor is proved bit-for-bit neutral where a golden exists.

Record (only when the mlp numerics are meant to change, and say so in the commit):
    cd probe && python3 tests/golden_mlp.py > tests/golden/mlp-<torch>-<cpu>.json
"""

import hashlib
import re
import json
import os
import shutil
import sys
import tempfile

import helpers

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")

# Small and fixed: threads pinned so the digests do not depend on the host's default.
CASES = {
    "adam": {"train": {"epochs": 2, "batch_size": 64}, "model": {"hidden": [16, 8]}, "knobs": {"threads": 1}},
    "sgd-bf16": {"train": {"epochs": 1, "batch_size": 50, "optimizer": "sgd"}, "model": {"hidden": [8]},
                 "knobs": {"threads": 1, "amp": "bf16"}},
}


def environment_key():
    import torch
    from repro_probe.torchconfig import parse_config_show
    cpu = parse_config_show(torch.__config__.show()).get("cpu_capability") or "unknown"
    return "%s-%s" % (str(torch.__version__).split("+")[0], cpu)


# Entries added to every trace after the goldens were recorded (the model's output and the
# optimizer's state, boundaries a compiled run keeps too): the golden proves the rest unchanged.
ADDED_SINCE = re.compile(r"^(out|opt/.*)$")


def summarize(trace, run):
    """Per step: entry names and one sha256 over every entry's name and digest, plus the outcome."""
    steps = []
    for s in trace["steps"]:
        h = hashlib.sha256()
        entries = [e for e in s["entries"] if not ADDED_SINCE.match(e["name"])]
        for e in entries:
            h.update(("%s %s\n" % (e["name"], e["sha256"])).encode("utf-8"))
        steps.append({"step": s["step"], "names": [e["name"] for e in entries], "digest": h.hexdigest()})
    return {"steps": steps, "final": run["final"]}


def run_case(directory, name, extra=None):
    """Train one case on helpers.make_data's default data set; returns (summary, stderr)."""
    d = os.path.join(directory, name)
    os.makedirs(d)
    sha = helpers.make_data(os.path.join(d, "data.safetensors"))
    sections = {k: dict(v) for k, v in CASES[name].items()}
    for k, v in (extra or {}).items():
        sections.setdefault(k, {}).update(v)
    cfg = helpers.write_config(d, sha, **sections)
    out = os.path.join(d, "out")
    r = helpers.run_probe("train", cfg, out)
    if r.returncode != 0:
        return None, r.stderr
    return summarize(helpers.load_json(os.path.join(out, "trace.json")),
                     helpers.load_json(os.path.join(out, "run.json"))), r.stderr


def golden_path():
    return os.path.join(GOLDEN_DIR, "mlp-%s.json" % environment_key())


def main():
    directory = tempfile.mkdtemp(prefix="repro-golden-")
    try:
        out = {"environment": environment_key(), "cases": {}}
        for name in sorted(CASES):
            summary, err = run_case(directory, name)
            if summary is None:
                sys.stderr.write(err)
                return 1
            out["cases"][name] = summary
        json.dump(out, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
