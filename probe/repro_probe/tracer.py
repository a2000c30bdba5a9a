"""Zero-code tracer for the user's training script (script mode). Global module forward hooks, a
wrapped torch.autograd.backward and optimizer-step hooks fill a TraceRecorder with the entries of
the built-in workload's trace, named by the user's module paths, and stop the script with
StepLimitReached at the step boundary after max_steps. The rules are in docs/artifacts.md
("Script mode"); the observer's untraced run keeps only the step counter (traced=False)."""

import functools
import hashlib
import os
import re
import socket
import sys
import threading
import traceback
import types
import warnings
import weakref

from .safetensors import dtype_name, tensor_bytes

MAX_ENTRIES_PER_STEP = 10000
MAX_ENTRIES_TOTAL = 250000
STORE_BUDGET = 256 * 1024 * 1024  # stored values of a script run (the TraceRecorder's budget)
MAX_NAME = 400
MAX_OUTPUT_TENSORS = 64  # tensors recorded per module output (tuples, lists, dicts: two levels)
MAX_LISTED = 2000  # module names in run.json model.modules / module_types
MAX_METRICS = 256
MAX_ERRORS = 10
MAX_GRAPH_NODES = 1000000  # autograd nodes walked to find the leaves a backward reaches (backward steps)
STEP_BY_OPTIMIZER, STEP_BY_BACKWARD = "optimizer step", "backward"
RECORDABLE = frozenset(("float64", "float32", "float16", "bfloat16", "int64", "int32", "uint8", "bool"))
_BAD_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f|]")


class StepLimitReached(BaseException):
    """Raised at the step boundary once max_steps optimizer steps are done. A BaseException, so the
    script's `except Exception` does not swallow it; scriptrun catches it."""


def _never():
    return False


_compiling = _never  # torch.compiler.is_compiling once torch has it: dynamo folds it to True


def _bind_is_compiling(torch):
    """Every hook starts with `if _compiling(): return`: while dynamo traces a compiled region the
    hooks are then empty code instead of Python that forces graph breaks (hashing, ctypes)."""
    global _compiling
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "is_compiling"):
        _compiling = compiler.is_compiling
    elif "torch._dynamo" in sys.modules and hasattr(sys.modules["torch._dynamo"], "is_compiling"):
        _compiling = sys.modules["torch._dynamo"].is_compiling  # torch 2.0 - 2.2


def clean_name(name):
    """An entry name the host accepts: no control characters or '|', at most MAX_NAME characters."""
    name = _BAD_NAME_CHARS.sub("_", name)
    if len(name) > MAX_NAME:
        name = name[:MAX_NAME - 17] + "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    return name


def autocast_state(torch):
    """'off', or the autocast dtype in effect ('fp16', 'bf16', ...) on CUDA or the CPU."""
    names = {"float16": "fp16", "bfloat16": "bf16"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for device in ("cuda", "cpu"):
            try:
                on, dtype = torch.is_autocast_enabled(device), torch.get_autocast_dtype(device)
            except (TypeError, AttributeError, RuntimeError):  # torch < 2.4
                if device == "cuda":
                    on, dtype = torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()
                else:
                    on, dtype = torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()
            if on:
                name = dtype_name(dtype)
                return names.get(name, name)
    return "off"


def unwrap(module, compiled):
    """The user's module inside torch.compile's OptimizedModule (compiled) and DistributedDataParallel
    (its .module): names then match a run of the bare model."""
    inner = getattr(module, "_orig_mod", module) if compiled else module
    ddp = getattr(sys.modules.get("torch.nn.parallel"), "DistributedDataParallel", None)
    if ddp is not None and isinstance(inner, ddp):
        inner = inner.module
    return inner


class Root(object):
    """A module whose forward ran when no other module forward was active (or that was compiled in
    place), with the names of its modules and parameters. A compiled root (torch.compile's
    OptimizedModule) and a DistributedDataParallel root are named through the module they wrap."""

    def __init__(self, module, label, compiled):
        self.module = module
        self.inner = unwrap(module, compiled)
        self.label = label  # "" for the main root
        self.prefix = label + ":" if label else ""
        self.output_name = "out/" + label if label else "out"
        self.compiled = compiled
        self.indexed_step = None
        self.index(None)

    def index(self, step):
        self.modules = {id(m): n for n, m in self.inner.named_modules()}
        self.params = {id(p): n for n, p in self.inner.named_parameters()}
        self.indexed_step = step

    def has_params(self):
        return bool(self.params)


class Watch(object):
    """Tracer.watch: fn(module, args) at the first traced call of the module named `name` in step
    `step`; `what` names it in errors."""

    def __init__(self, step, name, fn, what):
        self.step, self.name, self.fn, self.what = step, name, fn, what


class Tracer(object):
    def __init__(self, torch, recorder, max_steps, traced=True):
        """traced: forward hooks and entries; recorder: None for the observer's untraced run (the
        step counter only), a disabled TraceRecorder for trace.enabled=false (losses still read)."""
        self.torch = torch
        self.recorder = recorder
        self.traced = traced
        self.max_steps = max_steps
        self.enabled = True  # False in forked children (DataLoader workers)
        self.thread = threading.get_ident()  # forwards of other threads (nn.DataParallel replicas) are not traced
        self.stopped = False
        self.steps_done = 0
        self.roots = []
        self._root_by_id = {}
        self._labels = {}
        self._stack = []  # [module, had_child, skip reason, root, is_root]
        self.optimizers = []  # in the order of their first step()
        self._opt_index = {}
        self._open = False  # a trace step is open
        self._after_boundary = False  # ... and its boundary optimizer step is done
        self._backward_since_boundary = False
        self._stepped_since_boundary = set()
        self._step_owner = None  # the optimizer whose step() is running (nested steps are ignored)
        self._boundary_call = False
        self._in_backward = 0
        self._init_recorded = False
        self._param_names = {}
        self.eval_forwards = {"no_grad": 0, "eval_mode": 0}
        self.losses = 0
        self.last_loss = None
        self.nonfinite_losses = 0
        self.metrics = {}
        self.last_host = None
        self.errors = []
        self.entries_total = 0
        self._entries_step = 0
        self.entries_dropped = 0
        self.entries_skipped = 0
        self.skip_reasons = []
        self.trailing_entries_discarded = 0
        self.autocast = None
        self.compiled = False
        self.modules_seen = {}
        self.first_step_hook = None  # fn(optimizer), at the first optimizer step, before it runs
        self.hook_kind = None
        self._undo = []
        # steps without torch.optim: one top-level backward and the parameters after it
        self.optimizers_created = 0
        self.step_definition = None  # STEP_BY_OPTIMIZER or STEP_BY_BACKWARD, at the first step
        self._bw_pending = None  # [(name, leaf)] of a backward step whose update is not yet seen
        self._bw_last = []  # the leaves of the last backward step (the observer check's parameters)
        self._leaf_names = {}  # id(leaf) -> (name, weakref): module path, variable or leafN
        self._leaf_count = 0
        self.namespace = None  # the notebook's namespace (else the script's __main__ module)
        # closures (LBFGS): one trace step per optimizer.step(closure); its first evaluation is recorded
        self._closure_evals = 0
        self._closure_grads_pending = False
        self._repeat = False  # a closure evaluation after the first: entries not recorded
        self.closure_evaluations = 0
        self.closure_entries_skipped = 0
        self.cell = None  # the notebook cell running (a trace step records the cell it began in)
        # op replay (script_replay.py): Watch(step, name, fn) runs fn(module, args) at the first traced
        # call of the module named `name` (as fwd/<name>) in step `step`; stop_error ends the run
        self.watch = None
        self.stop_error = None
        # torch.distributed: the backend init_process_group set up (run.json distributed.backend), and a
        # launch mistake found by the wrappers (env:// without torchrun, nccl without CUDA, spawn children)
        self.dist_backend = None
        self.launch_error = None

    # ---- installation ---------------------------------------------------------------------------

    def install(self):
        torch = self.torch
        _bind_is_compiling(torch)
        os.register_at_fork(after_in_child=self._forked)
        self._install_optimizer_hooks()
        self._patch_backward()
        self._patch_socket()
        self._patch_distributed()
        self._patch_spawn()
        if self.traced:
            from torch.nn.modules import module as nn_module
            kwargs = {}
            try:  # torch >= 2.1: the post hook also runs when a forward raises
                import inspect
                if "always_call" in inspect.signature(nn_module.register_module_forward_hook).parameters:
                    kwargs["always_call"] = True
            except (TypeError, ValueError):
                pass
            self._undo.append(nn_module.register_module_forward_pre_hook(self._pre_hook()).remove)
            self._undo.append(nn_module.register_module_forward_hook(self._post_hook(), **kwargs).remove)
            self._patch_module_compile()

    def uninstall(self):
        while self._undo:
            try:
                self._undo.pop()()
            except Exception:
                pass

    def _forked(self):
        self.enabled = False

    def _install_optimizer_hooks(self):
        from torch.optim import optimizer as opt_module
        tracer = self
        if hasattr(opt_module, "register_optimizer_step_post_hook"):  # torch >= 2.0
            self.hook_kind = "global optimizer step hooks"

            def pre(optimizer, args, kwargs):
                if not _compiling() and tracer.enabled:
                    tracer._pre_step(optimizer, _has_closure(args, kwargs))

            def post(optimizer, args, kwargs):
                if not _compiling() and tracer.enabled:
                    tracer._post_step(optimizer)
            self._undo.append(opt_module.register_optimizer_step_pre_hook(pre).remove)
            self._undo.append(opt_module.register_optimizer_step_post_hook(post).remove)
            self._count_optimizers(opt_module.Optimizer, None)
            return
        # torch < 2.0: subclasses override Optimizer.step, so each instance's step is wrapped when
        # Optimizer.__init__ (which every subclass calls) returns. A bound method, because
        # lr_scheduler wraps optimizer.step through its __func__ / __self__.
        self.hook_kind = "optimizer instance step wrappers"
        cls = opt_module.Optimizer

        def traced_step(optimizer, *args, **kwargs):
            if tracer.enabled:
                tracer._pre_step(optimizer, _has_closure(args, kwargs))
            out = type(optimizer).step(optimizer, *args, **kwargs)
            if tracer.enabled:
                tracer._post_step(optimizer)
            return out
        self._count_optimizers(cls, lambda optimizer: setattr(optimizer, "step", types.MethodType(traced_step,
                                                                                                  optimizer)))

    def _count_optimizers(self, cls, then):
        """Optimizer.__init__ (which every subclass calls) counts the optimizers the script makes: with
        none, a step is one top-level backward. `then(optimizer)` after it returns (torch < 2.0: wrap step)."""
        original_init = cls.__init__
        tracer = self

        @functools.wraps(original_init)
        def __init__(optimizer, *args, **kwargs):
            original_init(optimizer, *args, **kwargs)
            if tracer.enabled:
                tracer.optimizers_created += 1
            if then is not None:
                then(optimizer)
        cls.__init__ = __init__
        self._undo.append(lambda: setattr(cls, "__init__", original_init))

    def _patch_backward(self):
        """torch.autograd.backward, which Tensor.backward calls: every loss passed to backward()."""
        autograd = self.torch.autograd
        original = autograd.backward
        tracer = self

        @functools.wraps(original)
        def backward(tensors, *args, **kwargs):
            if _compiling() or not tracer.enabled or tracer._in_backward:
                return original(tensors, *args, **kwargs)
            leaves = tracer._on_backward(tensors)
            tracer._in_backward += 1  # a reentrant checkpoint calls backward inside backward
            try:
                out = original(tensors, *args, **kwargs)
            finally:
                tracer._in_backward -= 1
            tracer._after_backward(leaves)
            return out
        autograd.backward = backward
        self._undo.append(lambda: setattr(autograd, "backward", original))

    def _patch_socket(self):
        """Remember the last host the script tried to reach (for error.type network_blocked)."""
        tracer = self
        original_getaddrinfo = socket.getaddrinfo
        original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex

        @functools.wraps(original_getaddrinfo)
        def getaddrinfo(host, *args, **kwargs):
            tracer._note_host(host)
            return original_getaddrinfo(host, *args, **kwargs)

        def connect(sock, address):
            if isinstance(address, tuple):  # AF_INET / AF_INET6, not a unix socket path
                tracer._note_host(address[0] if address else None)
            return original_connect(sock, address)

        def connect_ex(sock, address):
            if isinstance(address, tuple):
                tracer._note_host(address[0] if address else None)
            return original_connect_ex(sock, address)
        socket.getaddrinfo = getaddrinfo
        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex

        def undo():
            socket.getaddrinfo = original_getaddrinfo
            socket.socket.connect, socket.socket.connect_ex = original_connect, original_connect_ex
        self._undo.append(undo)

    def _patch_distributed(self):
        """torch.distributed.init_process_group: the backend it set up, and two launch mistakes as one
        line each (ProbeError) instead of a hang or a traceback."""
        dist = sys.modules.get("torch.distributed")
        original = getattr(dist, "init_process_group", None)
        if original is None or not dist.is_available():
            return
        tracer = self

        @functools.wraps(original)
        def init_process_group(*args, **kwargs):
            if tracer.enabled:
                tracer._check_init(original, args, kwargs)
            out = original(*args, **kwargs)
            if tracer.enabled:
                try:
                    tracer.dist_backend = str(dist.get_backend())
                except Exception:
                    tracer._fail()
            return out
        dist.init_process_group = init_process_group
        self._undo.append(lambda: setattr(dist, "init_process_group", original))

    def _check_init(self, original, args, kwargs):
        import inspect
        from .errors import ProbeError
        try:
            bound = inspect.signature(original).bind_partial(*args, **kwargs).arguments
        except (TypeError, ValueError):
            return  # torch raises its own error for arguments it does not take
        backend = str(bound.get("backend") or "").lower()
        if "nccl" in backend and not self.torch.cuda.is_available():
            self._launch_error(ProbeError("nccl_unavailable", "the script asks init_process_group for the nccl "
                                          "backend, which needs CUDA, and this target has no CUDA device"))
        init_method = bound.get("init_method")
        if bound.get("store") is not None or (init_method is not None and not str(init_method).startswith("env://")):
            return
        missing = [name for name, arg in (("RANK", "rank"), ("WORLD_SIZE", "world_size"), ("MASTER_ADDR", None),
                                          ("MASTER_PORT", None))
                   if name not in os.environ and (arg is None or bound.get(arg, -1) in (None, -1))]
        if missing:
            self._launch_error(ProbeError("distributed_env", "the script calls init_process_group with env:// but %s "
                                          "%s not set: it expects a launcher such as torchrun to start its ranks"
                                          % ("/".join(missing), "is" if len(missing) == 1 else "are")))

    def _patch_spawn(self):
        """torch.multiprocessing.spawn / start_processes before the first training step: the training
        runs in the children, which are seeded but not traced."""
        mp = sys.modules.get("torch.multiprocessing")
        spawn_module = sys.modules.get("torch.multiprocessing.spawn")
        tracer = self
        for owner in (mp, spawn_module):
            for name in ("spawn", "start_processes"):
                original = getattr(owner, name, None)
                if not callable(original) or getattr(original, "_repro_wrapped", False):
                    continue

                def wrapper(*args, _original=original, _name=name, **kwargs):
                    if tracer.enabled and tracer.steps_done == 0:
                        from .errors import ProbeError
                        tracer._launch_error(ProbeError(
                            "spawn_children", "the script trains in torch.multiprocessing.%s children, which are "
                            "not traced (only the process that runs the script is)" % _name))
                    return _original(*args, **kwargs)
                wrapper = functools.wraps(original)(wrapper)
                wrapper._repro_wrapped = True
                setattr(owner, name, wrapper)
                self._undo.append(functools.partial(setattr, owner, name, original))

    def _launch_error(self, error):
        """A launch mistake: the run's error even if the script catches the exception."""
        self.launch_error = self.launch_error or error
        raise error

    def _note_host(self, host):
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if isinstance(host, str) and host:
            self.last_host = _BAD_NAME_CHARS.sub("_", host)[:253]

    def _patch_module_compile(self):
        """Module.compile (torch >= 2.2) compiles the module's whole call, hooks included: no hook
        runs for it eagerly, so it becomes a (compiled) root when compile() is called."""
        cls = self.torch.nn.Module
        original = getattr(cls, "compile", None)
        if original is None:
            return
        tracer = self

        @functools.wraps(original)
        def compile(module, *args, **kwargs):
            out = original(module, *args, **kwargs)
            try:
                _bind_is_compiling(tracer.torch)
                tracer._root(module, compiled=True)
            except Exception:
                tracer._fail()
            return out
        cls.compile = compile
        self._undo.append(lambda: setattr(cls, "compile", original))

    # ---- forward hooks --------------------------------------------------------------------------

    def _pre_hook(self):
        tracer = self

        def pre(module, args):
            if _compiling() or not tracer.enabled or threading.get_ident() != tracer.thread:
                return
            try:
                tracer._enter(module, args)
            except StepLimitReached:
                raise
            except Exception:
                tracer._fail()
        return pre

    def _post_hook(self):
        tracer = self

        def post(module, args, output):
            if _compiling() or not tracer.enabled or threading.get_ident() != tracer.thread:
                return
            try:
                tracer._exit(module, output)
            except Exception:
                tracer._fail()
        return post

    def _enter(self, module, args=()):
        stack = self._stack
        if stack:
            parent = stack[-1]
            parent[1] = True
            root = parent[3]
            skip = parent[2] or ("compiled" if parent[4] and root is not None and root.compiled else None)
            stack.append([module, False, skip, root, False])
            if self.watch is not None and skip is None and root is not None and self.steps_done == self.watch.step:
                self._watched(module, args, root)
            return
        torch = self.torch
        compiled = type(module).__name__ == "OptimizedModule" and hasattr(module, "_orig_mod")
        reason = None
        if not torch.is_grad_enabled():
            reason = "no_grad"
        elif not (module._orig_mod if compiled else module).training:
            reason = "eval_mode"
        if reason is not None:  # not training: never mixed into a step
            self.eval_forwards[reason] += 1
            stack.append([module, False, reason, None, True])
            return
        if self.stopped:
            raise StepLimitReached()
        root = self._root(module, compiled)
        self._activity()
        if self.autocast is None:
            self.autocast = autocast_state(torch)
        stack.append([module, False, None, root, True])

    def _exit(self, module, output):
        stack = self._stack
        if not stack:
            return
        if stack[-1][0] is not module:  # a forward raised without its post hook (torch < 2.1)
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] is module:
                    del stack[i + 1:]
                    break
            else:
                return
        _, had_child, skip, root, is_root = stack.pop()
        if skip is not None or root is None or output is None:
            return
        if is_root:
            self._record_output(root.output_name, output)
        elif not had_child and not (module is root.inner and module is not root.module):
            # a leaf of the call tree (e.g. MultiheadAttention, whose out_proj is not called); not the
            # module a DistributedDataParallel root wraps (its output is the root's `out`)
            name = self._module_name(root, module)
            if name not in self.modules_seen and len(self.modules_seen) < MAX_LISTED:
                self.modules_seen[name] = type(module).__name__
            self._record_output("fwd/" + name, output)

    def _module_name(self, root, module):
        """A module's name in fwd/<name>: the root's label prefix and its path in the root's tree."""
        path = root.modules.get(id(module))
        if path is None and root.indexed_step != self.steps_done:
            root.index(self.steps_done)  # a module added after the root was indexed
            path = root.modules.get(id(module))
        if path is None:
            path = "~" + type(module).__name__  # not registered in the root's module tree
        return root.prefix + path

    def _watched(self, module, args, root):
        """The watched module's first traced call in its step: the watch's fn runs with every tracer
        hook off (its own module calls are neither traced nor counted). It returns True to end the
        script here (StepLimitReached); a ProbeError it raises is the run's error."""
        watch = self.watch
        if self._module_name(root, module) != watch.name:
            return
        self.watch = None
        from .errors import ProbeError
        self.enabled = False
        try:
            stop = watch.fn(module, args)
        except ProbeError as e:
            self.stop_error, stop = e, True
        except Exception as e:
            sys.stderr.write("repro_probe: %s failed:\n%s" % (watch.what, traceback.format_exc()))
            last = str(e).strip().split("\n")[-1][:500]
            self.stop_error = ProbeError("exception", "%s: %s: %s" % (watch.what, type(e).__name__, last))
            stop = True
        finally:
            self.enabled = True
        if stop:
            self.stopped = True
            raise StepLimitReached()

    def _root(self, module, compiled=False):
        root = self._root_by_id.get(id(module))
        if root is not None:
            return root
        if compiled:
            self.compiled = True
            _bind_is_compiling(self.torch)
        inner = unwrap(module, compiled)
        has_params = any(True for _ in inner.parameters())
        if has_params and not any(r.has_params() for r in self.roots):
            label = ""
        else:
            base = _BAD_NAME_CHARS.sub("_", type(inner).__name__)[:64] or "Module"
            n = self._labels.get(base, 0)
            self._labels[base] = n + 1
            label = base if n == 0 else "%s#%d" % (base, n)
        root = Root(module, label, compiled)
        self.roots.append(root)
        self._root_by_id[id(module)] = root
        self._param_names = {}
        return root

    def _record_output(self, name, output):
        found = []
        _flatten(self.torch, output, name, found, 0)
        for n, t in found:
            self._record(n, t)

    # ---- steps ----------------------------------------------------------------------------------

    def _activity(self):
        """Training work (a training forward, a backward) starts: it belongs to the next step if the
        open step already had its boundary."""
        if self._bw_pending is not None:
            self._finish_backward_step()
        if self.recorder is None:
            return
        if self._after_boundary:
            self._close()
        if not self._open:
            self._open_step()

    def _open_step(self):
        if not self._init_recorded:
            self._init_recorded = True
            self.recorder.begin("init", None)
            self._entries_step = 0
            for root in self.roots:
                for n, p in root.inner.named_parameters():
                    self._record("param/" + root.prefix + n, p)
                for n, b in root.inner.named_buffers():
                    self._record("buffer/" + root.prefix + n, b)
            self.recorder.end()
        self.recorder.begin(self.steps_done, None)
        if self.cell is not None:
            self.recorder.set_cell(self.cell)
        self._entries_step = 0
        self._open = True
        self._after_boundary = False

    def _close(self):
        if self._open:
            self.recorder.end()
        self._open = False
        self._after_boundary = False

    def _on_backward(self, tensors):
        """Before a top-level backward. Inside optimizer.step(closure) it is a closure evaluation (only
        the first is recorded); with no optimizer made yet it is a step of its own (returns its leaves)."""
        if self.stopped:
            raise StepLimitReached()
        del self._stack[:]  # no forward is active at a backward; frames left by a raising forward go
        in_closure = self._step_owner is not None
        by_backward = not in_closure and self.optimizers_created == 0
        leaves = None
        if in_closure:
            self._closure_evals += 1
            self.closure_evaluations += 1
            self._closure_grads_pending = self._closure_evals == 1
        else:
            self._backward_since_boundary = True
        if by_backward:
            self._activity()  # closes the previous backward step (its update is done): may stop here
            if self.step_definition is None:
                self.step_definition = STEP_BY_BACKWARD
            try:
                leaves = self._named_leaves(self._graph_leaves(tensors))
            except Exception:
                self._fail()
                leaves = []
        if self.recorder is None:
            return leaves
        try:
            if not by_backward:
                self._activity()
            torch = self.torch
            for t in ([tensors] if isinstance(tensors, torch.Tensor) else list(tensors)):
                if not isinstance(t, torch.Tensor):
                    continue
                t = t.detach()
                if t.numel() == 1 and not self._repeat:
                    t = t.double()
                    value = float(t)
                    self.last_loss = value
                    if value != value or value in (float("inf"), float("-inf")):
                        self.nonfinite_losses += 1
                self.losses += 1
                self._record("loss", t)
        except Exception:
            self._fail()
        return leaves

    def _after_backward(self, leaves):
        """After a top-level backward: the first closure evaluation's gradients, or a backward step's
        gradients (the step stays open until its update is seen)."""
        if self._closure_grads_pending:
            self._closure_grads_pending = False
            owner = self._step_owner
            try:
                if self.recorder is not None and owner is not None and self._open:
                    for name, p in self._named_params(owner):
                        if p.grad is not None:
                            self._record("grad/" + name, p.grad)
            except Exception:
                self._fail()
            self._repeat = True  # later evaluations of this step's closure are not recorded
            return
        if leaves is None:
            return
        self._bw_pending = leaves
        self._bw_last = leaves
        if self.recorder is None or not self._open:
            return
        try:
            for name, t in leaves:
                if t.grad is not None:
                    self._record("grad/" + name, t.grad)
        except Exception:
            self._fail()

    def _finish_backward_step(self):
        """The next training work (or the end) after a backward step: its parameters as updated."""
        leaves, self._bw_pending = self._bw_pending, None
        try:
            if self.recorder is not None and self._open:
                for name, t in leaves:
                    self._record("param/" + name, t)
                for root in self.roots:
                    for n, b in root.inner.named_buffers():
                        self._record("buffer/" + root.prefix + n, b)
                self._close()
        except Exception:
            self._fail()
        self.steps_done += 1
        if self.steps_done >= self.max_steps:
            self.stopped = True
            raise StepLimitReached()

    def _adopt_root(self, optimizer):
        """The module whose parameters the optimizer steps, found among the variables of the script's
        frames and its module namespace, registered as the root (as its first forward would)."""
        try:
            ids = set(id(p) for g in optimizer.param_groups for p in g["params"])
            module_cls = self.torch.nn.Module
            spaces = []
            frame = sys._getframe(1)
            while frame is not None and len(spaces) < 64:
                spaces.append(frame.f_locals)
                frame = frame.f_back
            main = sys.modules.get("__main__")
            spaces.append(self.namespace if self.namespace is not None else getattr(main, "__dict__", {}))
            for space in spaces:
                for value in list(space.values()):
                    if isinstance(value, module_cls) and any(id(p) in ids for p in value.parameters()):
                        self._root(value)
                        return
        except Exception:
            self._fail()

    def _graph_leaves(self, tensors):
        """The leaf tensors a backward from `tensors` reaches (AccumulateGrad nodes), in depth-first
        order from the loss, each once."""
        torch = self.torch
        roots = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
        todo = [t.grad_fn for t in reversed(roots) if isinstance(t, torch.Tensor) and t.grad_fn is not None]
        seen, keep, out, found = set(), [], [], set()
        while todo and len(seen) < MAX_GRAPH_NODES:
            fn = todo.pop()
            if fn is None or id(fn) in seen:
                continue
            seen.add(id(fn))
            keep.append(fn)  # ids stay unique while the node objects live
            variable = getattr(fn, "variable", None)
            if variable is not None:
                if id(variable) not in found:
                    found.add(id(variable))
                    out.append(variable)
                continue
            todo.extend(f for f, _ in reversed(fn.next_functions) if f is not None)
        return out

    def _named_leaves(self, leaves):
        return [(self._leaf_name(t), t) for t in leaves]

    def _leaf_name(self, t):
        """Module path when a module owns the tensor, else the module-level variable holding it, else
        leafN by order of first gradient."""
        known = self._leaf_names.get(id(t))
        if known is not None and known[1]() is t:
            return known[0]
        name = self._param_name(t)
        if name is None:
            ns = self.namespace
            if ns is None:
                main = sys.modules.get("__main__")
                ns = getattr(main, "__dict__", None) or {}
            for key, value in list(ns.items()):
                if value is t and isinstance(key, str) and not key.startswith("_"):
                    name = key
                    break
        if name is None:
            name = "leaf%d" % self._leaf_count
            self._leaf_count += 1
        try:
            ref = weakref.ref(t)
        except TypeError:
            ref = (lambda: t)
        self._leaf_names[id(t)] = (name, ref)
        return name

    def _pre_step(self, optimizer, closure=False):
        if self.stopped:
            raise StepLimitReached()
        if self._step_owner is not None and self._step_owner is not optimizer:
            return  # an optimizer stepping inside another one's step (a wrapper such as Lookahead)
        self._step_owner = optimizer
        self._closure_evals = 0
        self._repeat = False
        del self._stack[:]
        if self.step_definition is None:
            self.step_definition = STEP_BY_OPTIMIZER
        if closure and not self._init_recorded and not self.roots:
            self._adopt_root(optimizer)  # its forwards run inside step(): the init step needs the model now
        try:
            if id(optimizer) not in self._opt_index:
                self._opt_index[id(optimizer)] = len(self.optimizers)
                self.optimizers.append(optimizer)
            boundary = (self._backward_since_boundary or id(optimizer) in self._stepped_since_boundary
                        or (self.steps_done == 0 and not self._stepped_since_boundary))
            self._boundary_call = boundary
            if boundary and self.steps_done == 0 and self.first_step_hook is not None:
                hook, self.first_step_hook = self.first_step_hook, None
                hook(optimizer)
            if self.recorder is None:
                return
            if boundary and self._after_boundary:
                self._close()  # a second boundary without forward or backward in between
            if not self._open:
                self._open_step()
            if not closure:  # with a closure, the first evaluation's gradients (after its backward)
                for name, p in self._named_params(optimizer):
                    if p.grad is not None:
                        self._record("grad/" + name, p.grad)
        except Exception:
            self._fail()

    def _post_step(self, optimizer):
        if self._step_owner is not optimizer:
            return
        self._step_owner = None
        self._repeat = False
        self._closure_grads_pending = False
        try:
            if self.recorder is not None and self._open:
                for name, p in self._named_params(optimizer):
                    self._record("param/" + name, p)
            if not self._boundary_call:
                self._stepped_since_boundary.add(id(optimizer))
                return
            if self.recorder is not None and self._open:
                for root in self.roots:
                    for n, b in root.inner.named_buffers():
                        self._record("buffer/" + root.prefix + n, b)
            self._after_boundary = True
            self._backward_since_boundary = False
            self._stepped_since_boundary = {id(optimizer)}
            self.steps_done += 1
        except Exception:
            self._fail()
        if self.steps_done >= self.max_steps and self._boundary_call:
            if self.recorder is not None:
                self._close()
            self.stopped = True
            raise StepLimitReached()

    def _named_params(self, optimizer):
        """(name, parameter) in the optimizer's order; names by module path, else optK.G.J."""
        k = self._opt_index[id(optimizer)]
        out = []
        for g, group in enumerate(optimizer.param_groups):
            for j, p in enumerate(group["params"]):
                name = self._param_names.get(id(p))
                if name is None:
                    name = self._param_name(p)
                    if name is None:
                        name = "opt%d.%d.%d" % (k, g, j)
                    self._param_names[id(p)] = name
                out.append((name, p))
        return out

    def _param_name(self, p):
        for again in (False, True):
            for root in self.roots:
                if again and root.indexed_step != self.steps_done:
                    root.index(self.steps_done)  # e.g. lazy modules made their parameters later
                n = root.params.get(id(p))
                if n is not None:
                    return root.prefix + n
        return None

    def finish(self):
        """At the end of the script: keep complete steps only (a trailing step without optimizer
        step, such as the forward of an iteration that never stepped, is discarded)."""
        if self._bw_pending is not None and not self.stopped:
            try:
                self._finish_backward_step()
            except StepLimitReached:
                pass
        self.enabled = False
        if self.recorder is None:
            return
        if self._open and self._after_boundary:
            self._close()
        elif self._open:
            self.trailing_entries_discarded = self.recorder.discard()
            self._open = False

    # ---- recording ------------------------------------------------------------------------------

    def _record(self, name, tensor):
        recorder = self.recorder
        if not recorder.active:
            return
        if self._repeat:  # a closure's second and later evaluations within one optimizer step
            self.closure_entries_skipped += 1
            return
        if self._entries_step >= MAX_ENTRIES_PER_STEP or self.entries_total >= MAX_ENTRIES_TOTAL:
            self.entries_dropped += 1
            return
        try:
            dtype = dtype_name(tensor.dtype)
            if dtype not in RECORDABLE or tensor.dim() > 8 or tensor.layout != self.torch.strided:
                raise TypeError("%s tensor of %d dims" % (dtype, tensor.dim()))
            recorder.record(clean_name(name), tensor)
        except Exception as e:
            self.entries_skipped += 1
            reason = "%s: %s: %s" % (name, type(e).__name__, str(e).split("\n")[0][:200])
            if len(self.skip_reasons) < MAX_ERRORS:
                self.skip_reasons.append(reason)
            return
        self._entries_step += 1
        self.entries_total += 1

    def _fail(self):
        """A bug in the tracer: recorded (run.json error tracer_error), the script goes on."""
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(traceback.format_exc().strip().split("\n")[-1])
            sys.stderr.write("repro_probe: tracer error:\n%s" % traceback.format_exc())

    # ---- results --------------------------------------------------------------------------------

    def report_metric(self, name, value):
        if not self.enabled:
            return
        if not isinstance(name, str) or not name or len(name) > 128 or _BAD_NAME_CHARS.search(name):
            sys.stderr.write("repro_probe: warning: report_metric: bad name %r ignored\n" % (name,))
            return
        try:
            value = float(value)
        except (TypeError, ValueError, RuntimeError):
            sys.stderr.write("repro_probe: warning: report_metric(%r): %r is not a number\n" % (name, value))
            return
        if name not in self.metrics and len(self.metrics) >= MAX_METRICS:
            sys.stderr.write("repro_probe: warning: report_metric: more than %d metrics\n" % MAX_METRICS)
            return
        self.metrics[name] = value

    def final_params(self):
        """[{key, name, sha256}] for every parameter of every optimizer that stepped, keyed by
        position (optK.G.J) so that a traced and an untraced run can be compared."""
        out = []
        if self.step_definition == STEP_BY_BACKWARD:
            for i, (name, t) in enumerate(self._bw_last):
                out.append({"key": "bw.%d" % i, "name": name, "sha256": hashlib.sha256(tensor_bytes(t)).hexdigest()})
        for k, optimizer in enumerate(self.optimizers):
            for g, group in enumerate(optimizer.param_groups):
                for j, p in enumerate(group["params"]):
                    name = self._param_names.get(id(p)) or self._param_name(p) or "opt%d.%d.%d" % (k, g, j)
                    out.append({"key": "opt%d.%d.%d" % (k, g, j), "name": name,
                                "sha256": hashlib.sha256(tensor_bytes(p)).hexdigest()})
        return out

    def model_summary(self):
        """run.json `model`: parameters of the roots and optimizers, the modules in the trace."""
        seen, count = set(), 0
        params = [p for r in self.roots for p in r.inner.parameters()]
        params += [p for o in self.optimizers for g in o.param_groups for p in g["params"]]
        params += [t for _, t in self._bw_last]
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                count += p.numel()
        names = list(self.modules_seen)
        return {"parameters": count, "modules": names,
                "module_types": dict((n[:256], t[:128]) for n, t in self.modules_seen.items())}

    def roots_summary(self):
        return [{"label": r.label, "type": type(r.inner).__name__, "compiled": r.compiled} for r in self.roots]


def _has_closure(args, kwargs):
    """optimizer.step(closure) or step(closure=...)."""
    closure = kwargs.get("closure") if kwargs else None
    if closure is None and args:
        closure = args[0]
    return callable(closure)


def _flatten(torch, obj, name, found, depth):
    if isinstance(obj, torch.Tensor):
        found.append((name, obj))
        return
    if depth >= 2 or len(found) >= MAX_OUTPUT_TENSORS:
        return
    if isinstance(obj, (tuple, list)):
        items = enumerate(obj)
    elif isinstance(obj, dict):
        items = obj.items()
    else:
        return
    for key, value in items:
        if len(found) >= MAX_OUTPUT_TENSORS:
            return
        _flatten(torch, value, "%s.%s" % (name, key), found, depth + 1)
