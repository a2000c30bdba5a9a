"""repro probe: runs inside a target environment and writes the artifacts of docs/artifacts.md.

Only the stdlib is imported at package import time; torch is imported lazily after knobs.env is applied.
"""

PROBE_VERSION = "0.1.0"

_metric_sink = None  # set by scriptrun while the user's script runs under `repro_probe script`


def report_metric(name, value):
    """Store one of the script's own outcome metrics (a number) in run.json `final` under `name`;
    the last value reported wins. A no-op outside a `repro_probe script` run.

        from repro_probe import report_metric
        report_metric("val_accuracy", 0.93)
    """
    if _metric_sink is not None:
        _metric_sink(name, value)
