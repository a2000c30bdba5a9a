"""The two modes. fingerprint: apply knobs, write fingerprint.json. train: apply knobs, verify and
load data, train with the trace, then write fingerprint.json, run.json, trace.json, tensors.safetensors
(on failure: status "error" with {type, message}, traceback on stderr, exit code 3)."""

import os
import sys
import time
import traceback

from . import PROBE_VERSION
from .config import load_config
from .errors import ProbeError
from .jsonio import one_line, write_json

EXIT_OK, EXIT_USAGE, EXIT_ERROR = 0, 2, 3


def _warn_all(warnings):
    for w in warnings:
        sys.stderr.write("repro_probe: warning: %s\n" % w)


def _import_torch(timings, for_training=False):
    t0 = time.time()
    import torch
    if for_training:
        # torch >= 2.0 imports torch._dynamo (hundreds of modules, seconds) when the first optimizer
        # is built; imported here, that counts as import time rather than training time.
        try:
            import torch._dynamo  # noqa: F401
        except Exception:
            pass
    timings["import_seconds"] = time.time() - t0
    return torch


def run_fingerprint(config_path, out_dir):
    from .fingerprint import collect, warm_up
    from .knobs import apply_env, apply_knobs, resolve_device
    try:
        cfg, warnings, _ = load_config(config_path, "fingerprint")
    except ProbeError as e:
        sys.stderr.write("repro_probe: %s: %s\n" % (e.type, e.message))
        return EXIT_USAGE
    _warn_all(warnings)
    os.makedirs(out_dir, exist_ok=True)
    apply_env(cfg["knobs"]["env"])
    torch = _import_torch({})
    apply_knobs(torch, cfg["knobs"])
    device = None
    try:
        device = resolve_device(torch, cfg["knobs"]["device"])
    except ProbeError as e:  # a fingerprint is still useful without the device
        sys.stderr.write("repro_probe: warning: %s\n" % e.message)
    warm_up(torch, device)
    write_json(os.path.join(out_dir, "fingerprint.json"), collect(torch))
    return EXIT_OK


def _run_json(cfg, result, error, timings):
    # a built-in workload's run names it and its outcome metric; a user's script has neither
    workload = cfg.get("workload") if cfg is not None and "script" not in result else None
    outcome_metric = None
    if workload is not None:
        from .workloads import WORKLOADS
        outcome_metric = WORKLOADS[workload].OUTCOME_METRIC
    out = {
        "schema": "repro.run/1", "probe_version": PROBE_VERSION,
        "status": "error" if error else "ok", "error": error,
        "workload": workload, "outcome_metric": outcome_metric,
        "knobs_requested": cfg["knobs"] if cfg is not None else None,
        "knobs_effective": result["knobs_effective"],
        "data": result["data"], "model": result["model"], "steps": result["steps"],
        "epochs": result["epochs"], "final": result["final"], "nonfinite": result["nonfinite"],
        "nondeterministic_alerts": result.get("nondeterministic_alerts", []),
        "timings": timings,
    }
    # when there is one
    for key in ("final_params_sha256", "compiled", "knobs_overridden", "script", "capture", "distributed"):
        if key in result:
            out[key] = result[key]
    return out


def interpreter_seconds():
    """Seconds from this process's creation to now: the interpreter's start-up before the probe's
    first line (Linux: /proc/self/stat starttime against /proc/uptime, both on the boot clock and
    10 ms resolution, the same inside a container). None where /proc does not say."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        started = int(fields[19]) / float(os.sysconf("SC_CLK_TCK"))  # field 22 of stat(5)
        return round(max(0.0, uptime - started), 3)
    except (OSError, ValueError, IndexError):
        return None


def run_train(config_path, out_dir):
    from .safetensors import write_safetensors
    t_start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    timings = {"import_seconds": 0.0, "setup_seconds": 0.0, "train_seconds": 0.0}
    started = interpreter_seconds()
    if started is not None:
        timings["interpreter_seconds"] = started
    result = {"knobs_effective": {}, "data": None, "model": None, "steps": 0, "epochs": [],
              "final": {"val_accuracy": None, "val_loss": None, "val_rmse": None, "train_loss": None},
              "nonfinite": {"loss": 0, "entries": 0}, "nondeterministic_alerts": []}
    cfg = torch = device = recorder = error = None
    try:
        cfg, warnings, cfg_dir = load_config(config_path, "train")
        _warn_all(warnings)
        from .knobs import apply_env, apply_knobs, effective_knobs, resolve_device
        apply_env(cfg["knobs"]["env"])
        from .allocator import steady_malloc
        steady_malloc()  # fewer page faults for a training's activations (allocator.py)
        torch = _import_torch(timings, for_training=True)
        t0 = time.time()
        apply_knobs(torch, cfg["knobs"])
        result["knobs_effective"] = effective_knobs(torch, cfg["knobs"])
        device = resolve_device(torch, cfg["knobs"]["device"])
        result["knobs_effective"] = effective_knobs(torch, cfg["knobs"], device)
        from .fingerprint import warm_up
        warm_up(torch, device)
        from .data import load_data
        data = load_data(cfg, cfg_dir)
        result["data"] = data["summary"]
        from .trace import TraceRecorder
        store = cfg["trace"]["store_steps"]
        recorder = TraceRecorder(torch, cfg["trace"]["enabled"], None if store is None else set(store))
        timings["setup_seconds"] = time.time() - t0
        t0 = time.time()
        from .alerts import AlertCollector
        from .train import run_training
        alerts = AlertCollector()
        try:
            if cfg["knobs"]["world_size"] > 1:  # data-parallel: rank processes (ddp.py)
                from .ddp import run_distributed
                run_distributed(torch, cfg, config_path, device, recorder, result, out_dir)
            else:
                with alerts:
                    run_training(torch, cfg, data, device, recorder, result)
        finally:
            timings["train_seconds"] = time.time() - t0
            timings["trace_seconds"] = recorder.seconds
            result["nondeterministic_alerts"] = result.get("nondeterministic_alerts") or alerts.alerts()
        result["knobs_effective"] = effective_knobs(torch, cfg["knobs"], device)
    except ProbeError as e:
        error = {"type": e.type, "message": one_line(e.message)}
        sys.stderr.write("repro_probe: %s: %s\n" % (e.type, e.message))
    except Exception as e:
        traceback.print_exc()
        error = {"type": "exception", "message": one_line("%s: %s" % (type(e).__name__, e))}
    if recorder is not None:
        recorder.active = False
        result["nonfinite"]["entries"] = recorder.nonfinite_entries
    return _write_train_outputs(out_dir, cfg, torch, recorder, result, error, timings, t_start,
                                write_safetensors)


def _write_train_outputs(out_dir, cfg, torch, recorder, result, error, timings, t_start, write_safetensors):
    """Write everything that can be written; a failure here is itself an error."""
    from .fingerprint import collect
    try:
        fingerprint = collect(torch)
        if cfg is not None:  # the knobs the environment does not show by itself (amp, compile, device)
            shown = ("amp", "compile", "device", "world_size", "ddp_backend", "bucket_cap_mb", "sync_batchnorm")
            fingerprint["knobs"] = dict((k, cfg["knobs"][k]) for k in shown)
        write_json(os.path.join(out_dir, "fingerprint.json"), fingerprint)
    except Exception as e:
        traceback.print_exc()
        error = error or {"type": "exception", "message": one_line("fingerprint: %s: %s" % (type(e).__name__, e))}
    if recorder is not None:
        try:
            write_json(os.path.join(out_dir, "trace.json"), recorder.trace_json(), compact=True)
            write_safetensors(os.path.join(out_dir, "tensors.safetensors"), recorder.stored)
        except Exception as e:
            traceback.print_exc()
            error = error or {"type": "exception", "message": one_line("trace: %s: %s" % (type(e).__name__, e))}
    timings["total_seconds"] = time.time() - t_start
    write_json(os.path.join(out_dir, "run.json"), _run_json(cfg, result, error, timings))
    return EXIT_ERROR if error else EXIT_OK
