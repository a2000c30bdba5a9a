"""Load and validate config.json (schema repro.config/1), filling defaults from docs/artifacts.md.

Invalid values raise ProbeError('invalid_config'); unknown keys are reported as warnings."""

import copy
import json
import math
import os
import re

from .errors import ProbeError
from .knobtable import DEFAULT_KNOBS, ENV_NAME, KNOBS, check_value
from .workloads import WORKLOAD_NAMES

SCHEMA = "repro.config/1"

DEFAULTS = {
    "schema": SCHEMA,
    "workload": "mlp",
    "data": {"file": "data.safetensors", "sha256": None},
    "model": {"hidden": [64, 32], "embedding_dim": 4, "dropout": 0.1},
    "train": {"epochs": 3, "batch_size": 64, "lr": 0.005, "optimizer": "adam",
              "seed": 1234, "val_fraction": 0.2,
              # drop_last: every epoch drops its trailing partial batch (the host sets it for every
              # target of an audit where one trains data-parallel, so all see the same batches);
              # collective_timeout: seconds a rank waits in a collective (world_size > 1)
              "drop_last": False, "collective_timeout": 300},
    "knobs": DEFAULT_KNOBS,
    # capture: null or {"step": s, "module": dotted path}: the inputs of that submodule's first call
    # in step s go to capture.safetensors / capture.json, and training stops after step s;
    # {"step": s, "module": path, "backward": true} also copies that call's grad_output;
    # {"step": s, "backward": "order"} records the leaves' backward hook firing order (capture.py)
    # replay (script mode only, script_replay.py): null or {"step": s, "module": name, "capture": {"file",
    # "sha256", "meta"}, "toggle": null | {"mkldnn": false}}: that module's first call in step s is
    # replaced by one call on the captured inputs (replay.json / replay.safetensors), then the script stops
    "trace": {"enabled": True, "store_steps": None, "capture": None, "replay": None},
    # script mode only (python3 -m repro_probe script): the user's training script, run unchanged
    # kind: script (run as `python path`), module (as `python -m module`) or notebook (code cells in order);
    # root: the project copy's root (missing files are named relative to it); paths relative to the config;
    # nproc: ranks started by torchrun (1: the script runs in one process, as `python path`)
    "script": {"kind": "script", "path": None, "module": None, "root": None, "args": [], "cwd": None,
               "max_steps": 30, "include": [], "observer": False, "allow_errors": False, "nproc": 1,
               "sha256": None},  # sha256: the host's digest of the project copy (for its run cache)
}

MAX_SCRIPT_STEPS = 100000
MAX_SCRIPT_NPROC = 16


def _fail(msg):
    raise ProbeError("invalid_config", msg)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _int(v, where, lo, hi=None, nullable=False):
    if v is None and nullable:
        return
    if not _is_int(v) or v < lo or (hi is not None and v > hi):
        _fail("%s must be an integer >= %d%s, got %r" % (where, lo, "" if hi is None else " and <= %d" % hi, v))


def _bool(v, where, nullable=False):
    if v is None and nullable:
        return
    if not isinstance(v, bool):
        _fail("%s must be a boolean%s, got %r" % (where, " or null" if nullable else "", v))


def _choice(v, where, choices, nullable=False):
    if v is None and nullable:
        return
    if v not in choices:
        _fail("%s must be one of %s, got %r" % (where, ", ".join(choices), v))


def merge_defaults(raw, warnings):
    if not isinstance(raw, dict):
        _fail("config must be a JSON object")
    cfg = copy.deepcopy(DEFAULTS)
    for key, value in raw.items():
        if key not in DEFAULTS:
            warnings.append("unknown config key %r ignored" % key)
        elif key in ("schema", "workload"):
            cfg[key] = value
        else:
            if not isinstance(value, dict):
                _fail("config.%s must be an object" % key)
            for sub, v in value.items():
                if sub not in DEFAULTS[key]:
                    warnings.append("unknown config key %s.%s ignored" % (key, sub))
                else:
                    cfg[key][sub] = v
    return cfg


def validate(cfg, mode):
    if cfg["schema"] != SCHEMA:
        _fail("schema must be %r, got %r" % (SCHEMA, cfg["schema"]))
    _choice(cfg["workload"], "workload", WORKLOAD_NAMES)
    d, m, t, k, tr = cfg["data"], cfg["model"], cfg["train"], cfg["knobs"], cfg["trace"]
    if mode == "train":
        if not isinstance(d["file"], str) or not d["file"] or "\x00" in d["file"]:
            _fail("data.file must be a non-empty string")
        if not isinstance(d["sha256"], str) or not re.match(r"^[0-9a-fA-F]{64}$", d["sha256"]):
            _fail("data.sha256 must be 64 hex characters")
    if not isinstance(m["hidden"], list):
        _fail("model.hidden must be a list of integers")
    for i, h in enumerate(m["hidden"]):
        _int(h, "model.hidden[%d]" % i, 1, 1 << 20)
    _int(m["embedding_dim"], "model.embedding_dim", 1, 1 << 16)
    if not _is_num(m["dropout"]) or not 0 <= m["dropout"] < 1:
        _fail("model.dropout must be a number in [0, 1), got %r" % (m["dropout"],))
    _int(t["epochs"], "train.epochs", 1, 1 << 20)
    _int(t["batch_size"], "train.batch_size", 2, 1 << 30)
    if not _is_num(t["lr"]) or t["lr"] <= 0:
        _fail("train.lr must be a positive finite number, got %r" % (t["lr"],))
    _choice(t["optimizer"], "train.optimizer", ("adam", "sgd"))
    _bool(t["drop_last"], "train.drop_last")
    _int(t["collective_timeout"], "train.collective_timeout", 1, 7 * 24 * 3600)
    _int(t["seed"], "train.seed", 0, (1 << 63) - 1)
    if not _is_num(t["val_fraction"]) or not 0 <= t["val_fraction"] < 1:
        _fail("train.val_fraction must be a number in [0, 1), got %r" % (t["val_fraction"],))
    for knob in KNOBS:  # the knob table (knob_table.json, generated from the host's)
        problem = check_value(knob, k[knob["name"]])
        if problem:
            _fail("knobs.%s %s, got %r" % (knob["name"], problem, k[knob["name"]]))
    if not isinstance(k["env"], dict):
        _fail("knobs.env must be an object of strings")
    for name, value in k["env"].items():
        if not ENV_NAME.match(name) or not isinstance(value, str) or "\x00" in value:
            _fail("knobs.env entry %r is not NAME: string" % (name,))
    _bool(tr["enabled"], "trace.enabled")
    if tr["store_steps"] is not None:
        if not isinstance(tr["store_steps"], list):
            _fail("trace.store_steps must be null or a list of integers")
        for i, s in enumerate(tr["store_steps"]):
            _int(s, "trace.store_steps[%d]" % i, 0)
    _validate_capture(tr["capture"])
    _validate_replay(tr["replay"], mode)
    if mode == "script" and tr["capture"] is not None:
        if tr["capture"].get("backward", False) is not False:
            _fail("trace.capture.backward is not supported in script mode (a module capture only)")
        if tr["replay"] is not None:
            _fail("trace.capture and trace.replay cannot both be set: a run either captures or replays")
    _validate_script(cfg["script"], mode)
    if cfg["script"]["nproc"] > 1 and (tr["capture"] is not None or tr["replay"] is not None):
        _fail("trace.%s needs script.nproc 1 (op replay captures one process)"
              % ("capture" if tr["capture"] is not None else "replay"))
    _validate_distributed(cfg, mode)
    return cfg


def _validate_distributed(cfg, mode):
    """world_size > 1: the batch splits evenly over the ranks; no compile, no op-replay capture."""
    ws = cfg["knobs"]["world_size"]
    if ws <= 1:
        return
    if mode == "script":
        _fail("knobs.world_size applies to the built-in workloads; a script's ranks are script.nproc "
              "(torchrun), so world_size must be 1 in script mode")
    bs = cfg["train"]["batch_size"]
    if bs % ws:
        _fail("train.batch_size %d does not split evenly over world_size %d ranks: "
              "choose a batch size divisible by the world size" % (bs, ws))
    if cfg["knobs"]["compile"]:
        _fail("knobs.compile with world_size %d: torch.compile under DistributedDataParallel is not "
              "audited; use compile or world_size > 1, not both" % ws)
    if cfg["trace"]["capture"] is not None:
        _fail("trace.capture needs world_size 1 (op replay captures one process)")


MAX_MODULE_PATH = 400


def _validate_capture(c):
    if c is None:
        return
    shape = ("trace.capture must be null, {\"step\": integer, \"module\": dotted submodule path} (optionally "
             "with \"backward\": true) or {\"step\": integer, \"backward\": \"order\"}")
    if not isinstance(c, dict) or "step" not in c or not set(c) <= {"step", "module", "backward"}:
        _fail(shape)
    _int(c["step"], "trace.capture.step", 0, 1 << 53)
    backward = c.get("backward", False)
    if backward == "order":
        if "module" in c:
            _fail("trace.capture.backward \"order\" hooks every leaf module: it takes no module")
        return
    if not isinstance(backward, bool):
        _fail("trace.capture.backward must be true, false or \"order\", got %r" % (backward,))
    if "module" not in c:
        _fail(shape)
    _module_path(c["module"], "trace.capture.module")


def _module_path(m, where):
    if not isinstance(m, str) or not m or len(m) > MAX_MODULE_PATH:
        _fail("%s must be a non-empty string of at most %d characters" % (where, MAX_MODULE_PATH))
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in "\u2028\u2029" for ch in m):
        _fail("%s contains control characters: %r" % (where, m[:80]))


def _validate_replay(r, mode):
    """trace.replay's shape; its capture (file, sha256, meta) and toggle are checked as the `replay`
    command checks them (replay.check_capture_section) when the script's run starts: invalid_replay."""
    if r is None:
        return
    if mode != "script":
        _fail("trace.replay is for script mode (a built-in workload replays with `replay` kind forward)")
    if not isinstance(r, dict) or not {"step", "module", "capture"} <= set(r) or not set(r) <= {
            "step", "module", "capture", "toggle"}:
        _fail("trace.replay must be null or {\"step\": integer, \"module\": name, \"capture\": {\"file\", "
              "\"sha256\", \"meta\"}, \"toggle\": null or {\"mkldnn\": false}}")
    _int(r["step"], "trace.replay.step", 0, 1 << 53)
    _module_path(r["module"], "trace.replay.module")
    if not isinstance(r["capture"], dict):
        _fail("trace.replay.capture must be {\"file\": name next to the config, \"sha256\": hex, "
              "\"meta\": capture.json object}")


def _path_string(v, where):
    if not isinstance(v, str) or not v or "\x00" in v:
        _fail("%s must be a non-empty string" % where)


MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _validate_script(s, mode):
    _choice(s["kind"], "script.kind", ("script", "module", "notebook"))
    if s["kind"] == "module":
        if not isinstance(s["module"], str) or len(s["module"]) > 256 or not MODULE_NAME.match(s["module"]):
            _fail("script.module must be a dotted module name such as pkg.train, got %r" % (s["module"],))
        if mode == "script" and s["cwd"] is None:
            _fail("script.cwd is required with script.kind module (python -m runs from a directory)")
    elif mode == "script" or s["path"] is not None:
        _path_string(s["path"], "script.path")
    if s["root"] is not None:
        _path_string(s["root"], "script.root")
    _bool(s["allow_errors"], "script.allow_errors")
    if not isinstance(s["args"], list) or not all(isinstance(a, str) and "\x00" not in a for a in s["args"]):
        _fail("script.args must be a list of strings")
    if s["cwd"] is not None:
        _path_string(s["cwd"], "script.cwd")
    _int(s["max_steps"], "script.max_steps", 1, MAX_SCRIPT_STEPS)
    if not isinstance(s["include"], list):
        _fail("script.include must be a list of directories")
    for i, d in enumerate(s["include"]):
        _path_string(d, "script.include[%d]" % i)
    _bool(s["observer"], "script.observer")
    _int(s["nproc"], "script.nproc", 1, MAX_SCRIPT_NPROC)
    if s["nproc"] > 1 and s["kind"] == "notebook":
        _fail("script.nproc %d: a notebook runs in one process (torchrun starts scripts and modules)" % s["nproc"])
    if s["sha256"] is not None and not (isinstance(s["sha256"], str) and re.match(r"^[0-9a-f]{64}$", s["sha256"])):
        _fail("script.sha256 must be null or 64 hex characters")


def load_config(path, mode):
    """Read, merge defaults, validate. Returns (config, warnings, config_dir)."""
    try:
        with open(path, "rb") as f:
            raw = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        _fail("cannot read config %s: %s" % (path, e))
    warnings = []
    cfg = validate(merge_defaults(raw, warnings), mode)
    return cfg, warnings, os.path.dirname(os.path.abspath(path))
