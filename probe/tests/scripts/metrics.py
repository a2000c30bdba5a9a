"""report_metric: the script's own outcome metrics land in run.json `final`."""

import torch
import torch.nn as nn

try:
    from repro_probe import report_metric
except ImportError:  # outside a repro run
    def report_metric(name, value):
        pass

model = nn.Linear(3, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
x = torch.randn(40, 3)
y = (x[:, 0] > 0).long()
for step in range(5):
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x[:30]), y[:30]).backward()
    optimizer.step()
with torch.no_grad():
    accuracy = (model(x[30:]).argmax(1) == y[30:]).float().mean()
report_metric("val_accuracy", accuracy)  # a 0-d tensor is accepted
report_metric("custom_score", 1.5)
report_metric("custom_score", 2.5)  # the last value wins
report_metric("bad name\n", 1.0)  # refused with a warning
