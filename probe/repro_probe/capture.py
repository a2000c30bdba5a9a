"""Capture of one module's inputs (train mode, config trace.capture = {"step": s, "module": path}): at the
first call of that submodule in step s, a forward pre-hook copies (detach().clone(), reading only) its
positional arguments, its state_dict, module.training, torch.is_grad_enabled() and the CPU RNG state;
they go to capture.safetensors (every tensor in its own dtype, exact bytes: no widening) and
capture.json (schema repro.capture/1) in the run's out dir, and training stops after step s.
`replay` kind forward (replay.py) rebuilds the call from them.

Names: arg/<i> for positional argument i, arg/<i>.<j> for element j of a tuple/list argument (two
levels at most), state/<key> for the module's state_dict, rng/cpu for torch.get_rng_state().
structure mirrors the arguments: "T" a tensor, null None, a list a tuple/list.

Backward (a drift whose first divergence is a gradient). Gradients are traced in parameter order, the
reverse of the order backward computes them, so two more forms of trace.capture:

* {"step": s, "module": path, "backward": true}: the module capture above PLUS a full backward hook
  (register_full_backward_hook) on that module, armed for its first call in step s only (a forward
  hook removes it after that call, so grad_output belongs to the call whose arguments were copied).
  At its firing it copies (detach().clone()) grad_output, the gradient of each top-level element of
  the module's output: gout/<i> in capture.safetensors (own dtype, exact bytes). capture.json gains
  "backward": true, "grad_output": ["T" | null per top-level output element] (null: not a tensor, or
  no gradient reached it), "grad_output_strides": {"gout/<i>": strides of the copy}, "grad_input":
  [sha256 | null per positional argument] (the gradient w.r.t. each argument computed inside the
  module, as safetensors.tensor_sha256 hashes it; null where the argument is no tensor or has none),
  "loss_scale": the GradScaler's scale at that step (fp16 on CUDA: every gradient then is of the
  scaled loss) or null. `replay` kind backward (replay_backward.py) reruns that call's backward.
  capture_unsupported when the hook did not fire in step s (no gradient reached the module's
  output), or when a tensor nested in a tuple of the output (an LSTM's (h_n, c_n)) received a
  gradient: a full backward hook sees the gradients of the top-level output tensors only.
  "backward": false is the plain module capture.
* {"step": s, "backward": "order"} (no module): a full backward hook on every leaf module (as the
  trace's fwd/ entries name them) during step s records, in FIRING order (the order backward runs
  them), one object per firing: {"module": path, "type": class name, "grad_output": [sha256 | null],
  "grad_input": [sha256 | null]}. capture.json: {"schema", "step", "backward": "order",
  "loss_scale", "backward_order": [...], "entries": []}; no capture.safetensors is written (no
  tensors are kept). A module whose inputs need no gradient (the first conv on the images) fires
  when its grad_output is ready, before its own backward runs; a module called n times fires n times.

The hooks only read (hash or copy): the run's trace up to step s is the one an un-hooked run writes,
bit for bit (probe/tests/test_backward_replay.py). A full backward hook wraps the module's inputs and
outputs in an identity autograd function, so a model that modifies a hooked module's output in place
fails; that failure, or a torch without full backward hooks, is ProbeError capture_unsupported."""

import os

from .errors import ProbeError

SCHEMA = "repro.capture/1"
MAX_ARG_DEPTH = 2


def find_submodule(model, path):
    """model.get_submodule(path) (torch >= 1.9), else a walk of named_modules; invalid_config if
    `path` names no submodule of the model."""
    for name, module in model.named_modules():
        if name and name == path:
            return module
    raise ProbeError("invalid_config", "trace.capture.module %r is not a submodule of the %s model (%s)"
                     % (path[:80], type(model).__name__,
                        ", ".join(n for n, _ in list(model.named_modules())[1:40] if n)[:600]))


def flatten_args(torch, args, prefix="arg", depth=1):
    """(structure, [(name, tensor)]) of a tuple of positional arguments."""
    structure, tensors = [], []
    for i, a in enumerate(args):
        name = "%s/%d" % (prefix, i) if depth == 1 else "%s.%d" % (prefix, i)
        if a is None:
            structure.append(None)
        elif isinstance(a, torch.Tensor):
            structure.append("T")
            tensors.append((name, a))
        elif isinstance(a, (tuple, list)) and depth < MAX_ARG_DEPTH:
            sub, subt = flatten_args(torch, a, name, depth + 1)
            structure.append(sub)
            tensors.extend(subt)
        else:
            raise ProbeError("capture_unsupported", "argument %s of the captured module is a %s: only tensors, "
                             "None and tuples/lists of them (%d levels) are captured"
                             % (name, type(a).__name__, MAX_ARG_DEPTH))
    return structure, tensors


def structure_names(structure, prefix="arg", depth=1):
    """The tensor names a structure holds, in order; ValueError if it is malformed."""
    if not isinstance(structure, list):
        raise ValueError("structure must be a list (the positional arguments)")
    if len(structure) > 10000:
        raise ValueError("structure has more than 10000 elements")
    names = []
    for i, s in enumerate(structure):
        name = "%s/%d" % (prefix, i) if depth == 1 else "%s.%d" % (prefix, i)
        if s == "T":
            names.append(name)
        elif s is None:
            continue
        elif isinstance(s, list) and depth < MAX_ARG_DEPTH:
            names.extend(structure_names(s, name, depth + 1))
        else:
            raise ValueError("structure element %s is %r: \"T\", null or a list (%d levels) expected"
                             % (name, s if not isinstance(s, list) else "a list too deep", MAX_ARG_DEPTH))
    return names


def rebuild_args(structure, make, prefix="arg", depth=1):
    """The positional arguments from a structure; make(name) gives each tensor."""
    out = []
    for i, s in enumerate(structure):
        name = "%s/%d" % (prefix, i) if depth == 1 else "%s.%d" % (prefix, i)
        if s == "T":
            out.append(make(name))
        elif s is None:
            out.append(None)
        else:
            out.append(rebuild_args(s, make, name, depth + 1))
    return tuple(out)


def is_dense_strides(shape, strides):
    """A dense, non-overlapping layout of `shape` (a permutation of a contiguous one)."""
    if len(strides) != len(shape) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                             for s in strides):
        return False
    if any(d == 0 for d in shape):
        return True
    expected = 1
    for size, stride in sorted(((d, s) for d, s in zip(shape, strides) if d > 1), key=lambda p: p[1]):
        if stride != expected:
            return False
        expected *= size
    return True


class Capture(object):
    """The pre-hook and what it copied; write() puts the files in the out dir."""

    def __init__(self, torch, model, step, path, module=None, backward=False):
        """`module`: the module itself (script mode, where the tracer finds it by its path at its first
        call in the step and calls _hook), else the submodule `path` of `model`. `backward`: also copy
        the grad_output of that first call (a full backward hook; see the module docstring)."""
        self.torch, self.step, self.path = torch, step, path
        self.module = module if module is not None else find_submodule(model, path)
        self.handle = None
        self.record = None
        self.backward = bool(backward)
        self.grad = None  # what the full backward hook copied
        self.loss_scale = None  # Loop.step sets it when a GradScaler scales the loss
        self._bw_handle = self._post_handle = None
        self._first_done = False
        self._nested_grad = None  # the first tensor nested in the output that received a gradient

    def arm(self):
        self.handle = self.module.register_forward_pre_hook(self._hook)
        if self.backward and not self._first_done:
            try:
                self._bw_handle = self.module.register_full_backward_hook(self._bw_hook)
            except (AttributeError, RuntimeError) as e:
                self.disarm()
                raise unsupported("cannot register a full backward hook on %s (%s)"
                                  % (self.path[:80], type(self.module).__name__), e)
            self._post_handle = self.module.register_forward_hook(self._post_hook)

    def disarm(self):
        if self.handle is not None:
            self.handle.remove()
            self.handle = None
        self._remove_backward_hook()
        if self._post_handle is not None:
            self._post_handle.remove()
            self._post_handle = None

    def _remove_backward_hook(self):
        if self._bw_handle is not None:
            self._bw_handle.remove()
            self._bw_handle = None

    def after_forward(self):
        """The step's forward pass is done: the pre-hook goes; the backward hook stays for backward."""
        if self.handle is not None:
            self.handle.remove()
            self.handle = None
        if not self.backward:
            self.disarm()

    def after_backward(self):
        """The step's backward is done: every hook goes; capture_unsupported if the backward hook
        could not see what the replay needs."""
        self.disarm()
        if not self.backward or self.record is None:
            return
        if self._nested_grad is not None:
            raise ProbeError("capture_unsupported", "%s (%s): its output element %s, nested in a tuple, received "
                             "a gradient, which a full backward hook does not see (top-level output tensors only)"
                             % (self.path[:80], self.record["type"], self._nested_grad))
        if self.grad is None:
            raise ProbeError("capture_unsupported", "the full backward hook of %s (%s) did not fire in step %d: "
                             "no gradient reached the output of its first call"
                             % (self.path[:80], self.record["type"], self.step))

    def _post_hook(self, module, args, output):
        """After the first call: the backward hook is removed (the call already holds it), so only that
        call's backward fires it; tensors nested in the output get a hook that notes a gradient."""
        if self._first_done:
            return None
        self._first_done = True
        self._remove_backward_hook()  # this call's BackwardHook already holds it; later calls do not get it
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        for i, o in enumerate(outputs):
            if isinstance(o, (tuple, list)):
                for name, t in _nested_tensors(self.torch, o, str(i)):
                    if t.requires_grad:
                        t.register_hook(self._nested_hook(name))
        return None

    def _nested_hook(self, name):
        def hook(grad):
            if grad is not None and self._nested_grad is None:
                self._nested_grad = name
            return None
        return hook

    def _bw_hook(self, module, grad_input, grad_output):
        if self.grad is not None:
            return None
        torch = self.torch
        with torch.no_grad():
            structure, tensors, strides = [], [], {}
            for i, g in enumerate(grad_output):
                if g is None:
                    structure.append(None)
                    continue
                c = g.detach().clone()
                structure.append("T")
                tensors.append(("gout/%d" % i, c))
                strides["gout/%d" % i] = list(c.stride())
            gin = [grad_digest(g) for g in grad_input]
        self.grad = {"grad_output": structure, "strides": strides, "grad_input": gin, "tensors": tensors}
        return None

    def _hook(self, module, args):
        if self.record is not None:  # the first call in the step only
            return None
        torch = self.torch
        with torch.no_grad():
            structure, arg_tensors = flatten_args(torch, args)
            tensors = [(n, t.detach().clone()) for n, t in arg_tensors]
            requires_grad = dict((n, bool(t.requires_grad)) for n, t in arg_tensors)
            strides = dict((n, list(t.stride())) for n, t in tensors)
            state = module.state_dict()
            tensors += [("state/" + k, state[k].detach().clone()) for k in sorted(state)]
            tensors.append(("rng/cpu", torch.get_rng_state().clone()))
        self.record = {"type": type(module).__name__, "training": bool(module.training),
                       "grad_enabled": bool(torch.is_grad_enabled()), "structure": structure,
                       "requires_grad": requires_grad, "strides": strides, "tensors": tensors}
        return None

    @property
    def captured(self):
        return self.record is not None

    def write(self, out_dir):
        """capture.safetensors and capture.json; returns capture.json's object (None if the module
        never ran in the step: nothing is written)."""
        from .safetensors import dtype_name, tensor_sha256
        from .trace import count_nonfinite
        if self.record is None:
            return None
        rec = self.record
        tensors = rec["tensors"] + (self.grad["tensors"] if self.backward and self.grad is not None else [])
        entries = []
        for name, t in tensors:
            entries.append({"name": name, "dtype": dtype_name(t.dtype), "shape": list(t.shape),
                            "sha256": tensor_sha256(t), "nonfinite": count_nonfinite(self.torch, t)})
        write_exact(os.path.join(out_dir, "capture.safetensors"), tensors)
        meta = {"schema": SCHEMA, "step": self.step, "module": self.path, "type": rec["type"],
                "training": rec["training"], "grad_enabled": rec["grad_enabled"],
                "structure": rec["structure"], "requires_grad": rec["requires_grad"],
                "strides": rec["strides"], "entries": entries}
        if self.backward and self.grad is not None:
            meta.update(backward=True, grad_output=self.grad["grad_output"],
                        grad_output_strides=self.grad["strides"], grad_input=self.grad["grad_input"],
                        loss_scale=self.loss_scale)
        from .jsonio import write_json
        write_json(os.path.join(out_dir, "capture.json"), meta)
        return meta


def unsupported(what, error):
    """ProbeError capture_unsupported: `what`, then the error's first line."""
    from .jsonio import one_line
    return ProbeError("capture_unsupported", "%s: %s" % (what, one_line(str(error).split("\n")[0])[:300]))


def hook_failure(error):
    """The ProbeError for an exception a full backward hook caused (a hooked module's output modified
    in place: torch refuses the view of its identity BackwardHookFunction), else None."""
    if isinstance(error, RuntimeError) and "BackwardHookFunction" in str(error):
        return unsupported("trace.capture.backward: a full backward hook cannot observe this model (a hooked "
                           "module's output is modified in place)", error)
    return None


def _nested_tensors(torch, value, name):
    """(name, tensor) for every tensor in a (nested) tuple/list, names i.j.k as the trace's."""
    out = []
    for j, v in enumerate(value):
        if isinstance(v, torch.Tensor):
            out.append(("%s.%d" % (name, j), v))
        elif isinstance(v, (tuple, list)):
            out.extend(_nested_tensors(torch, v, "%s.%d" % (name, j)))
    return out


class OrderCapture(object):
    """trace.capture = {"step": s, "backward": "order"}: a full backward hook on every leaf module
    during step s; each firing appends {module, type, grad_output, grad_input} (sha256 | null per
    tensor) to `calls`, in firing order. Nothing is copied: the hooks hash and return None."""

    backward = "order"

    def __init__(self, torch, leaves, step):
        self.torch, self.leaves, self.step = torch, list(leaves), step
        self.calls = None  # a list once armed (step s ran)
        self.loss_scale = None
        self.handles = []

    def arm(self):
        if self.calls is None:
            self.calls = []
        for name, module in self.leaves:
            try:
                self.handles.append(module.register_full_backward_hook(self._hook(name)))
            except (AttributeError, RuntimeError) as e:
                self.disarm()
                raise unsupported("trace.capture.backward order: cannot register a full backward hook on %s (%s)"
                                  % (name[:80], type(module).__name__), e)

    def _hook(self, name):
        from .safetensors import tensor_sha256

        def hook(module, grad_input, grad_output):
            self.calls.append({"module": name, "type": type(module).__name__,
                               "grad_output": [tensor_sha256(g) if g is not None else None for g in grad_output],
                               "grad_input": [grad_digest(g) for g in grad_input]})
            return None
        return hook

    def disarm(self):
        while self.handles:
            self.handles.pop().remove()

    def after_forward(self):
        pass  # the hooks fire in backward

    def after_backward(self):
        self.disarm()

    @property
    def captured(self):
        return self.calls is not None

    def write(self, out_dir):
        """capture.json only (no tensors kept: no capture.safetensors); None if step s never ran."""
        if self.calls is None:
            return None
        meta = {"schema": SCHEMA, "step": self.step, "backward": "order", "loss_scale": self.loss_scale,
                "backward_order": self.calls, "entries": []}
        from .jsonio import write_json
        write_json(os.path.join(out_dir, "capture.json"), meta)
        return meta


LOSS = "(loss)"  # the training loss (the workload's criterion), as a module path: no real path has "("


def grad_digest(g):
    """sha256 of a gradient; None for none, and for an integer tensor's (torch 1.13's full backward
    hook hands a zero int64 "gradient" for a loss's class-index target, which no gradient can reach)."""
    from .safetensors import tensor_sha256
    if g is None or not (g.is_floating_point() or g.is_complex()):
        return None
    return tensor_sha256(g)


def make_capture(torch, model, leaves, spec, criterion=None):
    """The capture trace.capture asks for (config._validate_capture checked it): OrderCapture for
    {"backward": "order"}, else Capture of spec["module"] (invalid_config if no such submodule).
    Returns (capture, run.json's "capture" object with captured false)."""
    backward = spec.get("backward", False)
    if criterion is not None and hasattr(criterion, "register_full_backward_hook"):
        leaves = list(leaves) + [(LOSS, criterion)]  # it fires first in backward
    if backward == "order":
        return OrderCapture(torch, leaves, spec["step"]), {"step": spec["step"], "backward": "order",
                                                           "captured": False}
    summary = {"step": spec["step"], "module": spec["module"], "captured": False}
    if backward:
        summary["backward"] = True
    module = criterion if spec["module"] == LOSS and criterion is not None else None
    return Capture(torch, model, spec["step"], spec["module"], module=module, backward=backward), summary


def write_exact(path, tensors):
    """safetensors with every tensor in its own dtype (float16/bfloat16 kept: no widening), as
    safetensors.write_safetensors writes it. ProbeError capture_unsupported for a dtype
    safetensors.ST_DTYPES cannot name."""
    from .safetensors import ST_DTYPES, SafetensorsError, dtype_name, write_safetensors
    for name, t in tensors:
        if dtype_name(t.dtype) not in set(v[0] for v in ST_DTYPES.values()):
            raise ProbeError("capture_unsupported", "captured tensor %s has dtype %s, which capture.safetensors "
                             "cannot hold (%s)" % (name, dtype_name(t.dtype),
                                                   ", ".join(v[0] for v in ST_DTYPES.values())))
    try:
        write_safetensors(path, dict(tensors), widen=False)
    except SafetensorsError as e:
        raise ProbeError("capture_unsupported", "capture.safetensors: %s" % e)
