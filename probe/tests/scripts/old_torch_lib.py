"""A script for torch 2 only: under torch 1.x it imports a backport module no image has (the
audit names the module in one line; the other target still reports)."""

import torch
import torch.nn as nn

if torch.__version__.startswith("1."):
    import repro_torch1_backport  # noqa: F401

model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(3):
    optimizer.zero_grad()
    model(torch.ones(8, 3) * step).pow(2).mean().backward()
    optimizer.step()
