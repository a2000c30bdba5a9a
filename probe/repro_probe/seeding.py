"""Seeding for script mode: every generator the user's script may leave unseeded (python `random`,
numpy's global generator, torch and CUDA, each DataLoader's generator and worker_init_fn), and the
bootstrap that `bootstrap/sitecustomize.py` runs in the Python processes the script starts."""

import json
import os
import random
import sys

TRACER_ENV = "REPRO_PROBE_TRACER"  # JSON {"seed", "knobs"}: set for the script's process tree
ROLE_ENV = "REPRO_PROBE_ROLE"  # "main" for the process that runs the script, "child" below it


def loader_seed(seed, index):
    """The seed of the generator given to the index-th DataLoader built without one."""
    return (seed * 1000003 + 7919 * (index + 1)) % (1 << 63)


def _numpy():
    try:
        import numpy
        return numpy
    except Exception:
        return None


def seed_all(torch, seed):
    """Seed python random, numpy (when importable), torch and CUDA; returns what was seeded."""
    random.seed(seed)
    numpy = _numpy()
    if numpy is not None:
        numpy.random.seed(seed % (1 << 32))
    # also seeds every CUDA device, lazily: CUDA is not initialised here (a fork after that would
    # leave DataLoader workers without CUDA)
    torch.manual_seed(seed)
    return {"python_random": True, "numpy": numpy is not None, "torch": True, "cuda": True}


def seed_worker(worker_id):
    """Default DataLoader worker_init_fn (PyTorch's reproducibility recipe): python random and
    numpy's global generator from the worker's torch seed (base_seed + worker_id)."""
    import torch
    worker_seed = torch.initial_seed() % (1 << 32)
    random.seed(worker_seed)
    numpy = _numpy()
    if numpy is not None:
        numpy.random.seed(worker_seed)


def patch_dataloader(torch, seed, counts):
    """Give every DataLoader built without one a seeded `generator` (batch order and worker base
    seeds then no longer depend on how much of the global RNG the script consumed) and, with
    workers, `seed_worker` as worker_init_fn. What the script passes itself is kept."""
    import functools
    import inspect
    cls = torch.utils.data.DataLoader
    original = cls.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:  # let DataLoader raise its own error
            return original(self, *args, **kwargs)
        given = bound.arguments
        if "generator" in signature.parameters and given.get("generator") is None:
            given["generator"] = torch.Generator().manual_seed(loader_seed(seed, counts["loaders"]))
            counts["generators"] += 1
        workers = given.get("num_workers") or 0
        if "worker_init_fn" in signature.parameters and given.get("worker_init_fn") is None and workers > 0:
            given["worker_init_fn"] = seed_worker
            counts["worker_init_fns"] += 1
        counts["loaders"] += 1
        return original(*bound.args, **bound.kwargs)

    cls.__init__ = __init__
    return lambda: setattr(cls, "__init__", original)


class _AfterImport(object):
    """A sys.meta_path finder that runs a callback once a top-level module has been executed."""

    def __init__(self, callbacks):
        self.callbacks = callbacks  # {module name: fn(module)}

    def find_spec(self, name, path=None, target=None):
        if name not in self.callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        callback = self.callbacks.pop(name)
        exec_module = loader.exec_module

        def exec_then_callback(module):
            exec_module(module)
            try:
                callback(module)
            except Exception as e:
                sys.stderr.write("repro_probe: warning: seeding %s in child %d failed: %s\n" % (name, os.getpid(), e))
        loader.exec_module = exec_then_callback  # a loader instance belongs to this one spec
        return spec


def bootstrap_child():
    """In a Python process started by the script (sitecustomize): seed python random now, numpy
    and torch when they are imported (and apply the torch knobs). Children are not traced."""
    payload = json.loads(os.environ[TRACER_ENV])
    seed = int(payload["seed"])
    random.seed(seed)

    def on_numpy(numpy):
        numpy.random.seed(seed % (1 << 32))

    def on_torch(torch):
        torch.manual_seed(seed)
        knobs = payload.get("knobs")
        if knobs:
            from .knobs import apply_knobs
            apply_knobs(torch, dict(knobs, env={}))

    callbacks = {}
    for name, fn in (("numpy", on_numpy), ("torch", on_torch)):
        if name in sys.modules:
            fn(sys.modules[name])
        else:
            callbacks[name] = fn
    if callbacks:
        sys.meta_path.insert(0, _AfterImport(callbacks))
