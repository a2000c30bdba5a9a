# Fit y = a + b x + c x^2 + d x^3 to a noisy sine on [-pi, pi] by gradient descent,
# with raw tensors as the parameters and the update written out by hand.
import math

import torch

dtype = torch.float
device = torch.device("cpu")

# the data: 2000 points of sin(x), plus a little noise
x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
y = torch.sin(x) + 0.05 * torch.randn(x.shape, device=device, dtype=dtype)

# the four coefficients, randomly initialised
a = torch.randn((), device=device, dtype=dtype, requires_grad=True)
b = torch.randn((), device=device, dtype=dtype, requires_grad=True)
c = torch.randn((), device=device, dtype=dtype, requires_grad=True)
d = torch.randn((), device=device, dtype=dtype, requires_grad=True)

learning_rate = 2.5e-6
for t in range(300):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3

    # sum of squared errors
    loss = (y_pred - y).pow(2).sum()
    if t % 50 == 49:
        print(t, loss.item())

    loss.backward()

    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad

        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None

print(f"final loss {loss.item():.4f}")
print(f"Result: y = {a.item()} + {b.item()} x + {c.item()} x^2 + {d.item()} x^3")
