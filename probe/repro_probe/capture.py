"""Capture of one module's inputs (train mode, config trace.capture = {"step": s, "module": path}): at the
first call of that submodule in step s, a forward pre-hook copies (detach().clone(), reading only) its
positional arguments, its state_dict, module.training, torch.is_grad_enabled() and the CPU RNG state;
they go to capture.safetensors (every tensor in its own dtype, exact bytes: no widening) and
capture.json (schema repro.capture/1) in the run's out dir, and training stops after step s.
`replay` kind forward (replay.py) rebuilds the call from them.

Names: arg/<i> for positional argument i, arg/<i>.<j> for element j of a tuple/list argument (two
levels at most), state/<key> for the module's state_dict, rng/cpu for torch.get_rng_state().
structure mirrors the arguments: "T" a tensor, null None, a list a tuple/list."""

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

    def __init__(self, torch, model, step, path):
        self.torch, self.step, self.path = torch, step, path
        self.module = find_submodule(model, path)
        self.handle = None
        self.record = None

    def arm(self):
        self.handle = self.module.register_forward_pre_hook(self._hook)

    def disarm(self):
        if self.handle is not None:
            self.handle.remove()
            self.handle = None

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
        entries = []
        for name, t in rec["tensors"]:
            entries.append({"name": name, "dtype": dtype_name(t.dtype), "shape": list(t.shape),
                            "sha256": tensor_sha256(t), "nonfinite": count_nonfinite(self.torch, t)})
        write_exact(os.path.join(out_dir, "capture.safetensors"), rec["tensors"])
        meta = {"schema": SCHEMA, "step": self.step, "module": self.path, "type": rec["type"],
                "training": rec["training"], "grad_enabled": rec["grad_enabled"],
                "structure": rec["structure"], "requires_grad": rec["requires_grad"],
                "strides": rec["strides"], "entries": entries}
        from .jsonio import write_json
        write_json(os.path.join(out_dir, "capture.json"), meta)
        return meta


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
