"""Hand-written updates without torch.optim: raw tensors held by module-level variables, a module
updated through p.data, and a tensor only a function's local holds (named leafN)."""
import sys

import torch

torch.manual_seed(0)
x = torch.randn(16, 3)
y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1
W1 = torch.randn(3, 4, requires_grad=True)
b1 = torch.zeros(4, requires_grad=True)
head = torch.nn.Linear(4, 1)


def make_scale():
    return torch.ones(1, requires_grad=True)


scale = [make_scale()]  # held by a list only: no variable names it
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 4
for step in range(steps):
    h = torch.relu(x @ W1 + b1)
    loss = ((head(h) * scale[0] - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        for t in (W1, b1, scale[0]):
            t -= 0.05 * t.grad
            t.grad = None
    for p in head.parameters():
        p.data.add_(p.grad, alpha=-0.05)
        p.grad = None
print("loss %.6f" % loss.item())
