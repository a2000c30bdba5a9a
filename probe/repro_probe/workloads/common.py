"""What several workloads share: taking rows of every tensor, and the two kinds of outcome
(classification: cross-entropy and accuracy; regression: mean squared error and RMSE)."""

import math


def take_rows(tensors, names, rows):
    return tuple(tensors[n][rows] for n in names)


def classification_sums(torch, out, y):
    loss = float(torch.nn.functional.cross_entropy(out, y, reduction="sum"))
    return loss, int((out.argmax(dim=1) == y).sum())


def classification_outcome(loss_sum, correct, rows):
    return {"val_loss": loss_sum / rows, "val_accuracy": correct / rows, "val_rmse": None}


def regression_sums(torch, out, y):
    sse = float(torch.nn.functional.mse_loss(out, y.float(), reduction="sum"))
    return sse, sse


def regression_outcome(loss_sum, sse, rows):
    return {"val_loss": loss_sum / rows, "val_accuracy": None, "val_rmse": math.sqrt(sse / rows)}
