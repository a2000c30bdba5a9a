"""Reads data/transactions.csv (the repo's own data set) into tensors: standardized numeric
features, an integer label. Standard library csv only."""

import csv
import math

import torch

FEATURES = ("amount", "hour", "distance_km", "account_age_days", "attempts", "foreign")


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    x = [[float(r[c]) for c in FEATURES] for r in rows]
    x[:] = [[math.log1p(v[0])] + v[1:] for v in x]  # amounts are log-normal
    cols = list(zip(*x))
    mean = [sum(c) / len(c) for c in cols]
    std = [math.sqrt(sum((v - m) ** 2 for v in c) / len(c)) or 1.0 for c, m in zip(cols, mean)]
    features = torch.tensor([[(v - m) / s for v, m, s in zip(row, mean, std)] for row in x], dtype=torch.float32)
    labels = torch.tensor([int(r["label"]) for r in rows], dtype=torch.int64)
    return features, labels
