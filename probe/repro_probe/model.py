"""TabularMLP: one embedding per categorical column (`emb`), concatenated with the numeric
features, then `mlp` = [Linear, BatchNorm1d, ReLU, Dropout] per hidden width + Linear -> classes."""


def build_model(torch, n_numeric, cardinalities, classes, hidden, embedding_dim, dropout):
    nn = torch.nn

    class TabularMLP(nn.Module):
        def __init__(self):
            super(TabularMLP, self).__init__()
            self.emb = nn.ModuleList([nn.Embedding(c, embedding_dim) for c in cardinalities])
            width = n_numeric + embedding_dim * len(cardinalities)
            layers = []
            for h in hidden:
                layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)]
                width = h
            layers.append(nn.Linear(width, classes))
            self.mlp = nn.Sequential(*layers)

        def forward(self, numeric, categorical):
            parts = [e(categorical[:, j]) for j, e in enumerate(self.emb)]
            x = torch.cat(parts + [numeric], dim=1) if parts else numeric
            return self.mlp(x)

    return TabularMLP()


def leaf_modules(model):
    """(name, module) for every module without children, in registration order (an empty
    container such as `emb` with no categorical columns is not a module that runs)."""
    import torch
    containers = (torch.nn.ModuleList, torch.nn.ModuleDict, torch.nn.Sequential)
    return [(n, m) for n, m in model.named_modules()
            if n and not isinstance(m, containers) and not any(True for _ in m.children())]
