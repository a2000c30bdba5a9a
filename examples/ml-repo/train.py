"""Train FraudNet on data/transactions.csv: the repo's training entry point, as CI and people run
it (`python3 train.py --epochs 5`). Nothing in here knows about repro, except the optional
two lines that report the validation accuracy when the script runs under it."""

import argparse
import os

import torch
from torch.utils.data import DataLoader, TensorDataset, random_split

from fraudnet.data import FEATURES, load
from fraudnet.model import FraudNet

try:  # optional: report the outcome to repro when it traces this script
    from repro_probe import report_metric
except ImportError:
    def report_metric(name, value):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(7)
    x, y = load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "transactions.csv"))
    data = TensorDataset(x, y)
    train, val = random_split(data, [len(data) - 180, 180], generator=torch.Generator().manual_seed(7))
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, num_workers=args.workers)
    model = FraudNet(len(FEATURES))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            xv, yv = val[:]
            acc = (model(xv).argmax(1) == yv).float().mean().item()
        print("epoch %d: loss %.4f, validation accuracy %.3f" % (epoch, loss.item(), acc))
    report_metric("val_accuracy", acc)


if __name__ == "__main__":
    main()
