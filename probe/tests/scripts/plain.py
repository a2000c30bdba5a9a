"""A plain training loop with no seeding of its own: a one-layer transformer encoder and a head,
SGD on a regression target. The tracer seeds it; entries are named by these module paths."""

import argparse

import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, d=8):
        super(Net, self).__init__()
        layer = nn.TransformerEncoderLayer(d_model=d, nhead=2, dim_feedforward=16, dropout=0.1)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1)
        self.head = nn.Linear(d, 1)

    def forward(self, x):
        return self.head(self.encoder(x)).mean(dim=0)


parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=5)
args = parser.parse_args()

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
x = torch.randn(4, 16, 8)  # (sequence, batch, features)
y = x.sum(dim=(0, 2)).unsqueeze(1) / 8
for step in range(args.steps):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
print("plain: done after %d steps" % args.steps)
