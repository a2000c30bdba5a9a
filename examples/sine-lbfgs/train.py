"""Learn to continue sine waves: two stacked LSTM cells and a linear read-out, in float64,
trained with L-BFGS on 17 waves of traindata.csv and tested on the other 3.

    python3 train.py [--steps 3]
"""
import argparse
import csv
import os

import torch
import torch.nn as nn
import torch.optim as optim


class Sequence(nn.Module):
    def __init__(self, hidden=24):
        super(Sequence, self).__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, input, future=0):
        outputs = []
        n = input.size(0)
        h_t = torch.zeros(n, self.hidden, dtype=torch.double)
        c_t = torch.zeros(n, self.hidden, dtype=torch.double)
        h_t2 = torch.zeros(n, self.hidden, dtype=torch.double)
        c_t2 = torch.zeros(n, self.hidden, dtype=torch.double)

        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for i in range(future):  # predict the future from its own output
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        return torch.cat(outputs, dim=1)


def load(path):
    with open(path, newline="") as f:
        return torch.tensor([[float(v) for v in row] for row in csv.reader(f)], dtype=torch.double)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3, help="L-BFGS steps")
    parser.add_argument("--future", type=int, default=50, help="samples to predict past the input")
    opt = parser.parse_args()

    torch.manual_seed(0)
    data = load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "traindata.csv"))
    input = data[3:, :-1]
    target = data[3:, 1:]
    test_input = data[:3, :-1]
    test_target = data[:3, 1:]

    seq = Sequence()
    seq.double()
    criterion = nn.MSELoss()
    # L-BFGS needs the whole batch: it re-evaluates the loss several times per step
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8)

    for i in range(opt.steps):
        print("STEP: ", i)

        def closure():
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            print("loss:", loss.item())
            loss.backward()
            return loss

        optimizer.step(closure)

        with torch.no_grad():
            pred = seq(test_input, future=opt.future)
            loss = criterion(pred[:, :-opt.future], test_target)
            print("test loss:", loss.item())

    print("final test loss %.6f" % loss.item())
