"""TraceRecorder: sha256 + non-finite count for every trace entry of every step, forward hooks on
leaf modules, and stored values (float16/bfloat16 widened) at the chosen steps, within a byte budget.

Cheap enough to leave on (issue 28): a group of entries (gradients, optimizer state, parameters and
buffers) shares one flat copy, one non-finite check and one pass of hashing over its slices; an
entry is copied at most once (that copy is also the stored value at a stored step); and in train
mode large entries are hashed on a worker thread while training goes on. The digests are the same
bytes' sha256 whichever path an entry takes."""

import collections
import ctypes
import hashlib
import itertools
import math
import os
import sys
import time

from .safetensors import dtype_name

ENTRY_ORDER = ("eager replay (compiled runs, stored steps), forward outputs in hook order (eager runs), "
               "the model's output, loss, gradients in parameter order, optimizer state, parameters then "
               "buffers after the update")
STORE_BUDGET = 480 * 1024 * 1024  # the host rejects tensors.safetensors over 512 MiB
ASYNC_HASH_ENV = "REPRO_TRACE_ASYNC_HASH"  # "0": hash on the training thread; "1": on a worker even with one CPU
ASYNC_MIN_BYTES = 128 * 1024  # smaller entries: hashing costs less than handing them to the worker
GROUP_MAX_BYTES = 128 * 1024  # record_many: smaller tensors share a flat copy, larger go one by one
INFLIGHT_BYTES = 64 * 1024 * 1024  # snapshots queued for the worker at most; beyond it recording waits
GROUP_BYTES = 4 * 1024 * 1024  # a group's flat copy is made in chunks of about this size
_HALF = ("float16", "bfloat16")
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_DTYPE_NAMES = {}


def count_nonfinite(torch, t):
    """NaN and ±Inf elements of a float tensor (0 for other dtypes). A finite sum proves there are
    none (one NaN or Inf makes the sum non-finite), which is far cheaper than counting; a non-finite
    sum (or an overflowing one) falls back to the exact count. The sum is read as a Python float:
    one call into torch fewer than isfinite() + bool() on it."""
    if not t.is_floating_point() or not t.numel():
        return 0
    if math.isfinite(t.sum().item()):
        return 0
    return int(t.numel() - int(torch.isfinite(t).sum()))


def _dtype_name(dtype):
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = dtype_name(dtype)
    return name


def _host(t):
    """(t's values as a C-contiguous CPU tensor, whether that is a copy of our own): one copy at most."""
    if t.device.type != "cpu":
        return t.contiguous().cpu(), True
    if t.is_contiguous():
        return t, False
    return t.contiguous(), True


def _sha256(address, nbytes):
    """sha256 (hex) of nbytes of memory at `address`, read in place (its tensor stays alive until this
    returns): what safetensors.tensor_sha256 gives for a contiguous CPU tensor at that address."""
    if not nbytes:
        return _EMPTY_SHA256
    return hashlib.sha256((ctypes.c_ubyte * nbytes).from_address(address)).hexdigest()


def _usable_cpus():
    """CPUs this process may run on: its affinity, capped by a cgroup v2 CPU quota (docker --cpus)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (not Linux)
        n = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return n


def _spare_cpu():
    """A CPU the worker can have: this process may use two or more, and the 1-minute load average
    (this process included, once it has run a while) is under their number. On a busier machine
    the worker costs more than it saves: each time it takes the GIL back (after every digest) and
    the scheduler then has no CPU for it, training waits for it (bench/results.md, issue 28)."""
    cpus = _usable_cpus()
    if cpus < 2:
        return False
    try:
        return os.getloadavg()[0] < cpus
    except (AttributeError, OSError):
        return True


def _chunks(items, limit):
    """items ([name, tensor, bytes, None]) cut into runs of at most `limit` bytes (one item at least)."""
    run, size = [], 0
    for item in items:
        if run and size + item[2] > limit:
            yield run
            run, size = [], 0
        run.append(item)
        size += item[2]
    if run:
        yield run


def _flatten(torch, tensors):
    """One new 1-D tensor of two or more tensors' values in order (no autograd): torch's C++ loop where
    there is one, cheaper than a view per tensor from Python."""
    with torch.no_grad():
        flatten = getattr(torch._C._nn, "flatten_dense_tensors", None)
        if flatten is not None:
            return flatten(tensors)  # contiguous().view(-1) of each, then cat
        return torch.cat([t.reshape(-1) for t in tensors])


def _slots(model, named, attr):
    """[(name, the dict that holds it, its key)] for named (named_parameters() or named_buffers()):
    attr is the modules' dict of them ("_parameters" or "_buffers")."""
    out = []
    for name, _ in named:
        prefix, _, key = name.rpartition(".")
        module = model
        for part in prefix.split(".") if prefix else ():
            module = module._modules[part]  # Module.get_submodule's walk (torch 1.9+ only)
        out.append((name, getattr(module, attr), key))
    return out


class BackgroundHasher(object):
    """sha256 of entries on one worker thread; hashlib releases the GIL while it hashes, so a spare CPU
    hashes beside the training. It hashes a snapshot taken at record time, never the live tensor:
    training changes tensors in place after they are recorded (an inplace ReLU after the layer whose
    output was recorded, the optimizer's update). Snapshots of entries that are not stored come from
    a pool by (dtype, size), so each step reuses the memory of the step before it. A job is one
    snapshot and the entries whose bytes lie in it (a group's flat copy holds many)."""

    def __init__(self, torch):
        import threading
        try:
            from queue import SimpleQueue
        except ImportError:  # Python < 3.7
            from queue import Queue as SimpleQueue
        self.torch = torch
        self._event = threading.Event
        self._jobs = SimpleQueue()
        self._queued = 0  # bytes handed over (main thread) ...
        self._done = 0  # ... and hashed (worker thread)
        self._error = None
        self._free = {}  # (dtype, numel) -> deque of snapshots the worker is done with
        self._thread = threading.Thread(target=self._work, name="repro-trace-hash")
        self._thread.daemon = True
        self._thread.start()

    def snapshot(self, t):
        """A pooled copy of contiguous CPU tensor t, and the pool it returns to."""
        key = (t.dtype, t.numel())
        free = self._free.get(key)
        if free is None:
            free = self._free[key] = collections.deque()
        copy = free.pop() if free else self.torch.empty(t.numel(), dtype=t.dtype)  # only we pop
        copy.copy_(t.view(-1))
        return copy, free

    def submit(self, snapshot, slices, nbytes, free=None):
        """For each (entry, begin, end) of slices: entry["sha256"] of snapshot's bytes [begin, end),
        later; first waits while too much is queued."""
        if self._queued - self._done > INFLIGHT_BYTES:
            self.wait()
        self._queued += nbytes
        self._jobs.put((snapshot, slices, nbytes, free))

    def wait(self):
        """Until every job handed over is done; the worker's error, if any, raises here."""
        done = self._event()
        self._jobs.put(done)
        done.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def pending(self):
        """Jobs not hashed yet, or an error of the worker's not raised yet (it can finish a job
        that failed before anyone waits)."""
        return self._queued > self._done or self._error is not None

    def close(self):
        """Wait for every job, then end the worker thread."""
        self.wait()
        self._jobs.put(None)

    def _work(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if not isinstance(job, tuple):
                job.set()  # wait()'s marker: every job before it is done
                continue
            snapshot, slices, nbytes, free = job
            try:
                base = snapshot.data_ptr()
                for entry, begin, end in slices:
                    entry["sha256"] = _sha256(base + begin, end - begin)
            except BaseException as e:  # raised again on the training thread, by wait()
                if self._error is None:
                    self._error = e
            if free is not None:
                free.append(snapshot)
            self._done += nbytes


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
        self._steps = []
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
        self._hasher = None  # a BackgroundHasher once hash_in_background() turned it on
        self._slots = None  # (model, parameter slots, buffer slots): named()'s memo
        # "full": every leaf's output (forward hooks); "boundaries": a compiled run, whose fused
        # program has no per-layer outputs — only its output, loss, gradients and state
        self.capture = "full"

    @property
    def steps(self):
        """The closed steps, every digest in place (waits for the worker thread's)."""
        self.wait_hashes()
        return self._steps

    @steps.setter
    def steps(self, steps):
        self._steps = steps

    def hash_in_background(self):
        """Train mode: entries of ASYNC_MIN_BYTES or more are hashed on a worker thread when a CPU is
        spare (REPRO_TRACE_ASYNC_HASH=0: never; =1: always). Script mode stays on one thread: the
        user's script may fork (DataLoader workers)."""
        setting = os.environ.get(ASYNC_HASH_ENV, "").strip()
        if not self.enabled or self._hasher is not None or setting == "0":
            return
        if setting == "1" or _spare_cpu():
            try:
                self._hasher = BackgroundHasher(self.torch)
            except RuntimeError:  # no thread to be had: hash here
                self._hasher = None

    def wait_hashes(self):
        """Until every digest handed to the worker is in its entry (the time counts as trace time)."""
        if self._hasher is not None and self._hasher.pending():
            t0 = time.time()
            self._hasher.wait()
            self.seconds += time.time() - t0

    def finish_hashing(self):
        """At the end of training: every digest in place, the worker thread ended (entries recorded
        after this are hashed here)."""
        if self._hasher is not None:
            t0 = time.time()
            hasher, self._hasher = self._hasher, None
            hasher.close()
            self.seconds += time.time() - t0

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
        self._record_one(self._unique(name), tensor.detach())
        self.seconds += time.time() - t0

    def record_many(self, pairs):
        """(name, tensor) pairs, recorded as record() would one after another, for less: tensors under
        GROUP_MAX_BYTES are copied, per dtype, into one flat tensor (in chunks of GROUP_BYTES), whose
        sum is the non-finite check of them all (each entry is counted exactly only when that sum is
        not finite) and whose slices are hashed; larger tensors take record()'s path."""
        if not (self.enabled and self.active):
            return
        if type(self).record is not TraceRecorder.record:  # a subclass that records its own way
            for name, tensor in pairs:
                self.record(name, tensor)
            return
        t0 = time.time()
        items = []  # [unique name, tensor, bytes, (entry, flat, offset) once its chunk is done]
        groups = {}  # dtype -> its small items
        for name, t in pairs:  # detached only where taken one by one (a chunk is copied under no_grad)
            item = [self._unique(name), t, t.numel() * t.element_size(), None]
            if item[2] < GROUP_MAX_BYTES:
                groups.setdefault(t.dtype, []).append(item)
            items.append(item)
        for dtype, members in groups.items():
            for chunk in _chunks(members, GROUP_BYTES):
                if len(chunk) > 1:  # a lone tensor is cheaper one by one
                    self._record_flat(dtype, chunk)
        entries = self._step["entries"]
        for name, t, _, done in items:
            if done is None:
                self._record_one(name, t.detach())
                continue
            entry, flat, offset = done
            if entry["nonfinite"]:
                self.nonfinite_entries += 1
            entries.append(entry)
            if self._pending is not None:
                self._keep(name, flat[offset:offset + t.numel()].view(t.shape), True)
        self.seconds += time.time() - t0

    def _unique(self, name):
        n = self._seen.get(name, 0)
        self._seen[name] = n + 1
        return "%s#%d" % (name, n) if n else name  # a module called more than once in a step

    def _record_one(self, name, t):
        """One entry from detached tensor t: its non-finite count and digest now (or its digest on the
        worker, from a snapshot), its value kept at a stored step."""
        nonfinite = count_nonfinite(self.torch, t)
        if nonfinite:
            self.nonfinite_entries += 1
        entry = {"name": name, "dtype": _dtype_name(t.dtype), "shape": list(t.shape), "sha256": None,
                 "nonfinite": nonfinite}
        self._step["entries"].append(entry)
        host, own = _host(t)
        nbytes = host.numel() * host.element_size()
        kept = self._keep(name, host, own) if self._pending is not None else None
        hasher = self._hasher
        if hasher is None or nbytes < ASYNC_MIN_BYTES:
            entry["sha256"] = _sha256(host.data_ptr(), nbytes)
        elif kept is not None and kept.dtype == host.dtype:
            hasher.submit(kept, [(entry, 0, nbytes)], nbytes)  # the stored copy: nothing changes it
        elif own:
            hasher.submit(host, [(entry, 0, nbytes)], nbytes)
        else:
            snapshot, free = hasher.snapshot(host)  # the live tensor may change before the worker reads it
            hasher.submit(snapshot, [(entry, 0, nbytes)], nbytes, free)

    def _keep(self, name, host, own):
        """At a stored step: the value to store (float16/bfloat16 widened, in memory of its own: `host`
        itself when `own`), unless it would pass the budget (then the step is not stored)."""
        torch = self.torch
        half = host.dtype in (torch.float16, torch.bfloat16)
        size = host.numel() * (4 if half else host.element_size())
        if self.stored_bytes + self._pending_bytes + size > self.budget:
            self._over_budget()  # before copying: a large model must not exhaust memory first
            return None
        v = host.float() if half else host if own else host.clone()
        self._pending["%s|%s" % (self._step["step"], name)] = v
        self._pending_bytes += v.numel() * v.element_size()
        return v

    def _record_flat(self, dtype, chunk):
        """The entries of `chunk` (small tensors of one dtype) from one flat copy of them all. Hashed
        here: the worker would hold the GIL through hashes this small (hashlib lets it go from 2 KiB)."""
        torch = self.torch
        try:
            flat = _flatten(torch, [item[1] for item in chunk])
        except RuntimeError:  # e.g. tensors on different devices: these go one by one
            return
        finite = True
        if dtype.is_floating_point and flat.numel():
            total = flat.sum(dtype=torch.float32) if _dtype_name(dtype) in _HALF else flat.sum()
            finite = math.isfinite(total.item())
        if flat.device.type != "cpu":
            flat = flat.cpu()
        size = flat.element_size()
        nbytes = flat.numel() * size
        view = memoryview((ctypes.c_ubyte * nbytes).from_address(flat.data_ptr()) if nbytes else b"")
        name_of = _dtype_name(dtype)
        offset = 0  # bytes
        for item in chunk:
            t = item[1]
            end = offset + item[2]
            item[3] = ({"name": item[0], "dtype": name_of, "shape": list(t.shape),
                        "sha256": hashlib.sha256(view[offset:end]).hexdigest(),
                        "nonfinite": 0 if finite else count_nonfinite(torch, flat[offset // size:end // size])},
                       flat, offset // size)
            offset = end

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
        self._steps.append(self._step)
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
        self.record_many(self._optimizer_pairs(optimizer, self.named(model)[0]))

    def record_state(self, model):
        """param/<name> then buffer/<name>, in named_parameters() / named_buffers() order."""
        if not (self.enabled and self.active):
            return
        self.record_many(self._state_pairs(*self.named(model)))

    def record_grads(self, model):
        """grad/<name> for every parameter with a gradient, in named_parameters() order."""
        if not (self.enabled and self.active):
            return
        self.record_many(("grad/" + n, p.grad) for n, p in self.named(model)[0] if p.grad is not None)

    def record_after_step(self, optimizer, model):
        """record_optimizer then record_state, as one group: one flat copy and one non-finite check
        for all of them (the same entries, digests and stored values as the two calls)."""
        if not (self.enabled and self.active):
            return
        params, buffers = self.named(model)
        self.record_many(itertools.chain(self._optimizer_pairs(optimizer, params),
                                         self._state_pairs(params, buffers)))

    @staticmethod
    def _state_pairs(params, buffers):
        return itertools.chain((("param/" + n, p) for n, p in params), (("buffer/" + n, b) for n, b in buffers))

    @staticmethod
    def _optimizer_pairs(optimizer, params):
        state = optimizer.state
        return (("opt/%s.%s" % (name, key), value)
                for name, p in params
                for key, value in sorted(state.get(p, {}).items())
                if key != "step" and hasattr(value, "dtype"))  # the step counter is no numerics

    def named(self, model):
        """(named_parameters(), named_buffers()) of model as lists, without walking its modules at
        every step: where each tensor lives (its module's _parameters/_buffers dict and key) is
        found once per model, and each call reads the tensors there now, so a parameter or buffer
        assigned anew (`module.weight = Parameter(...)`, a buffer replaced rather than updated in
        place) is the current one. A module, parameter or buffer added after the first call, or a
        parameter tied to another after it, is not seen: the canary models (train mode) keep theirs."""
        if self._slots is None or self._slots[0] is not model:
            self._slots = (model, _slots(model, model.named_parameters(), "_parameters"),
                           _slots(model, model.named_buffers(), "_buffers"))
        _, params, buffers = self._slots
        return ([(n, d[k]) for n, d, k in params if d.get(k) is not None],
                [(n, d[k]) for n, d, k in buffers if d.get(k) is not None])

    def trace_json(self):
        out = {"schema": "repro.trace/1", "entry_order": ENTRY_ORDER, "steps": self.steps}
        if self.capture != "full":
            out["capture"] = self.capture
        return out
