"""An evaluation between training steps: under torch.no_grad() with model.eval(), and once more in
eval mode with gradients enabled. Neither may be mixed into a training step."""

import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
x, y = torch.randn(32, 4), torch.randn(32, 1)
val = torch.randn(8, 4)
for step in range(3):
    model.train()
    optimizer.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        model(val)
        model(val)
    model(val).sum()  # eval mode, gradients enabled
