"""torch.compile (backend eager: no C compiler needed), or Module.compile in place with --inplace:
the tracer must not force graph breaks. Reports dynamo's graph-break and graph counts as metrics.
The model's forward is defined here: Module.compile of a bare torch.nn.Sequential compiles nothing
(dynamo skips frames in torch.nn), while torch.compile wraps it either way."""

import sys

import torch
import torch.nn as nn

from repro_probe import report_metric


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x)


model = Net()
if "--inplace" in sys.argv:
    model.compile(backend="eager")
    compiled = model
else:
    compiled = torch.compile(model, backend="eager")
optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
x, y = torch.randn(16, 4), torch.randn(16, 1)
for step in range(3):
    optimizer.zero_grad()
    nn.functional.mse_loss(compiled(x), y).backward()
    optimizer.step()
from torch._dynamo.utils import counters  # noqa: E402
report_metric("graph_breaks", sum(counters["graph_break"].values()))
report_metric("unique_graphs", counters["stats"]["unique_graphs"])
