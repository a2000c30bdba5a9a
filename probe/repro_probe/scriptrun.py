"""Script mode, the process that runs the user's script (started by scriptmode.py):
`python -m repro_probe.scriptrun traced|untraced --config CONFIG.json --out DIR [--params FILE]`.
Applies the knobs, seeds, installs the tracer (untraced: only the step counter), runs the script
as __main__ with its argv, sys.path and cwd, classifies how it ended and writes the artifacts.
Under torchrun (script.nproc > 1, `--ranks DIR`) rank 0 runs as asked and every other rank untraced
into DIR/rank<r>, writing its parameter digests to DIR/rank<r>.json (scriptmode's replica check)."""

import argparse
import ctypes
import errno
import gc
import json
import os
import runpy
import signal
import socket
import sys
import time
import traceback

import repro_probe

from .config import load_config
from .errors import ProbeError
from .jsonio import one_line, write_json
from .scriptmode import EXIT_ERROR, empty_result, recorded_env, resolve_script
from .seeding import ROLE_ENV, TRACER_ENV, patch_dataloader, seed_all
from .torchrun import AGENT_PID_ENV, stores_without_libuv
from .tracer import MAX_ENTRIES_PER_STEP, MAX_ENTRIES_TOTAL, STORE_BUDGET, StepLimitReached, Tracer

NETWORK_ERRNOS = frozenset((errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.ENETDOWN,
                            errno.EHOSTDOWN, errno.EADDRNOTAVAIL))
CHILDREN = ("python processes the script starts get the bootstrap sitecustomize: python random seeded at "
            "start, numpy and torch seeded (and the torch knobs applied) when imported; they are not traced")


def last_line(e):
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def network_cause(exc):
    """The socket-level error (name resolution, unreachable network, refused connection) in the
    exception, its causes/contexts or a `reason` (urllib, urllib3), else None."""
    todo, seen = [exc], set()
    while todo and len(seen) < 32:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (socket.gaierror, socket.herror)):
            return e
        if isinstance(e, OSError) and e.errno in NETWORK_ERRNOS:
            return e
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None)]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return None


def project_path(filename, spec):
    """A path the script could not open, relative to the project copy's root when it lies inside it
    (as the host knows it), else absolute inside the target."""
    path = os.path.normpath(os.path.join(os.getcwd(), filename))
    root = spec.get("root") if spec else None
    if root and (path == root or path.startswith(root.rstrip(os.sep) + os.sep)):
        return os.path.relpath(path, root)
    return path


def classify(e, tracer, spec=None):
    """ProbeError for an exception raised out of the script."""
    if isinstance(e, ModuleNotFoundError):
        err = ProbeError("missing_module", "the script imports module %r, which this target lacks (%s: %s)"
                         % (e.name, type(e).__name__, last_line(e)))
        err.extra = {"module": str(e.name)[:256]} if e.name else {}
        return err
    if isinstance(e, FileNotFoundError) and isinstance(getattr(e, "filename", None), (str, bytes)):
        filename = e.filename.decode("utf-8", "replace") if isinstance(e.filename, bytes) else e.filename
        where = project_path(filename, spec)
        err = ProbeError("missing_file", "the script could not open %s (%s: %s)"
                         % (where, type(e).__name__, last_line(e)))
        err.extra = {"path": where[:4096]}
        return err
    cause = network_cause(e)
    if cause is not None:
        host = " (host %s)" % tracer.last_host if tracer is not None and tracer.last_host else ""
        return ProbeError("network_blocked", "the script tried to reach the network%s, which the target does not "
                          "offer: %s: %s" % (host, type(cause).__name__, last_line(cause)))
    return ProbeError("script_error", "%s: %s" % (type(e).__name__, last_line(e)))


def _own_frame(filename, spec):
    """A frame of the user's code: the script, a notebook cell, or (modules) a file in the project."""
    if spec["kind"] == "notebook":
        return filename.startswith("<cell ")
    if spec["kind"] == "module":
        base = spec["root"] or spec["cwd"]
        return filename.startswith(base.rstrip(os.sep) + os.sep)
    return filename == spec["path"]


def _print_traceback(e, spec):
    """The script's traceback on stderr, starting at the script's own first frame."""
    tb = e.__traceback__
    while tb is not None and not _own_frame(tb.tb_frame.f_code.co_filename, spec):
        tb = tb.tb_next
    sys.stderr.write("repro_probe: the script raised:\n")
    traceback.print_exception(type(e), e, tb or e.__traceback__)


def run_user_script(spec, tracer, timings, notebook_result=None):
    """Run the script as __main__ (a module as `python -m` does, a notebook's code cells in order);
    returns (end, ProbeError or None). end: finished, exit, truncated or error."""
    saved_argv, saved_path, saved_cwd = list(sys.argv), list(sys.path), os.getcwd()
    sys.argv = [spec["path"] or spec["module"]] + spec["args"]
    first = sys.path[0] if sys.path else None
    replace = 1 if first is not None and os.path.abspath(first or os.curdir) == saved_cwd else 0
    # as `python script.py` has it (the script's folder first); -m and notebooks: the working directory
    sys.path[0:replace] = [spec["dir"]] + spec["include"]
    os.chdir(spec["cwd"])
    t0 = time.time()
    try:
        if spec["kind"] == "module":
            runpy.run_module(spec["module"], run_name="__main__", alter_sys=True)
        elif spec["kind"] == "notebook":
            from .notebook import run_cells
            run_cells(spec["path"], spec["allow_errors"], tracer, notebook_result)
        else:
            runpy.run_path(spec["path"], run_name="__main__")
        return "finished", None
    except StepLimitReached:
        return "truncated", None
    except ProbeError as e:  # a notebook's IPython syntax without IPython, an unreadable notebook
        return "error", e
    except SystemExit as e:
        if tracer.stopped:
            return "truncated", None
        if e.code is None or e.code == 0:
            return "exit", None
        if not isinstance(e.code, int):
            sys.stderr.write("%s\n" % (e.code,))
        return "error", ProbeError("script_error", "SystemExit: %s" % last_line(e.code))
    except BaseException as e:
        cell = None
        if type(e).__name__ == "CellError":
            cell, e = e, e.exc
        _print_traceback(e, spec)
        if tracer.stopped:  # the script caught StepLimitReached and failed in its own clean-up
            sys.stderr.write("repro_probe: warning: the script raised %s after the step limit\n" % type(e).__name__)
            return "truncated", None
        err = classify(e, tracer, spec)
        if cell is not None:
            from .notebook import describe
            err.message = "%s: %s" % (describe(cell.cell), err.message)
            if err.type == "script_error":
                err.type = "notebook_cell_error"
        return "error", err
    finally:
        timings["train_seconds"] = time.time() - t0
        gc.collect()  # the script's DataLoader iterators shut their workers down
        os.chdir(saved_cwd)
        sys.argv[:] = saved_argv
        sys.path[:] = saved_path


def _script_results(result, tracer, recorder, seeded, counts, end):
    s = result["script"]
    s["steps_recorded"] = sum(1 for st in recorder.steps if st["step"] != "init") if recorder else 0
    s["truncated"] = tracer.stopped
    s["end"] = end
    seeded = dict(seeded)
    seeded.update({"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"),
                   "dataloader_generators": counts["generators"],
                   "dataloader_worker_init_fns": counts["worker_init_fns"], "children": CHILDREN})
    s["seeded"] = seeded
    s["eval_forwards"].update(tracer.eval_forwards)
    s["roots"] = tracer.roots_summary()
    s["optimizers"] = [{"index": k, "type": type(o).__name__,
                        "params": sum(len(g["params"]) for g in o.param_groups)}
                       for k, o in enumerate(tracer.optimizers)]
    s["hooks"] = {"optimizer": tracer.hook_kind,
                  "forward": "global module forward pre/post hooks" if tracer.traced else None,
                  "backward": "torch.autograd.backward wrapped"}
    s["step_definition"] = tracer.step_definition
    s["closures"] = {"evaluations": tracer.closure_evaluations, "recorded": "first evaluation of each step",
                     "entries_skipped": tracer.closure_entries_skipped} if tracer.closure_evaluations else None
    s["compiled"] = tracer.compiled
    s["autocast"] = tracer.autocast
    s["entries"] = {"recorded": tracer.entries_total, "dropped": tracer.entries_dropped,
                    "skipped": tracer.entries_skipped, "skip_reasons": tracer.skip_reasons,
                    "trailing_discarded": tracer.trailing_entries_discarded,
                    "stored_bytes": recorder.stored_bytes if recorder else 0}
    s["caps"] = {"entries_per_step": MAX_ENTRIES_PER_STEP, "entries_total": MAX_ENTRIES_TOTAL,
                 "stored_bytes": STORE_BUDGET}
    s["metrics"] = sorted(tracer.metrics)
    s["tracer_errors"] = list(tracer.errors)


def distributed_section(world_size, tracer, knobs_effective):
    """run.json `distributed` of rank 0 (scriptmode fills in the replica check): the backend the
    script's init_process_group set up (gloo when it set up none; nccl when it trained on CUDA with it)."""
    backend = (tracer.dist_backend or "gloo").lower() if tracer is not None else "gloo"
    on_cuda = str((knobs_effective or {}).get("device") or "").startswith("cuda")
    nccl = "nccl" in backend and ("gloo" not in backend or on_cuda)
    return {"world_size": world_size, "backend": "nccl" if nccl else "gloo",
            "replicas": {"checked": [], "drift": None}}


def run(mode, config_path, out_dir, params_path, world_size=1):
    """world_size > 1: this is rank 0 of a torchrun launch (scriptmode.run_script)."""
    from .runner import _import_torch, _write_train_outputs
    from .safetensors import write_safetensors
    t_start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    payload = json.loads(os.environ.get(TRACER_ENV) or "{}")
    env = recorded_env(dict((k, os.environ[k]) for k in payload.get("env_set", []) if k in os.environ))
    os.environ[ROLE_ENV] = "child"  # for the processes the script starts
    timings = {"import_seconds": 0.0, "setup_seconds": 0.0, "train_seconds": 0.0}
    cfg = torch = recorder = tracer = error = op = None
    result = empty_result(None, None, None)
    end = None
    try:
        cfg, _, cfg_dir = load_config(config_path, "script")
        spec = resolve_script(cfg, cfg_dir)
        result = empty_result(cfg, spec, env)
        knobs, seed, max_steps = cfg["knobs"], cfg["train"]["seed"], cfg["script"]["max_steps"]
        if mode == "traced":  # op replay: trace.capture or trace.replay (script_replay.py)
            from .script_replay import from_config
            op = from_config(cfg)
        from .knobs import apply_env, apply_knobs, effective_knobs, resolve_device
        apply_env(knobs["env"])
        torch = _import_torch(timings)
        t0 = time.time()
        if cfg["script"]["nproc"] > 1:
            stores_without_libuv()  # the ranks' client of torchrun's store (Debian's torch 2.x has no libuv)
        apply_knobs(torch, knobs)
        device = resolve_device(torch, knobs["device"])
        baseline = effective_knobs(torch, knobs, device)
        result["knobs_effective"] = baseline
        if op is not None:
            op.prepare(torch, cfg_dir, result)  # a replay's capture is checked before the script runs
        # a capture or replay needs the forward hooks (trace.enabled false: the steps are counted only)
        traced = mode == "traced" and (cfg["trace"]["enabled"] or op is not None)
        if mode == "traced":
            from .trace import TraceRecorder
            store = cfg["trace"]["store_steps"]
            store = set(store) if store is not None else {0, 1, max_steps - 1}
            record = cfg["trace"]["enabled"] and not (op is not None and op.ends_early)  # a replay: no trace
            recorder = TraceRecorder(torch, record, store, budget=STORE_BUDGET)
        # a capture or replay stops after its step s (the trace of steps <= s is a plain run's)
        tracer = Tracer(torch, recorder, op.limit if op is not None else max_steps, traced=traced)
        if op is not None:
            tracer.watch = op.watch()
        first = {}

        def at_first_step(optimizer):
            params = [p for g in optimizer.param_groups for p in g["params"]]
            first.update(effective_knobs(torch, knobs, params[0].device if params else device))
            first["amp"] = tracer.autocast if tracer.autocast is not None else knobs["amp"]
            first["compile"] = tracer.compiled if traced else knobs["compile"]
        tracer.first_step_hook = at_first_step
        seeded = seed_all(torch, seed)
        counts = {"loaders": 0, "generators": 0, "worker_init_fns": 0}
        undo_dataloader = patch_dataloader(torch, seed, counts)
        tracer.install()
        repro_probe._metric_sink = tracer.report_metric
        timings["setup_seconds"] = time.time() - t0
        try:
            notebook = {} if spec["kind"] == "notebook" else None
            end, error = run_user_script(spec, tracer, timings, notebook)
            result["script"]["notebook"] = notebook
        finally:
            repro_probe._metric_sink = None
            tracer.finish()
            tracer.uninstall()
            undo_dataloader()
            timings["trace_seconds"] = recorder.seconds if recorder else 0.0
        if first:
            result["knobs_effective"] = first
            result["knobs_overridden"] = sorted(k for k in first if first[k] != baseline.get(k))
        result["steps"] = tracer.steps_done
        result["model"] = tracer.model_summary()
        result["final"]["train_loss"] = tracer.last_loss
        result["final"].update(tracer.metrics)
        result["nonfinite"]["loss"] = tracer.nonfinite_losses
        _script_results(result, tracer, recorder, seeded, counts, end)
        if error is None and tracer.stop_error is not None:  # the capture's or replay's own error
            error = tracer.stop_error
        if tracer.launch_error is not None:  # even where the script caught it and failed otherwise
            error = tracer.launch_error
        if error is None and tracer.errors:
            error = ProbeError("tracer_error", "the tracer failed (the trace is incomplete): %s" % tracer.errors[0])
        if error is None and op is not None:
            op.finish(tracer, out_dir, result)  # the capture's files; a replay whose module never ran
        if error is None and tracer.steps_done == 0 and not (op is not None and op.ends_early):
            error = ProbeError("no_optimizer_step", "the script ended (%s) without a training step (no optimizer "
                               "step, no backward()): nothing to trace (is the training loop behind an argument, "
                               "or in a child process?)" % end)
        if error is not None:
            raise error
    except ProbeError as e:
        error = {"type": e.type, "message": one_line(e.message)}
        error.update((k, one_line(v)) for k, v in e.extra.items())
        sys.stderr.write("repro_probe: %s: %s\n" % (e.type, e.message))
    except Exception as e:
        traceback.print_exc()
        error = {"type": "exception", "message": one_line("%s: %s" % (type(e).__name__, e))}
    if recorder is not None:
        recorder.active = False
        result["nonfinite"]["entries"] = recorder.nonfinite_entries
    if world_size > 1:
        result["distributed"] = distributed_section(world_size, tracer, result["knobs_effective"])
    if params_path:
        _write_params(params_path, tracer, error, timings)
    if op is not None:
        error = op.write_outputs(out_dir, torch, error, t_start)  # a replay: replay.json, replay.safetensors
        if op.ends_early:
            recorder = None  # no trace.json: the replay's run recorded none
    return _write_train_outputs(out_dir, cfg, torch, recorder, result, error, timings, t_start, write_safetensors)


def _write_params(path, tracer, error, timings):
    params = []
    try:
        params = tracer.final_params() if tracer is not None else []
    except Exception:
        traceback.print_exc()
        error = error or {"type": "exception", "message": "final parameter digests failed"}
    write_json(path, {"error": error, "steps": tracer.steps_done if tracer is not None else 0,
                      "script_seconds": timings["train_seconds"], "params": params}, compact=True)


def _end_with_agent():
    """A torchrun rank ends with torchrun: torch >= 2.0 starts each rank in a session of its own, so a
    kill of the probe's process group (the host's timeout, Ctrl-C) would not reach it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        return
    agent = os.environ.get(AGENT_PID_ENV)
    if agent and agent.isdigit() and os.getppid() != int(agent):
        os._exit(EXIT_ERROR)  # torchrun ended before this rank could ask to end with it


def main(argv=None):
    parser = argparse.ArgumentParser(prog="repro_probe.scriptrun", description="run the user's script (script mode)")
    parser.add_argument("mode", choices=["traced", "untraced"])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--params", help="write the final parameter digests here (observer check)")
    parser.add_argument("--ranks", help="a torchrun rank: ranks other than 0 run untraced into this folder")
    args = parser.parse_args(argv)
    mode, out, world_size = args.mode, os.path.abspath(args.out), 1
    params = args.params and os.path.abspath(args.params)
    if args.ranks:
        _end_with_agent()
        rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        if rank > 0:
            ranks = os.path.abspath(args.ranks)
            mode, out = "untraced", os.path.join(ranks, "rank%d" % rank)
            params = os.path.join(ranks, "rank%d.json" % rank)
            world_size = 1  # only rank 0 writes run.json's distributed section
    try:
        code = run(mode, os.path.abspath(args.config), out, params, world_size)
    except BaseException:
        traceback.print_exc()
        code = EXIT_ERROR
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # threads or atexit handlers the script left behind must not keep the run alive


if __name__ == "__main__":
    main()
