"""lstm: a 2-layer LSTM forecaster on windows of a seasonal series. Exercises recurrent kernels
(cuDNN RNN on CUDA) and inter-layer dropout.

Fixed sizes: nn.LSTM(features, 24, num_layers=2, dropout=model.dropout, batch_first=True); the
last time step's output -> Linear(24, 1) = the next value. Loss: mean squared error; outcome:
validation RMSE (lower is better)."""

from .. import data as checks
from . import common

NAME = "lstm"
SUMMARY = "2-layer LSTM forecaster with dropout between layers, MSE loss"
OUTCOME_METRIC = "val_rmse"
EVAL_CHUNK = 4096
HIDDEN = 24
LAYERS = 2


def validate_data(torch, tensors, meta):
    windows = checks.require(tensors, "windows", torch.float32, 3)
    target = checks.require(tensors, "target", torch.float32, 1)
    per_row = {"windows": windows, "target": target}
    checks.same_rows(per_row)
    window = checks.dim_in(windows, "windows", 1, 2, 4096)
    features = checks.dim_in(windows, "windows", 2, 1, 64)
    if checks.meta_int(meta, "window", 2, 4096) != window:
        checks.bad("metadata 'window' does not match the windows tensor (%d steps)" % window)
    return {"tensors": per_row, "info": {"window": window, "features": features}}


def build_model(torch, data, model_cfg):
    nn = torch.nn
    features = int(data["tensors"]["windows"].shape[2])

    class Forecaster(nn.Module):
        def __init__(self):
            super(Forecaster, self).__init__()
            self.lstm = nn.LSTM(features, HIDDEN, num_layers=LAYERS, dropout=model_cfg["dropout"],
                                batch_first=True)
            self.head = nn.Linear(HIDDEN, 1)

        def forward(self, windows):
            out, _ = self.lstm(windows)
            return self.head(out[:, -1]).squeeze(1)

    return Forecaster()


def batch(tensors, rows):
    return (tensors["windows"][rows],), tensors["target"][rows]


def criterion(torch):
    return torch.nn.MSELoss()


val_sums = common.regression_sums
outcome = common.regression_outcome
