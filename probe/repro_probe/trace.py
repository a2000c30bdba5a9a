"""TraceRecorder: sha256 + non-finite count for every trace entry of every step, forward hooks on
leaf modules, and stored values (float16/bfloat16 widened) at the chosen steps, within a byte budget."""

import sys
import time

from .safetensors import dtype_name, storable, tensor_sha256

ENTRY_ORDER = ("eager replay (compiled runs, stored steps), forward outputs in hook order (eager runs), "
               "the model's output, loss, gradients in parameter order, optimizer state, parameters then "
               "buffers after the update")
STORE_BUDGET = 480 * 1024 * 1024  # the host rejects tensors.safetensors over 512 MiB


def count_nonfinite(torch, t):
    """NaN and ±Inf elements of a float tensor (0 for other dtypes). A finite sum proves there are
    none (one NaN or Inf makes the sum non-finite), which is far cheaper than counting; a non-finite
    sum (or an overflowing one) falls back to the exact count."""
    if not t.is_floating_point() or not t.numel():
        return 0
    if bool(torch.isfinite(t.sum())):
        return 0
    return int(t.numel() - int(torch.isfinite(t).sum()))


def leaf_modules(model):
    """(name, module) for every module without children, in registration order (an empty
    container such as `emb` with no categorical columns is not a module that runs)."""
    import torch
    containers = (torch.nn.ModuleList, torch.nn.ModuleDict, torch.nn.Sequential)
    return [(n, m) for n, m in model.named_modules()
            if n and not isinstance(m, containers) and not any(True for _ in m.children())]


class TraceRecorder(object):
    def __init__(self, torch, enabled, store_steps, budget=STORE_BUDGET):
        self.torch = torch
        self.enabled = enabled
        self.store_steps = store_steps  # set of ints; "init" is always stored
        self.budget = budget
        self.steps = []
        self.stored = {}
        self.stored_bytes = 0
        self.nonfinite_entries = 0
        self.active = False
        self.seconds = 0.0
        self._step = None
        self._pending = None
        self._pending_bytes = 0
        self._seen = None
        self._handles = []
        # "full": every leaf's output (forward hooks); "boundaries": a compiled run, whose fused
        # program has no per-layer outputs — only its output, loss, gradients and state
        self.capture = "full"

    def attach(self, leaves):
        """Register a forward hook on every (name, module) leaf; records only while a step is open."""
        if not self.enabled:
            return
        for name, module in leaves:
            self._handles.append(module.register_forward_hook(self._hook(name)))

    def _hook(self, name):
        def hook(module, inputs, output):
            if self.active:
                self._record_output("fwd/" + name, output)
        return hook

    def _record_output(self, name, output):
        """A tensor as `name`; a tuple/list element i as `name.i`, nested ones as `name.i.j` (an LSTM's
        (output, (h_n, c_n)) gives `.0`, `.1.0`, `.1.1`); anything else is skipped."""
        if isinstance(output, (tuple, list)):
            for i, o in enumerate(output):
                self._record_output("%s.%d" % (name, i), o)
        elif hasattr(output, "dtype"):
            self.record(name, output)

    def begin(self, step, epoch):
        if not self.enabled:
            return
        store = step == "init" or step in self.store_steps
        self._step = {"step": step, "epoch": epoch, "stored": store, "entries": []}
        self._pending = {} if store else None
        self._pending_bytes = 0
        self._seen = {}
        self.active = True

    def set_cell(self, cell):
        """Notebooks: the code cell (1-based, among all cells) the open step began in."""
        if self.enabled and self.active:
            self._step["cell"] = cell

    def record(self, name, tensor):
        if not (self.enabled and self.active):
            return
        t0 = time.time()
        torch = self.torch
        n = self._seen.get(name, 0)
        self._seen[name] = n + 1
        if n:  # a module called more than once in a step
            name = "%s#%d" % (name, n)
        t = tensor.detach()
        nonfinite = count_nonfinite(torch, t)
        if nonfinite:
            self.nonfinite_entries += 1
        self._step["entries"].append({"name": name, "dtype": dtype_name(t.dtype), "shape": list(t.shape),
                                      "sha256": tensor_sha256(t), "nonfinite": nonfinite})
        if self._pending is not None:
            widened = 4 if t.dtype in (torch.float16, torch.bfloat16) else t.element_size()
            if self.stored_bytes + self._pending_bytes + t.numel() * widened > self.budget:
                self._over_budget()  # before copying: a large model must not exhaust memory first
            else:
                v = storable(t).clone()
                self._pending["%s|%s" % (self._step["step"], name)] = v
                self._pending_bytes += v.numel() * v.element_size()
        self.seconds += time.time() - t0

    def _over_budget(self):
        sys.stderr.write("repro_probe: warning: step %s not stored (tensors budget of %d bytes reached)\n"
                         % (self._step["step"], self.budget))
        self._step["stored"] = False
        self._pending = None
        self._pending_bytes = 0

    def end(self):
        if not (self.enabled and self.active):
            return
        self.active = False
        if self._pending is not None:
            self.stored.update(self._pending)
            self.stored_bytes += self._pending_bytes
        self.steps.append(self._step)
        self._step = self._pending = self._seen = None

    def discard(self):
        """Drop the open step (script mode: a trailing step that never reached an optimizer step);
        returns how many entries it had."""
        if not (self.enabled and self.active):
            return 0
        n = len(self._step["entries"])
        self.active = False
        self._step = self._pending = self._seen = None
        return n

    @property
    def storing(self):
        """The open step stores values (a stored step, within the budget so far)."""
        return self.enabled and self.active and self._pending is not None

    def record_output(self, name, output):
        """A module's (or the model's) output under `name`, tuples and lists element by element."""
        if self.enabled and self.active:
            self._record_output(name, output)

    def record_optimizer(self, optimizer, model):
        """opt/<param>.<state> for every tensor of the optimizer's state (Adam's exp_avg and
        exp_avg_sq, SGD's momentum_buffer), in named_parameters() order."""
        if not (self.enabled and self.active):
            return
        state = optimizer.state
        for name, p in model.named_parameters():
            for key, value in sorted(state.get(p, {}).items()):
                if key != "step" and hasattr(value, "dtype"):  # the step counter is no numerics
                    self.record("opt/%s.%s" % (name, key), value)

    def record_state(self, model):
        """param/<name> then buffer/<name>, in named_parameters() / named_buffers() order."""
        for name, p in model.named_parameters():
            self.record("param/" + name, p)
        for name, b in model.named_buffers():
            self.record("buffer/" + name, b)

    def trace_json(self):
        out = {"schema": "repro.trace/1", "entry_order": ENTRY_ORDER, "steps": self.steps}
        if self.capture != "full":
            out["capture"] = self.capture
        return out
