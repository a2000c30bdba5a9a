"""Golden mlp traces: the digests the mlp workload produced before the workloads refactor, per torch
version and CPU capability, so the refactor is proved bit-for-bit neutral where a golden exists.

A bf16 case depends on one more thing: whether oneDNN takes bf16 matmuls on this CPU
(`torch.ops.mkldnn._is_mkldnn_bf16_supported()`: AVX-512 BW/VL/DQ). Where it does not (an AVX2-only
CPU), torch 1.13 multiplies bf16 in ATen's own gemm (no oneDNN primitive runs, ONEDNN_VERBOSE shows
none) and the bits differ, while ATen's cpu_capability reads AVX2 on both kinds. Such cases are kept
per that answer, under "cases_bf16" ("onednn-bf16" / "no-onednn-bf16").

Record (only when the mlp numerics are meant to change, and say so in the commit):
    cd probe && python3 tests/golden_mlp.py > tests/golden/mlp-<torch>-<cpu>.json
(a bf16 case recorded on the other kind of CPU is merged into "cases_bf16" by hand)
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


def is_bf16_case(name):
    return CASES[name]["knobs"].get("amp") == "bf16"


def bf16_key():
    """Who runs this CPU's bf16 matmuls in torch 1.13: "onednn-bf16" where torch hands them to oneDNN
    (its check: AVX-512 BW/VL/DQ in the CPU's flags), "no-onednn-bf16" where ATen's gemm does, and
    "onednn-bf16-capped" where oneDNN gets them but is capped at AVX2 (REPRO_EMULATE_CPU=avx2 on an
    AVX-512 CPU: no golden recorded, the case is checked run to run instead)."""
    kind = helpers.host_cpu_kind()
    return {"avx512": "onednn-bf16", "avx2-emulated": "onednn-bf16-capped"}.get(kind, "no-onednn-bf16")


def expected(golden, name):
    """The golden summary of case `name` for this CPU, or None when none was recorded for it."""
    if is_bf16_case(name) and "cases_bf16" in golden:
        return golden["cases_bf16"].get(bf16_key(), {}).get(name)
    return golden["cases"].get(name)


def environment_key():
    import torch
    from repro_probe.torchconfig import parse_config_show
    cpu = parse_config_show(torch.__config__.show()).get("cpu_capability") or "unknown"
    if helpers.emulated_cpu() and cpu == "AVX512":
        cpu = "AVX2"  # the probes run with ATEN_CPU_CAPABILITY=avx2 (REPRO_EMULATE_CPU)
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


def run_case(directory, name, extra=None, suffix=""):
    """Train one case on helpers.make_data's default data set; returns (summary, stderr)."""
    d = os.path.join(directory, name + suffix)
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
        out = {"environment": environment_key(), "cases": {}, "cases_bf16": {bf16_key(): {}}}
        for name in sorted(CASES):
            summary, err = run_case(directory, name)
            if summary is None:
                sys.stderr.write(err)
                return 1
            if is_bf16_case(name):
                out["cases_bf16"][bf16_key()][name] = summary
            else:
                out["cases"][name] = summary
        json.dump(out, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
