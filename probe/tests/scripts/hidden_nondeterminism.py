"""Nondeterminism the tracer cannot reach: input noise from a generator seeded by the OS
(numpy.random.default_rng() without a seed, or os.urandom without numpy). Two runs differ."""

import os

import torch
import torch.nn as nn

try:
    import numpy
    noise = torch.from_numpy(numpy.random.default_rng().standard_normal((8, 3)).astype("float32"))
except ImportError:
    g = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)
    noise = torch.randn(8, 3, generator=g)

model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.ones(8, 3)
for step in range(2):
    optimizer.zero_grad()
    model(x + noise).pow(2).mean().backward()
    optimizer.step()
