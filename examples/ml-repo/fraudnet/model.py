"""FraudNet: a small tabular classifier (Linear, LayerNorm, GELU, Dropout)."""

import torch.nn as nn


class FraudNet(nn.Module):
    def __init__(self, features, classes=3, width=32, dropout=0.1):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(features, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout),
                                     nn.Linear(width, width), nn.LayerNorm(width), nn.GELU())
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.encoder(x))
