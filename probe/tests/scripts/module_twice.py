"""A module called twice in one forward (a shared projection), a model called twice per step
(two views of a batch), and a loss module (a second, parameterless root)."""

import torch
import torch.nn as nn


class Siamese(nn.Module):
    def __init__(self):
        super(Siamese, self).__init__()
        self.shared = nn.Linear(5, 5)
        self.out = nn.Linear(5, 1)

    def forward(self, x):
        return self.out(torch.relu(self.shared(torch.relu(self.shared(x)))))


model = Siamese()
criterion = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
a, b = torch.randn(16, 5), torch.randn(16, 5)
for step in range(3):
    optimizer.zero_grad()
    loss = criterion(model(a), model(b))
    loss.backward()
    optimizer.step()
