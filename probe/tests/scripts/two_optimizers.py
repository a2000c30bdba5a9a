"""Two optimizers on one loss (SGD for the body, Adam for the head): both step in every iteration,
so each trace step has the body's gradients and parameters, then the head's."""

import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))
body = torch.optim.SGD(model[0].parameters(), lr=0.1, momentum=0.9)
head = torch.optim.Adam(model[2].parameters(), lr=0.01)
x, y = torch.randn(32, 6), torch.randint(0, 2, (32,))
for step in range(4):
    body.zero_grad()
    head.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    body.step()
    head.step()
