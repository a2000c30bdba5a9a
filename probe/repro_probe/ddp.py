"""Data-parallel training of the built-in workloads (knobs.world_size > 1): DistributedDataParallel
over `world_size` rank processes on this machine, with gloo on the CPU (nccl on CUDA).

The probe process is the parent: it holds the rendezvous store (a TCPStore on 127.0.0.1, port 0:
no port race), starts the ranks as fresh interpreters (spawn, never fork after torch import), and
waits. Every rank builds the same seeded model, follows train.py's seeded batch order and takes a
contiguous slice of each global batch (rank r: rows [r*B/W, (r+1)*B/W)); its dropout masks come
from a generator seeded with (seed, rank). Rank 0 records the trace: module outputs and the model's
output gathered into global-batch order, the loss averaged over the ranks, the gradients after
DDP's all-reduce, parameters and optimizer state as they are. At stored steps and at the end every
rank hashes its parameters; rank 0 compares them (the replica check: a rank whose parameters drift
from rank 0's is a finding, with rank and step).

A rank that fails writes its error to errors/rank<R>.json in a scratch folder; the parent turns
the first one (or the signal that ended a rank) into one ProbeError naming the rank.
"""

import json
import os
import sys
import time
import traceback

from .errors import ProbeError

HOST = "127.0.0.1"
GATHERED = ("fwd/", "out")


def rank_seed(seed, rank):
    """The dropout generator's seed of `rank` (rank 0 keeps the run's seed)."""
    return (seed + 1000003 * rank) % (1 << 63)


def run_distributed(torch, cfg, config_path, device, recorder, result, out_dir):
    """Train with world_size ranks; fills `result` and the parent's `recorder` from rank 0's."""
    import tempfile
    ws = cfg["knobs"]["world_size"]
    from .knobs import ddp_backend
    backend = ddp_backend(cfg["knobs"], device)
    if backend == "nccl" and device.type != "cuda":
        raise ProbeError("unsupported_knob", "ddp_backend nccl on a CPU target: nccl needs CUDA devices; "
                         "use gloo (or the default) on the CPU")
    if cfg["knobs"]["sync_batchnorm"] and device.type != "cuda":
        raise ProbeError("unsupported_knob", "sync_batchnorm on the CPU: DistributedDataParallel refuses "
                         "SyncBatchNorm on CPU tensors; it needs CUDA")
    import torch.distributed as dist
    if not dist.is_available():
        raise ProbeError("unsupported_knob", "world_size %d: this torch build has no torch.distributed" % ws)
    store = make_store(torch, HOST, 0, ws + 1, True, cfg["train"]["collective_timeout"])
    scratch = tempfile.mkdtemp(prefix="repro-ddp-")
    spec = {"config": os.path.abspath(config_path), "port": store.port, "scratch": scratch,
            "backend": backend, "store_steps": None if recorder.store_steps is None else sorted(recorder.store_steps),
            "enabled": recorder.enabled, "budget": recorder.budget}
    import torch.multiprocessing as mp
    try:
        try:
            mp.start_processes(_rank_main, args=(spec,), nprocs=ws, join=True, start_method="spawn")
        except Exception as e:
            raise _rank_failure(scratch, ws, e)
        _take_rank0(scratch, recorder, result)
    finally:
        import shutil
        shutil.rmtree(scratch, True)
    result["distributed"] = {"world_size": ws, "backend": backend, "replicas": result.pop("_replicas")}


def make_store(torch, host, port, world_size, is_master, timeout_seconds):
    """A TCPStore without libuv where the constructor takes the switch (Debian's torch 2.x builds
    the store without libuv; 1.13 has no such parameter)."""
    import datetime
    from torch.distributed import TCPStore
    kwargs = {"timeout": datetime.timedelta(seconds=timeout_seconds)}
    if is_master:
        kwargs["wait_for_workers"] = False
    try:
        return TCPStore(host, port, world_size, is_master, use_libuv=False, **kwargs)
    except TypeError:
        return TCPStore(host, port, world_size, is_master, **kwargs)


def _rank_failure(scratch, ws, exc):
    """The first rank error written (by time), else what spawn said (a signal, an exit code)."""
    found = []
    for r in range(ws):
        path = os.path.join(scratch, "errors", "rank%d.json" % r)
        try:
            with open(path) as f:
                found.append(json.load(f))
        except (OSError, ValueError):
            pass
    if found:
        first = sorted(found, key=lambda e: e["time"])[0]
        return ProbeError(first["type"], "rank %d of %d: %s" % (first["rank"], ws, first["message"]))
    text = str(exc).strip().splitlines()
    return ProbeError("rank_failed", "a rank of %d ended: %s" % (ws, text[0] if text else type(exc).__name__))


def _take_rank0(scratch, recorder, result):
    from .safetensors import read_safetensors
    with open(os.path.join(scratch, "rank0.json")) as f:
        got = json.load(f)
    recorder.steps = got["steps"]
    recorder.nonfinite_entries = got["nonfinite_entries"]
    recorder.seconds = got["trace_seconds"]
    recorder.capture = got["capture"]
    path = os.path.join(scratch, "rank0.safetensors")
    recorder.stored = read_safetensors(path)[0] if os.path.exists(path) else {}
    recorder.stored_bytes = sum(v.numel() * v.element_size() for v in recorder.stored.values())
    for key, value in got["result"].items():
        result[key] = value


def _write_error(scratch, rank, etype, message):
    os.makedirs(os.path.join(scratch, "errors"), exist_ok=True)
    tmp = os.path.join(scratch, "errors", "rank%d.tmp" % rank)
    with open(tmp, "w") as f:
        json.dump({"rank": rank, "type": etype, "message": message[:2000], "time": time.time()}, f)
    os.replace(tmp, os.path.join(scratch, "errors", "rank%d.json" % rank))


def _rank_main(rank, spec):
    """One rank: a fresh interpreter started by spawn."""
    try:
        _rank_train(rank, spec)
    except ProbeError as e:
        _write_error(spec["scratch"], rank, e.type, e.message)
        sys.stderr.write("repro_probe: rank %d: %s: %s\n" % (rank, e.type, e.message))
        raise SystemExit(3)
    except BaseException as e:
        if isinstance(e, SystemExit) and not e.code:
            raise
        traceback.print_exc()
        _write_error(spec["scratch"], rank, "exception", "%s: %s" % (type(e).__name__, e))
        raise SystemExit(3)


def _rank_train(rank, spec):
    import datetime
    from .config import load_config
    from .knobs import apply_env, apply_knobs, resolve_device
    cfg, _, cfg_dir = load_config(spec["config"], "train")
    apply_env(cfg["knobs"]["env"])
    from .allocator import steady_malloc
    steady_malloc()  # as run_train does (allocator.py)
    import torch
    import torch.distributed as dist
    apply_knobs(torch, cfg["knobs"])
    device = resolve_device(torch, cfg["knobs"]["device"])
    ws = cfg["knobs"]["world_size"]
    timeout = cfg["train"]["collective_timeout"]
    store = make_store(torch, HOST, spec["port"], ws + 1, False, timeout)
    dist.init_process_group(spec["backend"], store=store, rank=rank, world_size=ws,
                            timeout=datetime.timedelta(seconds=timeout))
    try:
        from .data import load_data
        data = load_data(cfg, cfg_dir)
        result = {"data": data["summary"], "model": None, "steps": 0, "epochs": [],
                  "nonfinite": {"loss": 0, "entries": 0}}
        recorder = RankRecorder(torch, dist, rank, ws, spec["enabled"],
                                None if spec["store_steps"] is None else set(spec["store_steps"]), spec["budget"])
        from .alerts import AlertCollector
        alerts = AlertCollector()
        with alerts:
            replicas = train_rank(torch, dist, store, cfg, data, device, recorder, result, rank, ws)
        result["nondeterministic_alerts"] = alerts.alerts()
        result["_replicas"] = replicas
        if rank == 0:
            _write_rank0(spec["scratch"], recorder, result)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _write_rank0(scratch, recorder, result):
    from .jsonio import write_json
    from .safetensors import write_safetensors
    if recorder.stored:
        write_safetensors(os.path.join(scratch, "rank0.safetensors"), recorder.stored)
    write_json(os.path.join(scratch, "rank0.json"),
               {"steps": recorder.steps, "nonfinite_entries": recorder.nonfinite_entries,
                "trace_seconds": recorder.seconds, "capture": recorder.capture, "result": result})


def _make_rank_recorder_class():
    from .trace import TraceRecorder

    class RankRecorder(TraceRecorder):
        """Rank 0 records like TraceRecorder, with module outputs and `out` gathered from every
        rank into global-batch order and the loss averaged over the ranks; the other ranks record
        nothing but take part in those collectives (the same hooks fire in the same order on every
        rank, so the collectives match)."""

        def __init__(self, torch, dist, rank, ws, enabled, store_steps, budget):
            TraceRecorder.__init__(self, torch, enabled, store_steps, budget)
            self.dist, self.rank, self.ws = dist, rank, ws
            self.batch_dims = {}  # entry name -> the dim that grows with the batch (None: none)

        def record(self, name, tensor):
            if not (self.enabled and self.active):
                return
            if name == "loss":
                t = tensor.detach().double().clone()
                self.dist.all_reduce(t)
                tensor = t / self.ws
            elif name.startswith(GATHERED):
                tensor = self._gather(name, tensor.detach())
            elif self.rank != 0:
                return
            if self.rank == 0:
                TraceRecorder.record(self, name, tensor)

        def _gather(self, name, t):
            dim = self.batch_dims.get(name.split("#")[0], 0)
            if dim is None:
                return t
            t = t.contiguous()
            parts = [self.torch.empty_like(t) for _ in range(self.ws)]
            self.dist.all_gather(parts, t)
            return self.torch.cat(parts, dim=dim)

        def record_many(self, pairs):  # the base's groups (grads, state after the step) come here
            if self.rank == 0:
                for name, tensor in pairs:
                    self.record(name, tensor)

    return RankRecorder


def RankRecorder(*args):
    return _make_rank_recorder_class()(*args)


def batch_dims(torch, model, leaves, workload, data, rows_a, rows_b, device):
    """For each gathered entry, the dim whose size follows the batch: found by two eval-mode
    forwards (no dropout draw, no BatchNorm update) on batches of two sizes."""
    shapes = [{}, {}]
    handles = []

    def flat(name, o, into):
        if isinstance(o, (tuple, list)):
            for i, x in enumerate(o):
                flat("%s.%d" % (name, i), x, into)
        elif hasattr(o, "shape"):
            into.setdefault(name, tuple(o.shape))

    current = [None]
    for name, module in leaves:
        handles.append(module.register_forward_hook(
            lambda m, i, o, name=name: flat("fwd/" + name, o, current[0])))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for k, rows in enumerate((rows_a, rows_b)):
                current[0] = shapes[k]
                inputs, _ = workload.batch(data["tensors"], rows.to(device))
                flat("out", model(*inputs), shapes[k])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    dims = {}
    for name, a in shapes[0].items():
        b = shapes[1].get(name)
        differ = [d for d in range(min(len(a), len(b or ()))) if a[d] != b[d]] if b is not None else []
        dims[name] = differ[0] if differ else None
    return dims


def train_rank(torch, dist, store, cfg, data, device, recorder, result, rank, ws):
    """train.run_training for one rank of a DistributedDataParallel run; returns the replica check."""
    from . import train as T
    from .workloads import WORKLOADS
    workload = WORKLOADS[cfg["workload"]]
    autocast = T.autocast_factory(torch, cfg["knobs"]["amp"], device)
    data["tensors"] = dict((k, v.to(device)) for k, v in data["tensors"].items())
    model, leaves = T.build_model(torch, cfg, workload, data, device, result)
    local = cfg["train"]["batch_size"] // ws
    probe_rows = torch.arange(min(data["train_rows"], 3))
    recorder.batch_dims = batch_dims(torch, model, leaves, workload, data, probe_rows[:2], probe_rows[:3], device)
    torch.manual_seed(rank_seed(cfg["train"]["seed"], rank))  # dropout masks: (seed, rank)
    from torch.nn.parallel import DistributedDataParallel as DDP
    bucket = cfg["knobs"]["bucket_cap_mb"]
    ddp_kwargs = {} if bucket is None else {"bucket_cap_mb": bucket}
    if device.type == "cuda":
        ddp_kwargs["device_ids"] = [device.index]
    if cfg["knobs"]["sync_batchnorm"]:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = DDP(model, **ddp_kwargs)
    recorder.attach(leaves)
    loop = T.Loop(torch, cfg, workload, model, leaves, data, recorder, device, autocast)
    loop.forward = ddp
    loop.eval_forward = model
    loop.rows_of = lambda rows: rows[rank * local:(rank + 1) * local]
    replicas = {"checked": [], "drift": None}

    def check(step):
        digest = T.params_digest(model)
        store.set("params/%s/%d" % (step, rank), digest)
        if rank != 0:
            return
        replicas["checked"].append(step)
        for r in range(1, ws):
            other = store.get("params/%s/%d" % (step, r)).decode("ascii")
            if other != digest and replicas["drift"] is None:
                replicas["drift"] = {"rank": r, "step": step}
    loop.after_step = lambda step: check(step) if step in recorder.store_steps else None
    loop.evaluate_here = rank == 0
    T._train_epochs(torch, cfg, data, device, recorder, result, model, loop)
    check("end")
    result["final_params_sha256"] = T.params_digest(model)
    return replicas
