"""Test helpers: build a small synthetic data.safetensors with the probe's own writer, write a
config.json next to it, and run `python -m repro_probe` as a subprocess."""

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


def write_config(directory, sha256, **sections):
    """config.json with the contract defaults, sections overridden shallowly (e.g. train={'seed': 1})."""
    cfg = copy.deepcopy(DEFAULTS)
    cfg["data"]["sha256"] = sha256
    for name, values in sections.items():
        cfg[name].update(values)
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


def load_json(path):
    with open(path) as f:
        return json.load(f)
