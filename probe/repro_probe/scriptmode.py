"""Script mode, the parent process: `python3 -m repro_probe script --config CONFIG.json --out DIR`.
Resolves the user's script, prepares the environment of its process tree (PYTHONPATH with the
bootstrap sitecustomize first, PYTHONHASHSEED, the tracer's settings), runs it traced in a fresh
process (scriptrun.py) and, with script.observer, once more untraced, then records the observer
check in run.json. A run whose process dies without artifacts still gets a run.json here.
script.nproc > 1: the script runs under torchrun (torchrun.py), rank 0 traced, the other ranks
untraced; their final parameters against rank 0's are the replica check (run.json distributed)."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from .config import load_config
from .errors import ProbeError
from .fingerprint import ENV_DENY
from .jsonio import one_line, write_json
from .seeding import ROLE_ENV, TRACER_ENV

PROBE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOTSTRAP_DIR = os.path.join(PROBE_ROOT, "repro_probe", "bootstrap")
MAX_DIFFERING = 50
EXIT_OK, EXIT_USAGE, EXIT_ERROR = 0, 2, 3
EVAL_POLICY = "skipped"  # forwards with grad disabled or the root module in eval mode are not recorded


def resolve_script(cfg, cfg_dir):
    """Absolute path, argv, cwd, root and include directories; script_not_found when the path is not a
    file. path, cwd, root and include are relative to the config's directory; cwd defaults to the
    script's folder. A module (kind module) has no path: python -m finds it from the cwd."""
    s = cfg["script"]

    def absolute(p):
        return os.path.normpath(p if os.path.isabs(p) else os.path.join(cfg_dir, p))
    kind = s["kind"]
    path = absolute(s["path"]) if s["path"] is not None and kind != "module" else None
    if path is not None:
        if not os.path.exists(path):
            raise ProbeError("script_not_found", "script %s does not exist" % path)
        if not os.path.isfile(path):
            raise ProbeError("script_not_found", "script %s is not a file" % path)
    if kind == "script" and path is not None and path.endswith(".ipynb"):
        kind = "notebook"
    cwd = absolute(s["cwd"]) if s["cwd"] else os.path.dirname(path)
    if not os.path.isdir(cwd):
        raise ProbeError("invalid_config", "script.cwd %s is not a directory" % cwd)
    include = [absolute(d) for d in s["include"]]
    for d in include:
        if not os.path.isdir(d):
            sys.stderr.write("repro_probe: warning: script.include %s is not a directory\n" % d)
    return {"kind": kind, "path": path, "module": s["module"] if kind == "module" else None,
            "args": list(s["args"]), "cwd": cwd, "dir": os.path.dirname(path) if path else cwd,
            "root": absolute(s["root"]) if s["root"] else None, "include": include,
            "allow_errors": s["allow_errors"]}


def tracer_env(cfg, spec, environ):
    """The variables the probe sets for the script's process tree (values are not secrets)."""
    knobs, seed = cfg["knobs"], cfg["train"]["seed"]
    own = [BOOTSTRAP_DIR, PROBE_ROOT] + spec["include"]
    rest = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in own]
    out = {"PYTHONPATH": os.pathsep.join(own + rest)}
    if "PYTHONHASHSEED" not in environ:  # knobs.env or the caller's value wins
        out["PYTHONHASHSEED"] = str(seed % (1 << 32))
    out[ROLE_ENV] = "main"
    if cfg["script"]["nproc"] > 1:
        out["USE_LIBUV"] = "0"  # init_process_group's own stores (Debian's torch 2.x has no libuv)
    torch_knobs = dict((k, v) for k, v in knobs.items() if k not in ("env", "device", "amp", "compile"))
    payload = {"seed": seed, "knobs": torch_knobs, "env_set": sorted(list(out) + [TRACER_ENV])}
    out[TRACER_ENV] = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return out


def recorded_env(env):
    """run.json script.env: the tracer's variables with fingerprint.redact_env's secret filter (a name
    containing TOKEN, SECRET, KEY, PASS, CREDENTIAL or AUTH is dropped; a value is cut at its first
    newline), values kept up to the JSON string cap (PYTHONPATH and the tracer's JSON are long)."""
    out = {}
    for name in sorted(env):
        if not any(word in name.upper() for word in ENV_DENY):
            out[name] = re.split(r"[\r\n]", str(env[name]), maxsplit=1)[0]
    return out


def script_section(cfg, spec, env):
    s = cfg["script"]
    path = spec["path"] if spec else s["path"]
    kind = spec["kind"] if spec else s["kind"]
    argv0 = path if kind != "module" else "-m %s" % s["module"]
    return {
        "kind": kind, "module": s["module"] if kind == "module" else None, "step_definition": None,
        "notebook": None,
        "path": path, "argv": [argv0] + list(s["args"]), "cwd": spec["cwd"] if spec else s["cwd"],
        "include": spec["include"] if spec else list(s["include"]), "env": recorded_env(env or {}),
        "seed": cfg["train"]["seed"], "max_steps": s["max_steps"], "steps_recorded": 0, "truncated": False,
        "end": None, "seeded": None, "eval_forwards": {"policy": EVAL_POLICY, "no_grad": 0, "eval_mode": 0},
        "roots": [], "optimizers": [], "hooks": None, "compiled": False, "autocast": None,
        "entries": None, "caps": None, "metrics": [], "observer_check": None, "tracer_errors": [],
    }


def empty_result(cfg, spec, env):
    return {"knobs_effective": {}, "knobs_overridden": [], "data": None, "model": None, "steps": 0,
            "epochs": [], "final": {"val_accuracy": None, "val_loss": None, "train_loss": None},
            "nonfinite": {"loss": 0, "entries": 0},
            "script": script_section(cfg, spec, env) if cfg is not None else None}


def _write_failure(out_dir, cfg, spec, env, error, t_start):
    """run.json with status error (and a fingerprint) for a run that never got its own."""
    from .runner import _write_train_outputs
    from .safetensors import write_safetensors
    torch = None
    if cfg is not None:
        try:
            from .knobs import apply_env, apply_knobs
            apply_env(cfg["knobs"]["env"])
            import torch
            apply_knobs(torch, cfg["knobs"])
        except Exception as e:
            sys.stderr.write("repro_probe: warning: fingerprint without torch: %s\n" % e)
    sys.stderr.write("repro_probe: %s: %s\n" % (error["type"], error["message"]))
    timings = {"import_seconds": 0.0, "setup_seconds": 0.0, "train_seconds": 0.0}
    return _write_train_outputs(out_dir, cfg, torch, None, empty_result(cfg, spec, env), error, timings,
                                t_start, write_safetensors)


def child_command(mode, config_path, out_dir, params_path, nproc=1, ranks_dir=None):
    """The run process, or (nproc > 1) torchrun starting nproc of them on this node."""
    run = ["-m", "repro_probe.scriptrun", mode, "--config", config_path, "--out", out_dir]
    if params_path:
        run += ["--params", params_path]
    if nproc <= 1:
        return [sys.executable] + run
    # torchrun's logs go to the ranks' folder (its default, a /tmp/torchelastic_* folder, stays behind)
    return ([sys.executable, "-m", "repro_probe.torchrun", "--standalone", "--nproc_per_node", str(nproc),
             "--monitor_interval", "0.1", "--log_dir", os.path.join(ranks_dir, "torchrun")]
            + run + ["--ranks", ranks_dir])


def _run_child(mode, config_path, out_dir, env, params_path, nproc=1, ranks_dir=None):
    cmd = child_command(mode, config_path, out_dir, params_path, nproc, ranks_dir)
    t0 = time.time()
    rc = subprocess.call(cmd, env=env)
    return rc, time.time() - t0


def _describe_exit(rc):
    if rc < 0:
        return "signal %d" % -rc
    return "exit code %d" % rc


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def observer_check(traced, untraced):
    """Compare the final parameter digests of the traced and the untraced run."""
    check = {"equal": False, "params": 0, "differing": [], "steps": {"traced": None, "untraced": None},
             "seconds": {"traced": None, "untraced": None}, "untraced_error": None}
    if traced is None:
        check["untraced_error"] = {"type": "exception", "message": "the traced run wrote no parameter digests"}
        return check
    check["params"] = len(traced["params"])
    check["steps"]["traced"], check["seconds"]["traced"] = traced["steps"], traced["script_seconds"]
    if untraced is None:
        check["untraced_error"] = {"type": "exception", "message": "the untraced run wrote no parameter digests"}
        return check
    check["steps"]["untraced"], check["seconds"]["untraced"] = untraced["steps"], untraced["script_seconds"]
    check["untraced_error"] = untraced["error"]
    mine = dict((p["key"], p["sha256"]) for p in untraced["params"])
    differing = [p["name"] for p in traced["params"] if mine.get(p["key"]) != p["sha256"]]
    keys = set(p["key"] for p in traced["params"])
    differing += [k for k in sorted(mine) if k not in keys]
    check["differing"] = differing[:MAX_DIFFERING]
    check["equal"] = (not differing and untraced["error"] is None and traced["steps"] == untraced["steps"])
    return check


# errors every rank raises alike (the tracer's launch checks): reported without naming a rank
SAME_IN_EVERY_RANK = ("distributed_env", "nccl_unavailable", "spawn_children")


def _rank_error(ranks_dir, rank):
    """The error rank r (> 0) wrote in its run.json, as the run's: its type, the message naming it."""
    run = _read_json(os.path.join(ranks_dir, "rank%d" % rank, "run.json"))
    err = run.get("error") if isinstance(run, dict) and run.get("status") == "error" else None
    if not isinstance(err, dict) or not isinstance(err.get("message"), str):
        return None
    out = dict(err)
    if err.get("type") not in SAME_IN_EVERY_RANK:
        out["message"] = one_line("rank %d: %s" % (rank, err["message"]))
    return out


def replica_check(rank0, ranks_dir, nproc):
    """Every rank's final parameter digests against rank 0's. Returns (replicas, error): error is the
    first rank's own error, or rank_failed for a rank that ended without writing its digests."""
    drift = None
    mine = dict((p["key"], p["sha256"]) for p in rank0["params"]) if rank0 else None
    for r in range(1, nproc):
        err = _rank_error(ranks_dir, r)
        if err is not None:
            return {"checked": [], "drift": None}, err
        theirs = _read_json(os.path.join(ranks_dir, "rank%d.json" % r))
        if theirs is None or theirs.get("error"):
            return {"checked": [], "drift": None}, {
                "type": "rank_failed", "message": "rank %d ended without writing its parameters (killed, or its "
                "process died; stderr has torchrun's report)" % r}
        same = mine is not None and dict((p["key"], p["sha256"]) for p in theirs["params"]) == mine
        if drift is None and not (same and theirs["steps"] == rank0["steps"]):
            drift = {"rank": r, "step": "end"}
    return {"checked": ["end"], "drift": drift}, None


def _first_rank_error(ranks_dir, nproc):
    for r in range(1, nproc):
        err = _rank_error(ranks_dir, r)
        if err is not None:
            return err
    return None


def run_script(config_path, out_dir):
    t_start = time.time()
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    config_path = os.path.abspath(config_path)
    cfg = spec = env = None
    try:
        cfg, warnings, cfg_dir = load_config(config_path, "script")
        for w in warnings:
            sys.stderr.write("repro_probe: warning: %s\n" % w)
        spec = resolve_script(cfg, cfg_dir)
        if cfg["script"]["nproc"] > 1 and spec["kind"] == "notebook":
            raise ProbeError("invalid_config", "script.nproc %d: a notebook runs in one process (torchrun starts "
                             "scripts and modules)" % cfg["script"]["nproc"])
    except ProbeError as e:
        return _write_failure(out_dir, cfg, spec, env, {"type": e.type, "message": one_line(e.message)}, t_start)
    if cfg["knobs"]["amp"] != "off" or cfg["knobs"]["compile"]:
        sys.stderr.write("repro_probe: warning: knobs.amp and knobs.compile cannot be imposed on a script; "
                         "run.json knobs_effective says what the script did\n")
    child_env = dict(os.environ)
    child_env.update(cfg["knobs"]["env"])
    env = tracer_env(cfg, spec, child_env)
    child_env.update(env)
    from .script_replay import from_config
    op = from_config(cfg)  # trace.capture or trace.replay: the run stops at its step
    observer = cfg["script"]["observer"] and op is None
    if cfg["script"]["observer"] and op is not None:
        sys.stderr.write("repro_probe: warning: script.observer is skipped in a run with trace.%s (it stops at "
                         "step %d)\n" % ("replay" if op.ends_early else "capture", op.step))
    nproc = cfg["script"]["nproc"]
    work = tempfile.mkdtemp(prefix="repro-script-") if observer or nproc > 1 else None

    def ranks_dir(name):
        return os.path.join(work, name) if nproc > 1 else None
    run_path = os.path.join(out_dir, "run.json")
    for name in ("run.json",) + (op.files if op is not None else ()):
        if os.path.exists(os.path.join(out_dir, name)):  # left from before: must not pass for this run's
            os.remove(os.path.join(out_dir, name))
    try:
        params = os.path.join(work, "traced.json") if work else None
        rc, _ = _run_child("traced", config_path, out_dir, child_env, params, nproc, ranks_dir("ranks"))
        run = _read_json(run_path)
        if run is None or run.get("schema") != "repro.run/1" or (nproc == 1 and rc not in (EXIT_OK, EXIT_ERROR)):
            error = _first_rank_error(ranks_dir("ranks"), nproc) if nproc > 1 else None
            if error is None:
                msg = ("the script's process ended with %s before the probe wrote its artifacts "
                       "(os._exit() in the script, or a crash in native code)" % _describe_exit(rc))
                if nproc > 1:
                    msg = ("torchrun's ranks ended (%s) before rank 0 wrote its artifacts (a rank died or was "
                           "killed; stderr has torchrun's report)" % _describe_exit(rc))
                error = {"type": "script_error", "message": msg}
            return _write_failure(out_dir, cfg, spec, env, error, t_start)
        if nproc > 1 and run["status"] == "ok":
            replicas, error = replica_check(_read_json(params), ranks_dir("ranks"), nproc)
            run.setdefault("distributed", {"world_size": nproc, "backend": "gloo"})["replicas"] = replicas
            if error is not None:
                run["status"], run["error"] = "error", error
                sys.stderr.write("repro_probe: %s: %s\n" % (error["type"], error["message"]))
            elif replicas["drift"] is not None:
                sys.stderr.write("repro_probe: warning: replica check: rank %d's parameters differ from rank 0's "
                                 "at the end\n" % replicas["drift"]["rank"])
            write_json(run_path, run)
        if observer:
            t0 = time.time()
            if run["status"] == "ok":
                untraced_dir = os.path.join(work, "untraced")
                os.makedirs(untraced_dir)
                rc2, _ = _run_child("untraced", config_path, untraced_dir, child_env,
                                    os.path.join(work, "untraced.json"), nproc, ranks_dir("ranks-untraced"))
                check = observer_check(_read_json(params), _read_json(os.path.join(work, "untraced.json")))
                if check["untraced_error"] is None and rc2 != EXIT_OK:
                    check["untraced_error"] = {"type": "exception", "message": "untraced run: %s" % _describe_exit(rc2)}
                if not check["equal"]:
                    sys.stderr.write("repro_probe: warning: observer check: the traced and the untraced run differ "
                                     "(%s)\n" % ", ".join(check["differing"][:5] or ["see run.json"]))
            else:
                check = {"equal": None, "skipped": "the traced run ended with an error"}
            run["script"]["observer_check"] = check
            run["timings"]["observer_seconds"] = time.time() - t0
            run["timings"]["total_seconds"] = time.time() - t_start
            write_json(run_path, run)
        return EXIT_OK if run["status"] == "ok" else EXIT_ERROR
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)
