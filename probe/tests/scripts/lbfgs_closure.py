"""optim.LBFGS stepped with a closure (which LBFGS evaluates several times per step), float64 LSTMCell."""
import torch
from torch import nn, optim

torch.manual_seed(0)


class Sequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(1, 6)
        self.linear = nn.Linear(6, 1)

    def forward(self, x):
        h = torch.zeros(x.size(0), 6, dtype=torch.double)
        c = torch.zeros_like(h)
        outs = []
        for t in range(x.size(1)):
            h, c = self.cell(x[:, t:t + 1], (h, c))
            outs.append(self.linear(h))
        return torch.cat(outs, 1)


def main():
    data = torch.sin(torch.arange(0, 16, dtype=torch.double).view(1, -1).repeat(3, 1) / 3 + torch.arange(3).view(-1, 1))
    seq = Sequence().double()
    criterion = nn.MSELoss()
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
    for i in range(3):
        def closure():
            optimizer.zero_grad()
            loss = criterion(seq(data[:, :-1]), data[:, 1:])
            loss.backward()
            return loss
        optimizer.step(closure)
        with torch.no_grad():
            seq(data[:, :-1])


if __name__ == "__main__":
    main()
