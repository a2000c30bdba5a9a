"""The canary suite: one module per workload. The seeded loop, trace, stored steps and knobs are
shared (train.py); a workload brings only what differs. Each module defines:

  NAME, SUMMARY        its config name and one line on what it exercises
  OUTCOME_METRIC       "val_accuracy" (higher is better) or "val_rmse" (lower is better)
  EVAL_CHUNK           rows per validation forward
  validate_data(torch, tensors, meta) -> {"tensors": {name: tensor}, "info": {...}, ...}
      checks the (untrusted) data file's tensors through data.py's checks; "tensors" holds every
      per-row tensor (the same row count), "info" joins run.json `data`, other keys feed the model
  build_model(torch, data, model_cfg) -> torch.nn.Module
  batch(tensors, rows) -> (inputs tuple, target): rows is an index tensor or a slice
  criterion(torch) -> the training loss (mean over the batch)
  val_sums(torch, out, target) -> (loss sum, metric sum) over one validation chunk
  outcome(loss_sum, metric_sum, rows) -> {"val_loss", "val_accuracy", "val_rmse"}

Modules take `torch` as an argument and never import it, so config validation stays torch-free."""

from . import attention, cnn, lstm, mlp

WORKLOADS = dict((m.NAME, m) for m in (mlp, cnn, lstm, attention))
WORKLOAD_NAMES = tuple(WORKLOADS)
