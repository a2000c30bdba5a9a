"""Load data.safetensors: verify the whole-file sha256, validate tensors and metadata, split rows
in file order into train (first floor(rows * (1 - val_fraction))) and validation."""

import hashlib
import json
import math
import os

from .errors import ProbeError
from .safetensors import SafetensorsError, decode_safetensors


def _bad(msg):
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
        _bad("data file is not valid safetensors: %s" % e)
    del buf
    return validate_data(tensors, meta, digest, config["train"]["val_fraction"])


def _meta_json(meta, key):
    try:
        return json.loads(meta[key])
    except (KeyError, ValueError):
        _bad("metadata %r missing or not JSON" % key)


def validate_data(tensors, meta, digest, val_fraction):
    import torch
    for name, dtype, ndim in (("numeric", torch.float32, 2), ("categorical", torch.int64, 2),
                              ("label", torch.int64, 1)):
        t = tensors.get(name)
        if t is None or t.dtype != dtype or t.dim() != ndim:
            _bad("tensor %r must exist with dtype %s and %d dims" % (name, dtype, ndim))
    num, cat, label = tensors["numeric"], tensors["categorical"], tensors["label"]
    rows = label.shape[0]
    if num.shape[0] != rows or cat.shape[0] != rows:
        _bad("numeric/categorical/label row counts differ")
    numeric_columns = _meta_json(meta, "numeric_columns")
    cat_columns = _meta_json(meta, "categorical_columns")
    try:
        classes = int(meta["classes"])
        cards = [int(c["cardinality"]) for c in cat_columns]
    except (KeyError, ValueError, TypeError):
        _bad("metadata 'classes' / 'categorical_columns' malformed")
    if not isinstance(numeric_columns, list) or len(numeric_columns) != num.shape[1]:
        _bad("numeric_columns does not match numeric tensor width %d" % num.shape[1])
    if len(cards) != cat.shape[1] or any(c < 1 for c in cards):
        _bad("categorical_columns does not match categorical tensor width %d" % cat.shape[1])
    if classes < 2:
        _bad("classes must be >= 2")
    if rows and (int(label.min()) < 0 or int(label.max()) >= classes):
        _bad("label values outside [0, %d)" % classes)
    for j, card in enumerate(cards):
        col = cat[:, j]
        if rows and (int(col.min()) < 0 or int(col.max()) >= card):
            _bad("categorical column %d has values outside [0, %d)" % (j, card))
    train_rows = int(math.floor(rows * (1 - val_fraction)))
    if train_rows < 2:
        _bad("only %d training rows" % train_rows)
    return {
        "numeric": num, "categorical": cat, "label": label, "cardinalities": cards,
        "classes": classes, "train_rows": train_rows,
        "summary": {"sha256": digest, "rows": rows, "train_rows": train_rows,
                    "val_rows": rows - train_rows, "numeric": int(num.shape[1]),
                    "categorical": int(cat.shape[1]), "classes": classes},
    }
