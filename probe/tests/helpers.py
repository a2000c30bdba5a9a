"""Test helpers: build small synthetic data.safetensors files (one maker per workload) with the
probe's own writer, write a config.json next to them, and run `python -m repro_probe` as a subprocess."""

import copy
import hashlib
import json
import os
import subprocess
import sys

PROBE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if PROBE_DIR not in sys.path:
    sys.path.insert(0, PROBE_DIR)

from repro_probe.config import DEFAULTS  # noqa: E402
from repro_probe.safetensors import write_safetensors  # noqa: E402


def real_cpu_flags():
    """The host CPU's flags as /proc/cpuinfo lists them (what torch's cpuinfo sees)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def emulated_cpu():
    """"avx2" when the suite acts as an AVX2 host (REPRO_TEST_CPU=avx2 in scripts/run-tests.mjs sets
    REPRO_EMULATE_CPU: every probe capped at AVX2), else None."""
    return os.environ.get("REPRO_EMULATE_CPU") or None


def docker_env_args():
    """`docker run` flags that pass the suite's CPU emulation into a container's probe."""
    return ["-e", "REPRO_EMULATE_CPU=" + emulated_cpu()] if emulated_cpu() else []


def host_cpu_kind():
    """What a numerics assertion depends on: "avx512" (AVX-512 F/BW/VL/DQ, and no AVX2 emulation),
    "avx2-emulated" (an AVX-512 CPU acting as an AVX2 host), or "avx2"."""
    has512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= real_cpu_flags()
    if has512:
        return "avx2-emulated" if emulated_cpu() else "avx512"
    return "avx2"


def make_data(path, rows=256, n_numeric=4, cards=(5, 3), classes=3, seed=0, poison=False):
    """Synthetic tabular data; returns the sha256 of the written file."""
    import torch
    g = torch.Generator().manual_seed(seed)
    numeric = torch.randn(rows, n_numeric, generator=g)
    categorical = torch.zeros(rows, 0, dtype=torch.int64)
    if cards:
        categorical = torch.stack([torch.randint(0, c, (rows,), generator=g) for c in cards], dim=1)
    w = torch.randn(n_numeric, classes, generator=g)
    label = (numeric @ w + 0.5 * torch.randn(rows, classes, generator=g)).argmax(dim=1)
    if poison:
        numeric[::7, 0] = float("inf")
    meta = {
        "numeric_columns": json.dumps(["x%d" % i for i in range(n_numeric)]),
        "categorical_columns": json.dumps([{"name": "c%d" % i, "cardinality": c} for i, c in enumerate(cards)]),
        "classes": str(classes), "label_column": "y", "source": "synthetic:%d" % seed, "generator": "probe-tests",
    }
    write_safetensors(path, {"numeric": numeric, "categorical": categorical, "label": label}, meta)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _write(path, tensors, meta):
    write_safetensors(path, tensors, meta)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_images(path, rows=160, classes=10, size=32, seed=0):
    """uint8 [rows, 3, size, size]: a class-dependent colour and stripe frequency plus noise."""
    import torch
    g = torch.Generator().manual_seed(seed)
    label = torch.arange(rows) % classes
    colour = torch.rand(classes, 3, 1, 1, generator=g)
    xs = torch.arange(size).float()
    stripes = torch.sin(xs.view(1, 1, 1, size) * (1 + label.view(rows, 1, 1, 1).float()) * 0.3)
    images = 0.5 * colour[label] + 0.25 * stripes + 0.15 * torch.randn(rows, 3, size, size, generator=g)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return _write(path, {"images": images, "label": label}, {"classes": str(classes), "source": "probe-tests"})


def make_series(path, rows=200, window=12, seed=0):
    """float32 windows [rows, window, 3] (value, sin and cos of the main period's phase, as the host's
    generator) of a noisy two-period seasonal series, and the next value."""
    import math
    import torch
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(rows + window).float()
    clock = 2 * math.pi * t / 12
    value = torch.sin(clock) + 0.5 * torch.sin(2 * math.pi * t / 40) + 0.1 * torch.randn(rows + window, generator=g)
    steps = torch.stack([value, torch.sin(clock), torch.cos(clock)], dim=1)
    windows = torch.stack([steps[i:i + window] for i in range(rows)])
    return _write(path, {"windows": windows.contiguous(), "target": value[window:window + rows].contiguous()},
                  {"window": str(window), "source": "probe-tests"})


def make_tokens(path, rows=200, seq_len=16, vocab=32, classes=4, seed=0):
    """int64 tokens [rows, seq_len]: filler tokens >= classes, and the class's marker token at 2 places."""
    import torch
    g = torch.Generator().manual_seed(seed)
    label = torch.arange(rows) % classes
    tokens = torch.randint(classes, vocab, (rows, seq_len), generator=g)
    for r in range(rows):
        tokens[r, torch.randperm(seq_len, generator=g)[:2]] = label[r]
    return _write(path, {"tokens": tokens, "label": label},
                  {"vocab": str(vocab), "classes": str(classes), "source": "probe-tests"})


MAKERS = {"mlp": make_data, "cnn": make_images, "lstm": make_series, "attention": make_tokens}


def write_config(directory, sha256, **sections):
    """config.json with the contract defaults, sections overridden shallowly (e.g. train={'seed': 1})."""
    cfg = copy.deepcopy(DEFAULTS)
    cfg["data"]["sha256"] = sha256
    for name, values in sections.items():
        if isinstance(cfg[name], dict):
            cfg[name].update(values)
        else:
            cfg[name] = values
    path = os.path.join(directory, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def run_probe(mode, config, out, extra_env=None, timeout=600):
    env = dict(os.environ)
    env["PYTHONPATH"] = PROBE_DIR
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "repro_probe", mode, "--config", config, "--out", out],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          universal_newlines=True)


def cnn_artifacts(test, envs, prefix):
    """trace.json and tensors.safetensors (bytes) of one small cnn training (module outputs of 128 KiB
    to 512 KiB, a stored step) per extra environment in envs: {name: [bytes per env]}."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix=prefix)
    try:
        sha256 = make_images(os.path.join(d, "data.safetensors"), rows=96)
        config = write_config(d, sha256, workload="cnn", train={"epochs": 2, "batch_size": 32},
                              trace={"enabled": True, "store_steps": [1]})
        got = {}
        for i, env in enumerate(envs):
            out = os.path.join(d, "out-%d" % i)
            r = run_probe("train", config, out, env)
            test.assertEqual(r.returncode, 0, r.stderr)
            for name in ("trace.json", "tensors.safetensors"):
                with open(os.path.join(out, name), "rb") as f:
                    got.setdefault(name, []).append(f.read())
        return got
    finally:
        shutil.rmtree(d)


def load_json(path):
    with open(path) as f:
        return json.load(f)
