"""Replay kind backward: ONE call of a module, forward then backward, on the inputs and the output
gradient captured in train mode (capture.py, trace.capture = {"step": s, "module": path, "backward":
true}). When two targets' traces first differ at a parameter's gradient while the module's inputs
and grad_output are the same bytes, different outputs here put the drift in that module's backward.

Config (schema repro.replay/1), as kind forward's: {"kind": "backward", "step": s, "module": path,
"train": the run's train config (its data file next to the config, hash-verified), "capture": {"file":
capture.safetensors next to the config, "sha256": its sha256, "meta": capture.json's object},
"toggle": null | {"mkldnn": false}}. The capture must be a backward one: meta.backward true,
meta.grad_enabled true, meta.grad_output (["T" | null] per top-level output element, one "T" at
least) naming gout/<i> tensors the file holds (floating point), meta.grad_output_strides
({"gout/<i>": dense strides}, optional), meta.grad_input ([sha256 | null], informational) and
meta.loss_scale (null or a number, informational).

The model is built as training builds it, the module gets the captured state_dict, mode, grad mode
and CPU RNG state and is called on the captured arguments (those that required grad require it
again: leaves of the replay's graph), exactly as kind forward (replay.load_captured and
call_captured); then torch.autograd.backward(the output elements grad_output names, grad_tensors=
the gout/<i> tensors, laid out with their captured strides, on the device).

Output (replay.safetensors and replay.json's entries, values widened as the trace stores them):
grad/<module>.<name> for each parameter of the module with a gradient, in module.named_parameters()
order (the trace's grad/<full dotted parameter path>), then gin/<module>/<i> (gin/<module>/<i>.<j>
for an element of a tuple argument) for each captured argument tensor that requires grad and got
one: compare them with meta.grad_input[i], the gradient the hooked training run saw.

Fidelity limits: with a GradScaler (fp16 on CUDA, meta.loss_scale not null) the gradients are of the
scaled loss while the trace records unscaled ones; a module called more than once in a step, or whose
parameters are used outside it, has trace gradients summed over every use, the replay's over its
first call only."""

import sys

from .errors import ProbeError
from .replay import (HEX64, MAX_OUTPUTS, MAX_STEP, _check_name, _check_toggle, _check_train, _invalid, _is_int,
                     call_captured, check_capture_section, load_captured, read_capture)

KEYS = {"schema", "kind", "step", "module", "train", "capture", "toggle"}
MAX_GRAD_INPUT = 10000


def load_backward_config(cfg):
    """The validated config (ProbeError invalid_replay): kind forward's, plus "gout" (the gout/<i>
    names, in output order)."""
    from .capture import is_dense_strides
    for key in sorted(set(cfg) - KEYS):
        sys.stderr.write("repro_probe: warning: unknown replay config key %r ignored\n" % key[:80])
    step = cfg.get("step")
    if not _is_int(step) or not 0 <= step <= MAX_STEP:
        _invalid("step must be an integer >= 0, got %r" % (step,))
    module = cfg.get("module")
    _check_name(module, "module")
    train = _check_train(cfg.get("train"))
    cap = cfg.get("capture")
    meta = cap.get("meta") if isinstance(cap, dict) else None
    if isinstance(meta, dict) and meta.get("backward") is not True:
        _invalid("capture.meta.backward must be true: a backward replay needs a capture made with "
                 "trace.capture.backward true (its grad_output)")
    out = check_capture_section(cap, step, module)  # the forward part: structure, state, entries
    if meta["grad_enabled"] is not True:
        _invalid("capture.meta.grad_enabled is false: the captured call recorded no graph to run backward on")
    structure = meta.get("grad_output")
    if (not isinstance(structure, list) or not structure or len(structure) > MAX_OUTPUTS
            or not all(s == "T" or s is None for s in structure)):
        _invalid("capture.meta.grad_output must be a list of at most %d elements, each \"T\" or null" % MAX_OUTPUTS)
    gout = ["gout/%d" % i for i, s in enumerate(structure) if s == "T"]
    if not gout:
        _invalid("capture.meta.grad_output names no tensor: no gradient reached the module's output")
    held = sorted(n for n in out["entries"] if n.startswith("gout/"))
    if held != sorted(gout):
        _invalid("capture.meta.entries hold gout tensors %s, capture.meta.grad_output names %s"
                 % (", ".join(held)[:200] or "none", ", ".join(gout)[:200]))
    strides = meta.get("grad_output_strides", {})
    if not isinstance(strides, dict) or not set(strides) <= set(gout):
        _invalid("capture.meta.grad_output_strides must map gout tensors of grad_output to strides")
    for name, st in strides.items():
        if not isinstance(st, list) or not is_dense_strides(out["entries"][name]["shape"], st):
            _invalid("capture.meta.grad_output_strides[%r] is not a dense layout of shape %s"
                     % (name, out["entries"][name]["shape"]))
    gin = meta.get("grad_input")
    if not isinstance(gin, list) or len(gin) > MAX_GRAD_INPUT or not all(
            g is None or (isinstance(g, str) and HEX64.match(g)) for g in gin):
        _invalid("capture.meta.grad_input must be a list of 64-hex sha256 or null")
    scale = meta.get("loss_scale")
    if scale is not None and (not isinstance(scale, (int, float)) or isinstance(scale, bool)):
        _invalid("capture.meta.loss_scale must be null or a number")
    out.update(kind="backward", step=step, module=module, train=train, knobs=train["knobs"],
               toggle=_check_toggle(cfg.get("toggle")), gout=gout)
    return out


def _build_module(torch, cfg, cfg_dir, device):
    """The model built as training builds it (seeded, on the device) and its submodule cfg["module"]."""
    from .capture import find_submodule
    from .data import load_data
    from .train import build_model
    from .workloads import WORKLOADS
    train = cfg["train"]
    data = load_data(train, cfg_dir)
    data["tensors"] = dict((k, v.to(device)) for k, v in data["tensors"].items())
    model, _ = build_model(torch, train, WORKLOADS[train["workload"]], data, device, {})
    from .capture import LOSS
    if cfg["module"] == LOSS:
        return WORKLOADS[train["workload"]].criterion(torch)  # the training loss, as train.Loop makes it
    try:
        return find_submodule(model, cfg["module"])
    except ProbeError as e:
        _invalid(e.message)


def replay_backward(torch, cfg, cfg_dir, device):
    """[(name, tensor)]: grad/<module>.<param> then gin/<module>/<i> (see the module docstring)."""
    from .capture import flatten_args
    from .train import autocast_factory
    meta = cfg["capture"]["meta"]
    tensors = read_capture(cfg, cfg_dir)
    autocast = autocast_factory(torch, cfg["train"]["knobs"]["amp"], device)
    module = _build_module(torch, cfg, cfg_dir, device)
    args = load_captured(torch, module, cfg, tensors, device)
    grabbed = []  # the output with its graph (call_captured returns it detached, as the trace names it)
    handle = module.register_forward_hook(lambda m, a, output: grabbed.append(output))
    try:
        call_captured(torch, module, cfg, tensors, args, autocast)
    finally:
        handle.remove()
    output = grabbed[0]
    outputs = tuple(output) if isinstance(output, (tuple, list)) else (output,)
    structure = meta["grad_output"]
    if len(outputs) != len(structure):
        _invalid("the module's output has %d top-level elements, capture.meta.grad_output %d"
                 % (len(outputs), len(structure)))
    strides = meta.get("grad_output_strides", {})
    roots, grads = [], []
    for name in cfg["gout"]:
        i = int(name[len("gout/"):])
        o, g = outputs[i], tensors[name]
        if not isinstance(o, torch.Tensor) or not o.requires_grad:
            _invalid("output element %d of the module is not a tensor that requires grad, yet %s holds its "
                     "gradient" % (i, name))
        if not g.is_floating_point() or g.dtype != o.dtype or list(g.shape) != list(o.shape):
            _invalid("%s is %s %s, the module's output element %d %s %s"
                     % (name, g.dtype, list(g.shape), i, o.dtype, list(o.shape)))
        if name in strides and list(g.stride()) != strides[name]:
            laid = torch.empty_strided(tuple(g.shape), tuple(strides[name]), dtype=g.dtype, device=device)
            laid.copy_(g)
            g = laid
        else:
            g = g.to(device).clone()
        roots.append(o)
        grads.append(g)
    torch.autograd.backward(roots, grad_tensors=grads)  # outside autocast, as training's loss.backward()
    out = [("grad/%s.%s" % (cfg["module"], n), p.grad.detach()) for n, p in module.named_parameters()
           if p.grad is not None]
    _, arg_tensors = flatten_args(torch, args)
    out += [("gin/%s/%s" % (cfg["module"], n[len("arg/"):]), t.grad.detach()) for n, t in arg_tensors
            if t.requires_grad and t.grad is not None]
    return out
