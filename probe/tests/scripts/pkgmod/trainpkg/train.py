"""Run as `python -m trainpkg.train` from pkgmod/: a relative import, sys.argv[0] the module's file."""
import sys

import torch

from .net import make

torch.manual_seed(0)
model = make()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(3):
    loss = model(torch.ones(2, 3)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
print("argv0", sys.argv[0], "args", sys.argv[1:])
