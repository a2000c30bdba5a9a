"""Reports how the script was started: sys.path[0], an import from script.include, the working
directory (argv[1] is the one expected) and whether the bootstrap directory stayed on sys.path."""

import os
import sys

import torch
from tracer_include_mod import VALUE

from repro_probe import report_metric

here = os.path.dirname(os.path.abspath(__file__))
report_metric("path0_is_script_dir", float(os.path.abspath(sys.path[0]) == here))
report_metric("include_value", VALUE)
report_metric("cwd_as_expected", float(os.getcwd() == os.path.abspath(sys.argv[1])))
report_metric("argv0_is_script", float(os.path.abspath(sys.argv[0]) == os.path.abspath(__file__)))
report_metric("bootstrap_on_path", float(any(p.endswith(os.path.join("repro_probe", "bootstrap")) for p in sys.path)))
model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model(torch.ones(3, 2)).sum().backward()
optimizer.step()
