"""Starts a child python: the bootstrap sitecustomize runs there (and chains to the one it shadows),
seeding python random and numpy; the values come back as metrics."""

import json
import os
import subprocess
import sys

import torch

from repro_probe import report_metric

code = ("import json, os, random, sys\n"
        "out = {'pid': os.getpid(), 'random': random.random()}\n"
        "try:\n    import numpy\n    out['numpy'] = float(numpy.random.rand())\n"
        "except ImportError:\n    pass\n"
        "print(json.dumps(out))\n")
child = json.loads(subprocess.check_output([sys.executable, "-c", code]).decode())
report_metric("main_pid", os.getpid())
report_metric("child_pid", child["pid"])
report_metric("child_random", child["random"])
if "numpy" in child:
    report_metric("child_numpy", child["numpy"])
report_metric("hash_seed_is_set", 1.0 if os.environ.get("PYTHONHASHSEED") else 0.0)
model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model(torch.ones(3, 2)).sum().backward()
optimizer.step()
