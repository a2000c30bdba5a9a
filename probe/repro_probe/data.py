"""Load data.safetensors: verify the whole-file sha256, let the workload validate its tensors and
metadata through the checks below, split rows in file order into train (first
floor(rows * (1 - val_fraction))) and validation. The file is untrusted: anything off is
ProbeError('invalid_data')."""

import hashlib
import json
import math
import os

from .errors import ProbeError
from .safetensors import SafetensorsError, decode_safetensors


def bad(msg):
    raise ProbeError("invalid_data", msg)


def load_data(config, config_dir):
    path = os.path.join(config_dir, config["data"]["file"])
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise ProbeError("invalid_data", "cannot read data file %s: %s" % (path, e))
    digest = hashlib.sha256(buf).hexdigest()
    expected = config["data"]["sha256"].lower()
    if digest != expected:
        raise ProbeError("data_hash_mismatch", "sha256 of %s is %s, config expects %s"
                         % (config["data"]["file"], digest, expected))
    try:
        tensors, meta = decode_safetensors(buf)
    except SafetensorsError as e:
        bad("data file is not valid safetensors: %s" % e)
    del buf
    return validate_data(config["workload"], tensors, meta, digest, config["train"]["val_fraction"])


def validate_data(workload, tensors, meta, digest, val_fraction):
    import torch
    from .workloads import WORKLOADS
    if meta.get("workload", workload) != workload:  # the host tags the data it generates for a workload
        bad("data was generated for workload %r, the config asks for %r" % (meta["workload"], workload))
    data = WORKLOADS[workload].validate_data(torch, tensors, meta)
    rows = same_rows(data["tensors"])
    train_rows = int(math.floor(rows * (1 - val_fraction)))
    if train_rows < 2:
        bad("only %d training rows" % train_rows)
    summary = {"sha256": digest, "rows": rows, "train_rows": train_rows, "val_rows": rows - train_rows}
    summary.update(data["info"])
    data.update(rows=rows, train_rows=train_rows, summary=summary)
    return data


# Checks for the workloads' validate_data.

def require(tensors, name, dtype, ndim):
    """The tensor `name` with exactly this torch dtype and number of dims."""
    t = tensors.get(name)
    if t is None or t.dtype != dtype or t.dim() != ndim:
        bad("tensor %r must exist with dtype %s and %d dims" % (name, dtype, ndim))
    return t


def same_rows(tensors):
    counts = dict((name, int(t.shape[0])) for name, t in tensors.items())
    if len(set(counts.values())) != 1:
        bad("row counts differ: %s" % ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    return next(iter(counts.values()))


def meta_json(meta, key):
    try:
        return json.loads(meta[key])
    except (KeyError, ValueError):
        bad("metadata %r missing or not JSON" % key)


def meta_int(meta, key, lo, hi):
    try:
        value = int(meta[key])
    except (KeyError, ValueError, TypeError):
        bad("metadata %r missing or not an integer" % key)
    if not lo <= value <= hi:
        bad("metadata %r must be in [%d, %d], got %d" % (key, lo, hi, value))
    return value


def dim_in(t, name, axis, lo, hi):
    size = int(t.shape[axis])
    if not lo <= size <= hi:
        bad("tensor %r dim %d must be in [%d, %d], got %d" % (name, axis, lo, hi, size))
    return size


def values_below(t, what, limit):
    """Integer values in [0, limit)."""
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= limit):
        bad("%s has values outside [0, %d)" % (what, limit))
