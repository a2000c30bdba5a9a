"""A DataLoader with shuffle=True and two worker processes whose dataset draws random augmentation
from torch, python random and numpy's global generator (when numpy is there). The script seeds
nothing: the tracer's seeds (a loader generator, worker_init_fn) make two runs bitwise equal.
--spawn starts the workers with multiprocessing's spawn (fresh interpreters) instead of fork."""

import random
import sys

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

try:
    import numpy
except ImportError:
    numpy = None


class Noisy(Dataset):
    def __init__(self):
        self.x = torch.linspace(-1, 1, 48).reshape(24, 2)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        noise = torch.rand(2) * 0.1 + random.random() * 0.01
        if numpy is not None:
            noise = noise + float(numpy.random.rand()) * 0.01
        return self.x[i] + noise, self.x[i].sum(0, keepdim=True)


if __name__ == "__main__":
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    context = "spawn" if "--spawn" in sys.argv else None
    loader = DataLoader(Noisy(), batch_size=6, shuffle=True, num_workers=2, multiprocessing_context=context)
    for epoch in range(2):
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.mse_loss(model(xb), yb).backward()
            optimizer.step()
