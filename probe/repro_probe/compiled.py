"""torch.compile under the probe: compile without hooks that would break the graph, name what
the compiler fused (from inductor's generated code), turn a target that cannot compile into one
clear error, and replay the model eagerly on the compiled run's inputs at stored steps.

The trace of a compiled run holds only what the compiled program computed at the boundaries it
keeps (model output, loss, gradients, optimizer state, parameters, buffers); per-layer outputs
do not exist in a fused program, so eager replays are recorded apart as `replay/...`."""

import glob
import os
import re

from .errors import ProbeError

INDUCTOR_DIR = "inductor"  # inside the probe's work area (exec allowed there, bounded)
MAX_REGIONS = 200

# What a target needs for inductor's CPU backend, by what its failure says (Debian packages).
_MISSING = (
    (re.compile(r"InvalidCxxCompiler|No working C\+\+ compiler|cannot find.*c\+\+|g\+\+: not found", re.I),
     "no working C++ compiler (Debian: apt-get install g++)"),
    (re.compile(r"No module named 'setuptools"),
     "Python's setuptools is missing (Debian: apt-get install python3-setuptools)"),
    (re.compile(r"Python\.h: No such file", re.I),
     "Python's headers are missing (Debian: apt-get install python3-dev)"),
    (re.compile(r"(ATen|torch|c10)/[\w/]+\.h: No such file", re.I),
     "the ATen/torch C++ headers are missing (Debian: apt-get install libtorch-dev)"),
    (re.compile(r"failed to map segment from shared object|Permission denied.*\.so", re.I),
     "the compiled kernels cannot be loaded: the scratch directory does not allow executing files"),
)
PACKAGES = "g++ python3-dev python3-setuptools libtorch-dev"


def prepare(torch, work_dir):
    """Point inductor's cache at a fresh directory in the work area (nothing reused from earlier
    runs, so the generated code is this run's); returns it."""
    if not hasattr(torch, "compile"):
        raise ProbeError("unsupported_knob", "compile=true needs torch >= 2.0 (have %s)" % torch.__version__)
    cache = os.path.join(work_dir, INDUCTOR_DIR)
    os.makedirs(cache, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(cache, "triton"))
    return cache


def compile_failure(exc, torch_version):
    """A ProbeError for an exception raised while compiling, or None when it is something else."""
    text = "%s: %s" % (type(exc).__name__, exc)
    for pattern, what in _MISSING:
        if pattern.search(text):
            # the message names what is missing; repro's hint names all of PACKAGES
            return ProbeError("compile_unavailable", "torch.compile cannot build kernels in this target (torch %s): "
                              "%s" % (torch_version, what))
    if "BackendCompilerFailed" in type(exc).__name__ or "inductor" in text.lower():
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ProbeError("compile_failed", "torch.compile failed (torch %s): %s" % (torch_version, first[:300]))
    return None


_OPS_OF_TYPE = (
    ("Linear", ("addmm", "mm", "bmm", "linear")),
    ("Conv", ("convolution",)),
    ("BatchNorm", ("batch_norm",)),
    ("LayerNorm", ("layer_norm",)),
    ("GELU", ("gelu",)),
    ("ReLU", ("relu", "threshold")),
    ("Dropout", ("dropout",)),
    ("Embedding", ("embedding",)),
    ("MaxPool", ("max_pool",)),
    ("AdaptiveAvgPool", ("mean", "avg_pool")),
    ("LSTM", ("lstm",)),
)


def _type_of(op):
    """The module type (prefix) an ATen op comes from, or None (elementwise glue)."""
    for prefix, names in _OPS_OF_TYPE:
        if any(op.startswith(n) or n in op for n in names):
            return prefix
    return None


class _ModuleQueues(object):
    """Module paths per type in execution order (backward kernels run in reverse): each fused
    kernel takes the next unclaimed module of each type its ops come from. Inferred from the
    kernel's name, not read from the compiler: a best guess the trace labels as such."""

    def __init__(self, module_types, reverse):
        paths = list(module_types.items())
        if reverse:
            paths.reverse()
        self.queues = {}
        for path, type_name in paths:
            for prefix, _ in _OPS_OF_TYPE:
                if type_name.startswith(prefix):
                    self.queues.setdefault(prefix, []).append(path)
                    break

    def take(self, ops):
        out = []
        for op in ops:
            queue = self.queues.get(_type_of(op) or "", [])
            if queue and queue[0] not in out:
                out.append(queue.pop(0))
        return out


def fused_regions(cache_dir, module_types):
    """Every kernel inductor generated for this run: its name, the ATen ops it fuses (from the name),
    the pass (forward or backward) and the module paths of types that compute those ops."""
    regions = []
    for path in sorted(glob.glob(os.path.join(cache_dir, "**", "*.py"), recursive=True)):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                src = f.read()
        except OSError:
            continue
        if "def call(" not in src:
            continue
        body = src[src.index("def call("):]
        phase = "backward" if "tangents_" in body else "forward"
        queues = _ModuleQueues(module_types, reverse=phase == "backward")
        seen = set()
        kernel_call = r"^\s+((?:cpp|triton)_(?:poi|red|per|tem)?_?fused_(\w+?)_\d+)\("
        for m in re.finditer(kernel_call, body, re.M):
            kernel = m.group(1)
            if kernel in seen:
                continue
            seen.add(kernel)
            ops = [o for o in m.group(2).split("_") if o]
            ops = _join_op_words(ops)
            regions.append({"kernel": kernel, "pass": phase, "ops": ops, "modules": queues.take(ops)})
            if len(regions) >= MAX_REGIONS:
                return regions
    return regions


_KNOWN_OPS = (
    "native_batch_norm_legit_functional", "native_batch_norm_legit_no_training", "native_layer_norm_backward",
    "native_layer_norm", "native_batch_norm_backward", "native_batch_norm", "gelu_backward", "threshold_backward",
    "convolution_backward", "max_pool2d_with_indices_backward", "max_pool2d_with_indices", "native_dropout_backward",
    "native_dropout", "embedding_dense_backward", "_log_softmax_backward_data", "_log_softmax", "nll_loss_backward",
    "nll_loss_forward", "mse_loss_backward", "mse_loss", "batch_norm", "layer_norm", "log_softmax",
    "scaled_dot_product", "addmm", "relu", "gelu", "sum", "mean", "mul", "add", "div", "sub", "exp", "sqrt", "rsqrt",
    "tanh", "sigmoid", "clone", "cat", "copy", "embedding", "lerp", "pow", "var", "where", "max", "amax", "softmax",
    "view", "permute", "convolution")


def _join_op_words(words):
    """Kernel names join op names with '_' (cpp_fused_gelu_native_layer_norm_0): split them back
    into op names, longest known name first, so native_layer_norm is one op."""
    text = "_".join(words)
    ops = []
    while text:
        for op in sorted(_KNOWN_OPS, key=len, reverse=True):
            if text == op or text.startswith(op + "_"):
                ops.append(op)
                text = text[len(op) + 1:]
                break
        else:
            head, _, text = text.partition("_")
            ops.append(head)
    return ops


def compile_stats(torch):
    """Graphs dynamo captured and graph breaks it took (None where torch has no such counters)."""
    try:
        from torch._dynamo.utils import counters
    except Exception:
        return {"graphs": None, "graph_breaks": None}
    return {"graphs": int(counters["stats"].get("unique_graphs", 0)),
            "graph_breaks": int(sum(counters["graph_break"].values()))}


class EagerReplay(object):
    """At a stored step of a compiled run: the same batch through the uncompiled model (sharing its
    parameters), each leaf's output recorded as replay/fwd/<path> and the model's as replay/out,
    with no effect on the run: no backward, buffers (BatchNorm statistics) and RNG state restored.
    Autograd stays on, as in the training forward it stands for: some kernels take another path
    without it (torch 2.6's CPU LSTM under no_grad runs oneDNN's inference kernel on AVX-512: up to
    2.1e-7 apart, docs/studies/lstm-no-grad.md), and a replay
    on another path would show a divergence compile did not cause."""

    def __init__(self, torch, model, leaves, recorder):
        self.torch, self.model, self.leaves, self.recorder = torch, model, leaves, recorder

    def __call__(self, inputs, autocast):
        torch, rec = self.torch, self.recorder
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        handles = [m.register_forward_hook(self._hook(name)) for name, m in self.leaves]
        try:
            with torch.enable_grad(), autocast():
                out = self.model(*inputs)
            rec.record_output("replay/out", out)
        finally:
            for h in handles:
                h.remove()
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)
            torch.set_rng_state(cpu_rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)

    def _hook(self, name):
        def hook(module, inputs, output):
            self.recorder.record_output("replay/fwd/" + name, output)
        return hook
