"""The training loop every workload shares: seeded init and batch order, optional AMP/compile,
per-step trace (forward outputs, loss, gradients, parameters and buffers) and per-epoch validation.
What differs per workload (model, batches, loss, outcome metric) comes from workloads/."""

import contextlib
import math
import os
import random
import time
import warnings

from . import compiled as compiled_mod
from .errors import ProbeError
from .trace import leaf_modules
from .workloads import WORKLOADS


def seed_everything(torch, seed):
    random.seed(seed)
    try:
        import numpy
        numpy.random.seed(seed % (1 << 32))
    except Exception:
        pass
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def autocast_factory(torch, amp, device):
    """A callable returning a fresh autocast context (nullcontext when amp is off)."""
    if amp == "off":
        return contextlib.nullcontext
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    if not hasattr(torch, "autocast"):
        raise ProbeError("unsupported_knob", "amp=%s needs torch.autocast (torch >= 1.10)" % amp)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ctx = torch.autocast(device_type=device.type, dtype=dtype)
        except (RuntimeError, ValueError) as e:
            raise ProbeError("unsupported_knob", "amp=%s on %s: %s" % (amp, device.type, e))
    if getattr(ctx, "_enabled", True) is False or any("not supported" in str(w.message) for w in caught):
        msg = "; ".join(str(w.message) for w in caught) or "autocast disabled itself"
        raise ProbeError("unsupported_knob", "amp=%s on %s (torch %s): %s" % (amp, device.type, torch.__version__, msg))
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def batches_per_epoch(train_rows, batch_size, drop_last=False):
    """Batches of each epoch; a trailing batch of one row is dropped (BatchNorm needs two), and with
    drop_last every trailing partial batch (data-parallel runs: each rank takes an equal slice)."""
    if drop_last:
        return train_rows // batch_size
    n = (train_rows + batch_size - 1) // batch_size
    return n - 1 if train_rows % batch_size == 1 else n


def default_store_steps(epochs, nb):
    return {0, 1} | {(e + 1) * nb - 1 for e in range(epochs)}


def _mean(values):
    return sum(values) / len(values) if values else None


def evaluate(torch, workload, forward, model, data, autocast):
    """The workload's validation outcome over rows [train_rows, rows), in chunks, in eval mode."""
    start, rows = data["train_rows"], data["rows"]
    if rows == start:
        return {"val_loss": None, "val_accuracy": None, "val_rmse": None}
    loss_sum, metric_sum = 0.0, 0
    model.eval()
    with torch.no_grad():
        for b in range(start, rows, workload.EVAL_CHUNK):
            inputs, y = workload.batch(data["tensors"], slice(b, min(rows, b + workload.EVAL_CHUNK)))
            with autocast():
                out = forward(*inputs)
            loss, metric = workload.val_sums(torch, out.float(), y)
            loss_sum += loss
            metric_sum += metric
    model.train()
    return workload.outcome(loss_sum, metric_sum, rows - start)


def build_model(torch, cfg, workload, data, device, result):
    """Seed, build the workload's model on the device, describe it in `result`."""
    seed_everything(torch, cfg["train"]["seed"])
    model = workload.build_model(torch, data, cfg["model"]).to(device)
    leaves = leaf_modules(model)
    paths = [m.attention_path for _, m in leaves if hasattr(m, "attention_path")]
    result["model"] = {"parameters": sum(p.numel() for p in model.parameters()),
                       "modules": [n for n, _ in leaves],
                       "module_types": dict((n, type(m).__name__) for n, m in leaves),
                       "attention_path": paths[0] if paths else None}
    return model, leaves


def make_optimizer(torch, train_cfg, model):
    if train_cfg["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=train_cfg["lr"])
    return torch.optim.SGD(model.parameters(), lr=train_cfg["lr"], momentum=0.9)


def make_scaler(torch, amp, device):
    """A GradScaler for fp16 on CUDA, else None."""
    if amp != "fp16" or device.type != "cuda":
        return None
    amp_mod = getattr(torch, "amp", None)
    if amp_mod is not None and hasattr(amp_mod, "GradScaler"):  # torch >= 2.3
        return amp_mod.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


class Loop(object):
    """One training run's state; step() is one traced optimizer step. A compiled run records only
    the boundaries the compiled program keeps (no module hooks: they would break its graph), and
    at stored steps an eager replay of the model on the same batch (compiled.EagerReplay)."""

    def __init__(self, torch, cfg, workload, model, leaves, data, recorder, device, autocast):
        self.torch, self.workload, self.model, self.data, self.recorder = torch, workload, model, data, recorder
        knobs = cfg["knobs"]
        self.autocast = autocast
        self.compiled = bool(knobs["compile"])
        self.forward = torch.compile(model) if self.compiled else model
        self.replay = compiled_mod.EagerReplay(torch, model, leaves, recorder) if self.compiled else None
        self.optimizer = make_optimizer(torch, cfg["train"], model)
        self.scaler = make_scaler(torch, knobs["amp"], device)
        self.criterion = workload.criterion(torch)
        self.capture = None  # capture.Capture / OrderCapture when trace.capture is set: armed for its step only
        # data-parallel runs (ddp.py): this rank's slice of each global batch, the module validation
        # runs on (not the DDP wrapper), a call after each step, and whether this rank validates
        self.rows_of = None
        self.eval_forward = None
        self.after_step = None
        self.evaluate_here = True

    def step(self, rows, step, epoch):
        """Returns the loss as a Python float."""
        recorder, optimizer, scaler = self.recorder, self.optimizer, self.scaler
        if self.rows_of is not None:
            rows = self.rows_of(rows)
        inputs, y = self.workload.batch(self.data["tensors"], rows)
        recorder.begin(step, epoch)
        capture = self.capture if self.capture is not None and self.capture.step == step else None
        if capture is not None:
            capture.arm()  # hooks that only read (copy or hash) inputs and gradients: numerics unchanged
        if self.replay is not None and recorder.storing:
            self.replay(inputs, self.autocast)  # before the update: the parameters the compiled forward sees
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            out = self.forward(*inputs)
            loss = self.criterion(out, y)
        if capture is not None:
            capture.after_forward()  # the forward pre-hook goes; backward hooks stay for loss.backward()
        recorder.record_output("out", out.detach())
        recorder.record("loss", loss.detach().double())
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if capture is not None:
            if scaler is not None:
                capture.loss_scale = float(scaler.get_scale())
            capture.after_backward()  # capture_unsupported if a backward capture saw no gradient
        recorder.record_grads(self.model)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        recorder.record_after_step(optimizer, self.model)
        recorder.end()
        return float(loss.detach().double())

    def evaluate(self):
        if not self.evaluate_here:
            return {"val_loss": None, "val_accuracy": None, "val_rmse": None}
        forward = self.eval_forward if self.eval_forward is not None else self.forward
        return evaluate(self.torch, self.workload, forward, self.model, self.data, self.autocast)


def run_training(torch, cfg, data, device, recorder, result, out_dir=None):
    """Train; fills `result` (model, steps, epochs, final, nonfinite) as it goes. With trace.capture
    set, the module's inputs at that step (and its grad_output with backward true) go to
    capture.safetensors / capture.json in out_dir (by default the command line's --out), or with
    backward "order" the leaves' backward firing order goes to capture.json; training stops after
    that step (capture.py)."""
    workload = WORKLOADS[cfg["workload"]]
    autocast = autocast_factory(torch, cfg["knobs"]["amp"], device)  # an unsupported amp fails first
    data["tensors"] = dict((k, v.to(device)) for k, v in data["tensors"].items())
    model, leaves = build_model(torch, cfg, workload, data, device, result)
    capture = None
    spec = cfg["trace"].get("capture")
    if spec is not None:
        from .capture import make_capture
        if cfg["knobs"]["compile"]:
            raise ProbeError("invalid_config", "trace.capture needs an eager run (knobs.compile off): "
                             "a compiled program has no module calls to hook")
        # a module's inputs (and grad_output with backward true), or backward's firing order of the leaves
        criterion = workload.criterion(torch)  # "(loss)": the loss is captured and replayed as a module
        # invalid_config if no such module
        capture, result["capture"] = make_capture(torch, model, leaves, spec, criterion)
    cache = None
    recorder.hash_in_background()  # large entries hashed on a spare CPU (trace.py), same digests
    if cfg["knobs"]["compile"]:
        cache = compiled_mod.prepare(torch, scratch_dir())
        recorder.capture = "boundaries"
    else:
        recorder.attach(leaves)  # forward hooks on every leaf: eager runs only
    loop = Loop(torch, cfg, workload, model, leaves, data, recorder, device, autocast)
    loop.capture = capture
    if capture is not None:
        loop.criterion = criterion  # the instance the hooks are on
    try:
        _train_epochs(torch, cfg, data, device, recorder, result, model, loop)
    except ProbeError:
        raise
    except Exception as e:
        failure = compiled_mod.compile_failure(e, torch.__version__) if cache else None
        if failure is None and capture is not None:
            from .capture import hook_failure
            failure = hook_failure(e)  # a full backward hook on a module whose output is modified in place
        if failure is None:
            raise
        raise failure
    result["final_params_sha256"] = params_digest(model)
    if capture is not None:
        directory = out_dir if out_dir is not None else _out_dir_from_argv()
        if directory is None:
            raise ProbeError("invalid_config", "trace.capture: no out dir to write capture.json in")
        result["capture"]["captured"] = capture.write(directory) is not None
    if cache:
        stats = compiled_mod.compile_stats(torch)
        regions = compiled_mod.fused_regions(cache, result["model"]["module_types"])
        result["compiled"] = dict(stats, regions=regions, capture="boundaries",
                                  replay="eager replay of every leaf at stored steps (replay/...)")


def _out_dir_from_argv():
    """The --out of `python3 -m repro_probe train --config C --out DIR` (run_training's caller does
    not pass its out dir)."""
    import sys
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == "--out" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--out="):
            return a[len("--out="):]
    return None


def scratch_dir():
    """Where compiled kernels go: the host's exec-allowed scratch area when it gives one."""
    import atexit
    import shutil
    import tempfile
    given = os.environ.get("REPRO_PROBE_SCRATCH")
    if given:
        os.makedirs(given, exist_ok=True)
        return given
    made = tempfile.mkdtemp(prefix="repro-probe-scratch-")
    atexit.register(shutil.rmtree, made, True)
    return made


def params_digest(model):
    """sha256 over every parameter's bytes in named_parameters() order: the end state of a run,
    compared by the observer check (traced vs untraced) without storing values."""
    import hashlib
    from .safetensors import tensor_bytes
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode("utf-8"))
        h.update(tensor_bytes(p.detach()))
    return h.hexdigest()


def _train_epochs(torch, cfg, data, device, recorder, result, model, loop):
    t = cfg["train"]
    # data-parallel ranks take equal slices: a trailing partial batch is always dropped there
    drop_last = t.get("drop_last", False) or cfg["knobs"].get("world_size", 1) > 1
    nb = batches_per_epoch(data["train_rows"], t["batch_size"], drop_last)
    if recorder.store_steps is None:
        recorder.store_steps = default_store_steps(t["epochs"], nb)
    recorder.begin("init", None)
    recorder.record_state(model)
    recorder.end()

    gen = torch.Generator().manual_seed(t["seed"])
    step = 0
    stop = loop.capture.step + 1 if loop.capture is not None else None  # a capture run ends after its step
    model.train()
    for epoch in range(t["epochs"]):
        if stop is not None and step >= stop:
            break
        t0 = time.time()
        perm = torch.randperm(data["train_rows"], generator=gen)
        losses = []
        for b in range(nb):
            if stop is not None and step >= stop:
                break
            value = loop.step(perm[b * t["batch_size"]:(b + 1) * t["batch_size"]].to(device), step, epoch)
            if not math.isfinite(value):
                result["nonfinite"]["loss"] += 1
            if loop.after_step is not None:
                loop.after_step(step)
            losses.append(value)
            step += 1
            result["steps"] = step
        entry = {"epoch": epoch, "train_loss": _mean(losses)}
        entry.update(loop.evaluate())
        entry.update(seconds=time.time() - t0, last_step=step - 1)
        result["epochs"].append(entry)
    last = result["epochs"][-1]
    result["final"] = dict((k, last[k]) for k in ("val_accuracy", "val_loss", "val_rmse", "train_loss"))
    recorder.finish_hashing()  # the worker's last digests: their time counts in train_seconds
    result["nonfinite"]["entries"] = recorder.nonfinite_entries
