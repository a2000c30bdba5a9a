"""mlp (tabular): one embedding per categorical column (`emb`), concatenated with the numeric
features, then `mlp` = [Linear, BatchNorm1d, ReLU, Dropout] per width of model.hidden + Linear ->
classes. Exercises matmul, BatchNorm1d, embedding backward, Adam. Sizes come from the config
(model.hidden, model.embedding_dim, model.dropout)."""

from .. import data as checks
from . import common

NAME = "mlp"
SUMMARY = "tabular MLP: embeddings, Linear, BatchNorm1d, ReLU, Dropout"
OUTCOME_METRIC = "val_accuracy"
EVAL_CHUNK = 8192
INPUTS = ("numeric", "categorical")


def validate_data(torch, tensors, meta):
    num = checks.require(tensors, "numeric", torch.float32, 2)
    cat = checks.require(tensors, "categorical", torch.int64, 2)
    label = checks.require(tensors, "label", torch.int64, 1)
    per_row = {"numeric": num, "categorical": cat, "label": label}
    checks.same_rows(per_row)
    numeric_columns = checks.meta_json(meta, "numeric_columns")
    cat_columns = checks.meta_json(meta, "categorical_columns")
    try:
        classes = int(meta["classes"])
        cards = [int(c["cardinality"]) for c in cat_columns]
    except (KeyError, ValueError, TypeError):
        checks.bad("metadata 'classes' / 'categorical_columns' malformed")
    if not isinstance(numeric_columns, list) or len(numeric_columns) != num.shape[1]:
        checks.bad("numeric_columns does not match numeric tensor width %d" % num.shape[1])
    if len(cards) != cat.shape[1] or any(c < 1 for c in cards):
        checks.bad("categorical_columns does not match categorical tensor width %d" % cat.shape[1])
    if classes < 2:
        checks.bad("classes must be >= 2")
    checks.values_below(label, "label", classes)
    for j, card in enumerate(cards):
        checks.values_below(cat[:, j], "categorical column %d" % j, card)
    return {"tensors": per_row, "cardinalities": cards, "classes": classes,
            "info": {"numeric": int(num.shape[1]), "categorical": int(cat.shape[1]), "classes": classes}}


def build_model(torch, data, model_cfg):
    nn = torch.nn
    n_numeric = data["tensors"]["numeric"].shape[1]
    cardinalities, embedding_dim = data["cardinalities"], model_cfg["embedding_dim"]

    class TabularMLP(nn.Module):
        def __init__(self):
            super(TabularMLP, self).__init__()
            self.emb = nn.ModuleList([nn.Embedding(c, embedding_dim) for c in cardinalities])
            width = n_numeric + embedding_dim * len(cardinalities)
            layers = []
            for h in model_cfg["hidden"]:
                layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(model_cfg["dropout"])]
                width = h
            layers.append(nn.Linear(width, data["classes"]))
            self.mlp = nn.Sequential(*layers)

        def forward(self, numeric, categorical):
            parts = [e(categorical[:, j]) for j, e in enumerate(self.emb)]
            x = torch.cat(parts + [numeric], dim=1) if parts else numeric
            return self.mlp(x)

    return TabularMLP()


def batch(tensors, rows):
    return common.take_rows(tensors, INPUTS, rows), tensors["label"][rows]


def criterion(torch):
    return torch.nn.CrossEntropyLoss()


val_sums = common.classification_sums
outcome = common.classification_outcome
