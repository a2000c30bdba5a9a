"""Replay mode: `python3 -m repro_probe replay --config CONFIG.json --out DIR` replays ONE optimizer
update on exactly the given bytes. The host sends the recorded inputs of the update of step k
(parameters, gradients and, for k >= 1, the optimizer state before it) to each target; different
outputs from identical inputs put the drift in the update op itself.

Input: config.json (schema repro.replay/1, kind update) and the safetensors file it names next to it,
holding param/<n>, grad/<n> and (k >= 1) adam opt/<n>.exp_avg, opt/<n>.exp_avg_sq or sgd
opt/<n>.momentum_buffer for every name n of `params`.
Output: replay.json (schema repro.replay-result/1) and replay.safetensors (param/<n> after the update,
then opt/<n>.<key> of the state after it, keys sorted, "step" left out, as the trace names and stores
them). On any error replay.json has status error and a minimal run.json carries the error; exit 3.

Kind forward (issue 27): ONE call of a module on the inputs captured in train mode (capture.py) at a
step: the config carries the train config of the run (its data file next to the config,
hash-verified), the capture file (capture.safetensors, its sha256 and capture.json's object as
`meta`) and `toggle` (null or {"mkldnn": false}). The model is built as training builds it, the
submodule gets the captured state_dict, mode, grad mode and CPU RNG state, and is called on the
captured arguments; replay.safetensors holds its output named as the trace names it (fwd/<path>,
fwd/<path>.i, fwd/<path>.i.j), values widened as the trace stores them.

Kind backward (replay_backward.py): the same config with kind "backward" and a capture made with
trace.capture.backward true (meta.backward, gout/<i> tensors): the module's call as kind forward, then
torch.autograd.backward(its output, the captured grad_output); replay.safetensors holds
grad/<module>.<param> (named as the trace names gradients) and gin/<module>/<i>, the gradient of each
captured argument that requires grad. A backward capture's gout/ entries are accepted (and unused) by
kind forward too."""

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
    if cfg.get("kind") == "forward":
        return load_forward_config(cfg), os.path.dirname(os.path.abspath(path))
    if cfg.get("kind") == "init":
        from .replay_init import load_init_config
        return load_init_config(cfg, _check_train, _check_toggle), os.path.dirname(os.path.abspath(path))
    if cfg.get("kind") == "backward":
        from .replay_backward import load_backward_config
        return load_backward_config(cfg), os.path.dirname(os.path.abspath(path))
    if cfg.get("kind") != "update":
        _invalid("kind must be 'update', 'forward', 'init' or 'backward', got %r" % (cfg.get("kind"),))
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


def _check_file_name(fname, where):
    if (not isinstance(fname, str) or not fname or fname in (".", "..") or "/" in fname or "\\" in fname
            or "\x00" in fname or len(fname) > 255):
        _invalid("%s must be a plain file name next to the config, got %r" % (where, fname))


MAX_OUTPUTS = 64
MAX_ENTRIES = 100000


def _check_train(raw):
    """The train config of the run reproduced: validated as train mode does, defaults filled in."""
    from .config import merge_defaults, validate
    if not isinstance(raw, dict):
        _invalid("train must be the train-mode config object of the run")
    warnings = []
    try:
        cfg = validate(merge_defaults(raw, warnings), "train")
    except ProbeError as e:
        _invalid("train: " + e.message)
    for w in warnings:
        sys.stderr.write("repro_probe: warning: train: %s\n" % w)
    _check_file_name(cfg["data"]["file"], "train.data.file")
    if cfg["knobs"]["compile"]:
        _invalid("train.knobs.compile must be off: a forward replay calls the module eagerly")
    return cfg


def _check_meta(meta, step, module):
    """capture.json's object; returns (arg names, state keys)."""
    from .capture import SCHEMA as CAPTURE_SCHEMA, is_dense_strides, structure_names
    if not isinstance(meta, dict):
        _invalid("capture.meta must be the capture.json object")
    if meta.get("schema") != CAPTURE_SCHEMA:
        _invalid("capture.meta.schema must be %r, got %r" % (CAPTURE_SCHEMA, meta.get("schema")))
    if meta.get("step") != step or not _is_int(meta.get("step")):
        _invalid("capture.meta.step %r is not the replay's step %d" % (meta.get("step"), step))
    if meta.get("module") != module:
        _invalid("capture.meta.module is not the replay's module %r" % module[:80])
    _check_name(meta.get("type"), "capture.meta.type")
    for key in ("training", "grad_enabled"):
        if not isinstance(meta.get(key), bool):
            _invalid("capture.meta.%s must be a boolean" % key)
    try:
        args = structure_names(meta.get("structure"))
    except ValueError as e:
        _invalid("capture.meta.structure: %s" % e)
    rg = meta.get("requires_grad")
    if not isinstance(rg, dict) or sorted(rg) != sorted(args) or not all(isinstance(v, bool) for v in rg.values()):
        _invalid("capture.meta.requires_grad must map every tensor of the structure (%s) to a boolean"
                 % ", ".join(args)[:200])
    entries = meta.get("entries")
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        _invalid("capture.meta.entries must be a list of at most %d entries" % MAX_ENTRIES)
    seen = {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            _invalid("capture.meta.entries[%d] must be an object" % i)
        _check_name(e.get("name"), "capture.meta.entries[%d].name" % i)
        if e["name"] in seen:
            _invalid("capture.meta.entries names %r twice" % e["name"][:80])
        shape = e.get("shape")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            _invalid("capture.meta.entries[%d].shape must be a list of integers >= 0" % i)
        if not isinstance(e.get("dtype"), str) or not isinstance(e.get("sha256"), str) or not HEX64.match(e["sha256"]):
            _invalid("capture.meta.entries[%d] needs a dtype and a 64-hex sha256" % i)
        seen[e["name"]] = e
    for name in args:
        if name not in seen:
            _invalid("capture.meta.structure names tensor %r, which entries do not hold" % name)
    if "rng/cpu" not in seen:
        _invalid("capture.meta.entries hold no rng/cpu")
    state = []
    for name in seen:
        if name.startswith("state/") and len(name) > 6:
            state.append(name[6:])
        elif name != "rng/cpu" and name not in args and not (meta.get("backward") is True and name.startswith("gout/")):
            _invalid("capture.meta.entries hold %r, which is neither in the structure, state/ nor rng/cpu"
                     % name[:80])
    strides = meta.get("strides", {})
    if not isinstance(strides, dict) or not set(strides) <= set(args):
        _invalid("capture.meta.strides must map tensors of the structure to strides")
    for name, st in strides.items():
        if not isinstance(st, list) or not is_dense_strides(seen[name]["shape"], st):
            _invalid("capture.meta.strides[%r] is not a dense layout of shape %s" % (name[:80], seen[name]["shape"]))
    return args, sorted(state), seen


def _check_toggle(toggle):
    """null or {"mkldnn": boolean}."""
    if toggle is not None:
        if not isinstance(toggle, dict) or not set(toggle) <= {"mkldnn"} or not all(
                isinstance(v, bool) for v in toggle.values()):
            _invalid("toggle must be null or {\"mkldnn\": boolean}")
        toggle = dict(toggle)
    return toggle


def load_forward_config(cfg):
    for key in sorted(set(cfg) - {"schema", "kind", "step", "module", "train", "capture", "toggle"}):
        sys.stderr.write("repro_probe: warning: unknown replay config key %r ignored\n" % key[:80])
    step = cfg.get("step")
    if not _is_int(step) or not 0 <= step <= MAX_STEP:
        _invalid("step must be an integer >= 0, got %r" % (step,))
    module = cfg.get("module")
    _check_name(module, "module")
    train = _check_train(cfg.get("train"))
    out = check_capture_section(cfg.get("capture"), step, module)
    out.update(kind="forward", step=step, module=module, train=train, knobs=train["knobs"],
               toggle=_check_toggle(cfg.get("toggle")))
    return out


def check_capture_section(cap, step, module):
    """A config's `capture` ({"file": name next to the config, "sha256": hex, "meta": capture.json's
    object}) for a replay of `module` at `step` (kind forward, and script mode's trace.replay):
    {"capture", "args", "state", "entries"} as read_capture and load_captured take them."""
    if not isinstance(cap, dict):
        _invalid("capture must be {\"file\": name, \"sha256\": hex, \"meta\": capture.json object}")
    _check_file_name(cap.get("file"), "capture.file")
    if not isinstance(cap.get("sha256"), str) or not HEX64.match(cap["sha256"]):
        _invalid("capture.sha256 must be 64 hex characters")
    args, state, entries = _check_meta(cap.get("meta"), step, module)
    return {"capture": {"file": cap["file"], "sha256": cap["sha256"].lower(), "meta": cap["meta"]},
            "args": args, "state": state, "entries": entries}


def read_capture(cfg, cfg_dir):
    """Verify capture.safetensors' sha256, its header and each tensor against the meta; returns
    {name: tensor}."""
    from .safetensors import SafetensorsError, ST_DTYPES, decode_safetensors, parse_header, tensor_sha256
    fname = cfg["capture"]["file"]
    path = os.path.join(cfg_dir, fname)
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES + 16 * 1024 * 1024 + 8:
            _invalid("capture file %s is %d bytes, over the cap of 1 GiB of tensor data" % (fname, size))
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        _invalid("cannot read capture file %s: %s" % (fname, e))
    digest = hashlib.sha256(buf).hexdigest()
    if digest != cfg["capture"]["sha256"]:
        raise ProbeError("data_hash_mismatch", "capture file %s has sha256 %s, the config says %s"
                         % (fname, digest, cfg["capture"]["sha256"]))
    try:
        header, _, _ = parse_header(buf)
    except SafetensorsError as e:
        _invalid("capture file %s: %s" % (fname, e))
    want = cfg["entries"]
    extra = sorted(set(header) - set(want))
    if extra:
        _invalid("tensor %r in the capture file is not in capture.meta.entries" % extra[0][:80])
    missing = sorted(set(want) - set(header))
    if missing:
        _invalid("tensor %r of capture.meta.entries is missing from the capture file" % missing[0][:80])
    total = 0
    for name, (code, shape, begin, end) in header.items():
        e = want[name]
        if ST_DTYPES[code][0] != e["dtype"] or shape != e["shape"]:
            _invalid("tensor %r is %s %s in the capture file, %s %s in capture.meta"
                     % (name[:80], ST_DTYPES[code][0], shape, e["dtype"][:20], e["shape"]))
        total += end - begin
    if total > MAX_BYTES:
        _invalid("the capture holds %d bytes of tensors, over the cap of 1 GiB" % total)
    code, shape = header["rng/cpu"][:2]
    if code != "U8" or len(shape) != 1:
        _invalid("rng/cpu must be a 1-d uint8 tensor (torch.get_rng_state()), got %s %s"
                 % (ST_DTYPES[code][0], shape))
    for name in cfg["args"]:
        if cfg["capture"]["meta"]["requires_grad"][name] and header[name][0] not in FLOAT_CODES:
            _invalid("argument %r requires grad but is %s" % (name, ST_DTYPES[header[name][0]][0]))
    try:
        tensors, _ = decode_safetensors(buf)
    except SafetensorsError as e:
        _invalid("capture file %s: %s" % (fname, e))
    for name, t in tensors.items():
        if tensor_sha256(t) != want[name]["sha256"].lower():
            _invalid("tensor %r of the capture file does not have capture.meta's sha256" % name[:80])
    return tensors


def flatten_output(output, name, out):
    """As TraceRecorder._record_output names a module's output."""
    if isinstance(output, (tuple, list)):
        for i, o in enumerate(output):
            flatten_output(o, "%s.%d" % (name, i), out)
    elif hasattr(output, "dtype"):
        if len(out) >= MAX_OUTPUTS:
            _invalid("the module's output has more than %d tensors" % MAX_OUTPUTS)
        out.append((name, output.detach()))
    return out


def replay_forward(torch, cfg, cfg_dir, device):
    """Build the model as training does, load the captured state into the module, call it once on
    the captured arguments with the captured mode, grad mode and RNG state. [(name, tensor)]."""
    from .capture import find_submodule
    from .data import load_data
    from .train import autocast_factory, build_model
    from .workloads import WORKLOADS
    train = cfg["train"]
    tensors = read_capture(cfg, cfg_dir)
    autocast = autocast_factory(torch, train["knobs"]["amp"], device)
    data = load_data(train, cfg_dir)
    data["tensors"] = dict((k, v.to(device)) for k, v in data["tensors"].items())
    workload = WORKLOADS[train["workload"]]
    model, _ = build_model(torch, train, workload, data, device, {})
    try:
        module = find_submodule(model, cfg["module"])
    except ProbeError as e:
        _invalid(e.message)
    args = load_captured(torch, module, cfg, tensors, device)
    return call_captured(torch, module, cfg, tensors, args, autocast)


def load_captured(torch, module, cfg, tensors, device):
    """Check `module` against the capture (its type; its state_dict's keys, dtypes and shapes), load
    the captured state (strict) and mode into it; returns the captured positional arguments, laid out
    with their captured strides on `device`."""
    meta = cfg["capture"]["meta"]
    if type(module).__name__ != meta["type"]:
        _invalid("module %r is a %s, the capture's a %s"
                 % (cfg["module"][:80], type(module).__name__, meta["type"][:80]))
    own = module.state_dict()
    if sorted(own) != cfg["state"]:
        _invalid("the capture's state/ tensors (%s) are not the module's state_dict (%s)"
                 % (", ".join(cfg["state"])[:200], ", ".join(sorted(own))[:200]))
    state = {}
    for key in cfg["state"]:
        t = tensors["state/" + key]
        if t.dtype != own[key].dtype or list(t.shape) != list(own[key].shape):
            _invalid("state/%s is %s %s, the module's %s %s" % (key[:80], t.dtype, list(t.shape), own[key].dtype,
                                                                list(own[key].shape)))
        state[key] = t.to(device)
    module.load_state_dict(state, strict=True)
    module.train(meta["training"])
    strides = meta.get("strides", {})

    def make(name):
        t = tensors[name]
        if name in strides and list(t.stride()) != strides[name]:
            laid = torch.empty_strided(tuple(t.shape), tuple(strides[name]), dtype=t.dtype, device=device)
            laid.copy_(t)
            t = laid
        else:
            t = t.to(device).clone()
        if meta["requires_grad"][name]:
            t.requires_grad_(True)
        return t

    from .capture import rebuild_args
    return rebuild_args(meta["structure"], make)


def call_captured(torch, module, cfg, tensors, args, autocast):
    """One call of `module` on `args` with the captured grad mode and CPU RNG state; its output as
    the trace names it ([(name, tensor)]: fwd/<module>, fwd/<module>.i, ...)."""
    meta = cfg["capture"]["meta"]
    rng = tensors["rng/cpu"]
    prev_grad = torch.is_grad_enabled()
    torch.set_grad_enabled(meta["grad_enabled"])
    try:
        try:
            torch.set_rng_state(rng)
        except RuntimeError as e:
            _invalid("rng/cpu is not a CPU generator state of this torch: %s" % e)
        with autocast():
            output = module(*args)
        return flatten_output(output, "fwd/" + cfg["module"], [])
    finally:
        torch.set_grad_enabled(prev_grad)


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


def _result(torch, cfg, error, entries, seconds, extra=None):
    out = {"schema": RESULT_SCHEMA, "status": "error" if error else "ok", "error": error,
           "torch": getattr(torch, "__version__", None) if torch is not None else None,
           "step": cfg["step"] if cfg is not None else None, "seconds": seconds, "entries": entries}
    if cfg is not None and cfg.get("kind") in ("forward", "backward"):
        out.update(kind=cfg["kind"], module=cfg["module"], toggle=cfg["toggle"])
    if cfg is not None and cfg.get("kind") == "init":
        out.update(kind="init", toggle=cfg["toggle"])
    if error is None:
        out.update(extra or {})
    return out


def run_replay(config_path, out_dir):
    t_start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    cfg = torch = error = None
    entries = []
    stored = {}
    extra = {}
    try:
        cfg, cfg_dir = load_replay_config(config_path)
        from .knobs import apply_env, apply_knobs, resolve_device
        apply_env(cfg["knobs"]["env"])
        import torch
        apply_knobs(torch, cfg["knobs"])
        device = resolve_device(torch, cfg["knobs"]["device"])
        if cfg.get("kind") in ("forward", "init", "backward") and (cfg["toggle"] or {}).get("mkldnn") is not None:
            torch.backends.mkldnn.enabled = cfg["toggle"]["mkldnn"]
        from .onednn_log import recording
        with recording(torch) as onednn:  # the oneDNN primitives the replay ran
            if cfg.get("kind") == "forward":
                outputs = replay_forward(torch, cfg, cfg_dir, device)
            elif cfg.get("kind") == "backward":
                from .replay_backward import replay_backward
                outputs = replay_backward(torch, cfg, cfg_dir, device)
            elif cfg.get("kind") == "init":
                from .replay_init import replay_init
                outputs, extra["rng_before"] = replay_init(torch, cfg, cfg_dir, device)
            else:
                outputs = replay_update(torch, cfg, read_inputs(cfg, cfg_dir), device)
        if onednn.primitives is not None:
            extra["onednn"] = onednn.primitives
        from .safetensors import dtype_name, storable, tensor_sha256
        from .trace import count_nonfinite
        for name, t in outputs:
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
    write_json(os.path.join(out_dir, "replay.json"), _result(torch, cfg, error, entries, time.time() - t_start, extra))
    return EXIT_ERROR if error else EXIT_OK
