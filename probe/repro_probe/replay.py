"""Replay mode: `python3 -m repro_probe replay --config CONFIG.json --out DIR` replays ONE optimizer
update on exactly the given bytes. The host sends the recorded inputs of the update of step k
(parameters, gradients and, for k >= 1, the optimizer state before it) to each target; different
outputs from identical inputs put the drift in the update op itself.

Input: config.json (schema repro.replay/1, kind update) and the safetensors file it names next to it,
holding param/<n>, grad/<n> and (k >= 1) adam opt/<n>.exp_avg, opt/<n>.exp_avg_sq or sgd
opt/<n>.momentum_buffer for every name n of `params`.
Output: replay.json (schema repro.replay-result/1) and replay.safetensors (param/<n> after the update,
then opt/<n>.<key> of the state after it, keys sorted, "step" left out, as the trace names and stores
them). On any error replay.json has status error and a minimal run.json carries the error; exit 3."""

import hashlib
import json
import math
import os
import re
import sys
import time
import traceback

from .errors import ProbeError
from .jsonio import one_line, write_json

SCHEMA = "repro.replay/1"
RESULT_SCHEMA = "repro.replay-result/1"
EXIT_OK, EXIT_USAGE, EXIT_ERROR = 0, 2, 3
MAX_PARAMS = 10000
MAX_NAME = 400
MAX_BYTES = 1 << 30  # tensor data in the inputs file
MAX_CONFIG = 16 * 1024 * 1024
MAX_STEP = 1 << 53  # float(k) is exact
STATE_KEYS = {"adam": ("exp_avg", "exp_avg_sq"), "sgd": ("momentum_buffer",)}
FLOAT_CODES = ("F64", "F32", "F16", "BF16")
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _invalid(msg):
    raise ProbeError("invalid_replay", msg)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_name(name, where):
    if not isinstance(name, str) or not name:
        _invalid("%s must be a non-empty string, got %r" % (where, name))
    if len(name) > MAX_NAME:
        _invalid("%s is longer than %d characters" % (where, MAX_NAME))
    if any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in name):
        _invalid("%s contains control characters: %r" % (where, name[:80]))


def _check_knobs(raw):
    """The train config's knobs object: validated as config.py does, defaults filled in."""
    from .config import merge_defaults, validate
    if not isinstance(raw, dict):
        _invalid("knobs must be an object")
    warnings = []
    try:
        cfg = validate(merge_defaults({"knobs": raw}, warnings), "fingerprint")
    except ProbeError as e:
        _invalid(e.message)
    for w in warnings:
        sys.stderr.write("repro_probe: warning: %s\n" % w)
    return cfg["knobs"]


def load_replay_config(path):
    """Read and validate config.json; returns (config, config_dir). ProbeError('invalid_replay')."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG + 1)
        if len(raw) > MAX_CONFIG:
            _invalid("config %s is larger than %d bytes" % (path, MAX_CONFIG))
        cfg = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as e:
        _invalid("cannot read config %s: %s" % (path, e))
    if not isinstance(cfg, dict):
        _invalid("config must be a JSON object")
    if cfg.get("schema") != SCHEMA:
        _invalid("schema must be %r, got %r" % (SCHEMA, cfg.get("schema")))
    if cfg.get("kind") != "update":
        _invalid("kind must be 'update', got %r" % (cfg.get("kind"),))
    for key in sorted(set(cfg) - {"schema", "kind", "optimizer", "step", "params", "knobs", "inputs"}):
        sys.stderr.write("repro_probe: warning: unknown replay config key %r ignored\n" % key[:80])
    opt = cfg.get("optimizer")
    if not isinstance(opt, dict) or opt.get("type") not in STATE_KEYS:
        _invalid("optimizer must be {\"type\": \"adam\" | \"sgd\", \"lr\": number}")
    lr = opt.get("lr")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        _invalid("optimizer.lr must be a positive finite number, got %r" % (lr,))
    step = cfg.get("step")
    if not _is_int(step) or not 0 <= step <= MAX_STEP:
        _invalid("step must be an integer >= 0, got %r" % (step,))
    params = cfg.get("params")
    if not isinstance(params, list) or not params:
        _invalid("params must be a non-empty list of parameter names")
    if len(params) > MAX_PARAMS:
        _invalid("params has %d names, at most %d" % (len(params), MAX_PARAMS))
    for i, name in enumerate(params):
        _check_name(name, "params[%d]" % i)
    if len(set(params)) != len(params):
        _invalid("params names a parameter more than once")
    knobs = _check_knobs(cfg.get("knobs", {}))
    inputs = cfg.get("inputs")
    if not isinstance(inputs, dict):
        _invalid("inputs must be {\"file\": name, \"sha256\": hex}")
    fname, sha = inputs.get("file"), inputs.get("sha256")
    if (not isinstance(fname, str) or not fname or fname in (".", "..") or "/" in fname or "\\" in fname
            or "\x00" in fname or len(fname) > 255):
        _invalid("inputs.file must be a plain file name next to the config, got %r" % (fname,))
    if not isinstance(sha, str) or not HEX64.match(sha):
        _invalid("inputs.sha256 must be 64 hex characters")
    out = {"optimizer": {"type": opt["type"], "lr": lr}, "step": step, "params": list(params), "knobs": knobs,
           "inputs": {"file": fname, "sha256": sha.lower()}}
    return out, os.path.dirname(os.path.abspath(path))


def expected_names(cfg):
    """{tensor name: (kind, param name)} the inputs file must hold, no more and no less."""
    keys = STATE_KEYS[cfg["optimizer"]["type"]] if cfg["step"] >= 1 else ()
    out = {}
    for n in cfg["params"]:
        out["param/" + n] = ("param", n)
        out["grad/" + n] = ("grad", n)
        for key in keys:
            out["opt/%s.%s" % (n, key)] = (key, n)
    return out


def read_inputs(cfg, cfg_dir):
    """Verify the file's sha256, then its header against the config; returns ({name: tensor}, nbytes)."""
    from .safetensors import SafetensorsError, ST_DTYPES, decode_safetensors, parse_header
    path = os.path.join(cfg_dir, cfg["inputs"]["file"])
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES + 16 * 1024 * 1024 + 8:
            _invalid("inputs file %s is %d bytes, over the cap of 1 GiB of tensor data" % (cfg["inputs"]["file"], size))
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        _invalid("cannot read inputs file %s: %s" % (cfg["inputs"]["file"], e))
    digest = hashlib.sha256(buf).hexdigest()
    if digest != cfg["inputs"]["sha256"]:
        raise ProbeError("data_hash_mismatch", "inputs file %s has sha256 %s, the config says %s"
                         % (cfg["inputs"]["file"], digest, cfg["inputs"]["sha256"]))
    try:
        entries, _, _ = parse_header(buf)
    except SafetensorsError as e:
        _invalid("inputs file %s: %s" % (cfg["inputs"]["file"], e))
    want = expected_names(cfg)
    extra = sorted(set(entries) - set(want))
    if extra:
        _invalid("unexpected tensor %r in the inputs file (step %d, %s)"
                 % (extra[0][:80], cfg["step"], cfg["optimizer"]["type"]))
    missing = [n for n in want if n not in entries]
    if missing:
        _invalid("tensor %r missing from the inputs file" % missing[0][:80])
    total = 0
    for name, (code, shape, begin, end) in entries.items():
        if code not in FLOAT_CODES:
            _invalid("tensor %r has dtype %s: only float dtypes (%s) are replayed"
                     % (name[:80], ST_DTYPES[code][0], ", ".join(ST_DTYPES[c][0] for c in FLOAT_CODES)))
        total += end - begin
    if total > MAX_BYTES:
        _invalid("inputs hold %d bytes of tensors, over the cap of 1 GiB" % total)
    for name, (kind, n) in want.items():
        if kind == "param":
            continue
        pcode, pshape = entries["param/" + n][:2]
        code, shape = entries[name][:2]
        if shape != pshape:
            _invalid("tensor %r has shape %s, its parameter %s" % (name[:80], shape, pshape))
        if code != pcode:
            _invalid("tensor %r has dtype %s, its parameter %s"
                     % (name[:80], ST_DTYPES[code][0], ST_DTYPES[pcode][0]))
    try:
        tensors, _ = decode_safetensors(buf)
    except SafetensorsError as e:
        _invalid("inputs file %s: %s" % (cfg["inputs"]["file"], e))
    return tensors


def make_optimizer(torch, opt_cfg, params):
    """Exactly as train.make_optimizer builds it, on the list of parameters in order."""
    if opt_cfg["type"] == "adam":
        return torch.optim.Adam(params, lr=opt_cfg["lr"])
    return torch.optim.SGD(params, lr=opt_cfg["lr"], momentum=0.9)


def replay_update(torch, cfg, tensors, device):
    """Build the parameters, the optimizer and its state, set the gradients, step once. Returns
    [(name, tensor)] in output order: per parameter param/<n>, then opt/<n>.<key> (keys sorted)."""
    k = cfg["step"]
    kind = cfg["optimizer"]["type"]
    params = []
    for n in cfg["params"]:
        params.append(tensors["param/" + n].to(device).clone().requires_grad_(True))
    optimizer = make_optimizer(torch, cfg["optimizer"], params)
    for n, p in zip(cfg["params"], params):
        if k >= 1:
            state = dict((key, tensors["opt/%s.%s" % (n, key)].to(device).clone()) for key in STATE_KEYS[kind])
            if kind == "adam":
                # as Adam's own lazy init keeps it (torch 1.13 and 2.x, neither capturable nor fused):
                # a 0-dim float tensor of the default dtype on the CPU, holding the updates done so far
                state["step"] = torch.tensor(float(k))
            optimizer.state[p] = state
        p.grad = tensors["grad/" + n].to(device).clone()
    optimizer.step()
    out = []
    for n, p in zip(cfg["params"], params):
        out.append(("param/" + n, p.detach()))
        for key, value in sorted(optimizer.state.get(p, {}).items()):
            if key != "step" and hasattr(value, "dtype"):
                out.append(("opt/%s.%s" % (n, key), value.detach()))
    return out


def _result(torch, cfg, error, entries, seconds):
    return {"schema": RESULT_SCHEMA, "status": "error" if error else "ok", "error": error,
            "torch": getattr(torch, "__version__", None) if torch is not None else None,
            "step": cfg["step"] if cfg is not None else None, "seconds": seconds, "entries": entries}


def run_replay(config_path, out_dir):
    t_start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    cfg = torch = error = None
    entries = []
    stored = {}
    try:
        cfg, cfg_dir = load_replay_config(config_path)
        from .knobs import apply_env, apply_knobs, resolve_device
        apply_env(cfg["knobs"]["env"])
        import torch
        apply_knobs(torch, cfg["knobs"])
        device = resolve_device(torch, cfg["knobs"]["device"])
        tensors = read_inputs(cfg, cfg_dir)
        from .safetensors import dtype_name, storable, tensor_sha256
        from .trace import count_nonfinite
        for name, t in replay_update(torch, cfg, tensors, device):
            entries.append({"name": name, "dtype": dtype_name(t.dtype), "shape": list(t.shape),
                            "sha256": tensor_sha256(t), "nonfinite": count_nonfinite(torch, t)})
            stored[name] = storable(t)
    except ProbeError as e:
        error = {"type": e.type, "message": one_line(e.message)}
        sys.stderr.write("repro_probe: %s: %s\n" % (e.type, one_line(e.message)))
    except Exception as e:
        traceback.print_exc()
        error = {"type": "exception", "message": one_line("%s: %s" % (type(e).__name__, e))}
    if error is None:
        try:
            from .safetensors import write_safetensors
            write_safetensors(os.path.join(out_dir, "replay.safetensors"), stored)
        except Exception as e:
            traceback.print_exc()
            error = {"type": "exception", "message": one_line("replay.safetensors: %s: %s" % (type(e).__name__, e))}
    stale = "replay.safetensors" if error is not None else "run.json"  # left by an earlier run in DIR
    if os.path.exists(os.path.join(out_dir, stale)):
        os.remove(os.path.join(out_dir, stale))
    if error is not None:
        entries = []
        write_json(os.path.join(out_dir, "run.json"), {"schema": "repro.run/1", "status": "error", "error": error})
    write_json(os.path.join(out_dir, "replay.json"), _result(torch, cfg, error, entries, time.time() - t_start))
    return EXIT_ERROR if error else EXIT_OK
