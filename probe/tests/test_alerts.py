"""deterministic="warn": the nondeterministic-op alerts torch raises under warn_only are collected
(deduplicated, counted, capped), other warnings pass through. On the CPU none of the workloads'
layers alert, so the op that does is Tensor.put_(..., accumulate=False) (alerts on 1.13 and 2.6)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import warnings

import helpers
import torch

from repro_probe import alerts
from repro_probe.alerts import AlertCollector
from repro_probe.config import DEFAULTS
from repro_probe.errors import ProbeError
from repro_probe.knobs import apply_knobs

HAS_WARN_ONLY = hasattr(torch, "is_deterministic_algorithms_warn_only_enabled")


def put_alert():
    t = torch.zeros(4)
    t.put_(torch.tensor([0, 1]), torch.tensor([1.0, 2.0]), accumulate=False)


@unittest.skipUnless(HAS_WARN_ONLY, "use_deterministic_algorithms(warn_only=True) needs torch >= 1.11")
class AlertCollectorTest(unittest.TestCase):
    def setUp(self):
        torch.use_deterministic_algorithms(True, warn_only=True)
        self.addCleanup(torch.use_deterministic_algorithms, False)

    def test_put_alerts_counted_once_per_call(self):
        with AlertCollector() as collector:
            for _ in range(3):
                put_alert()
        got = collector.alerts()
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["count"], 3)
        self.assertTrue(got[0]["message"].startswith("put_ does not have a deterministic implementation"))
        self.assertNotIn("Triggered internally", got[0]["message"])  # build-specific source location dropped

    def test_other_warnings_pass_through(self):
        with warnings.catch_warnings(record=True) as outer:
            warnings.simplefilter("always")
            with AlertCollector() as collector:
                warnings.warn("something else", UserWarning)
                put_alert()
        self.assertEqual([str(w.message) for w in outer], ["something else"])
        self.assertEqual(sum(a["count"] for a in collector.alerts()), 1)

    def test_attention_backward_text_counts_too(self):
        text = ("Memory Efficient attention defaults to a non-deterministic algorithm. To explicitly enable "
                "determinism call torch.use_deterministic_algorithms(True, warn_only=False). (Triggered internally "
                "at ../aten/src/ATen/native/transformers/cuda/attention_backward.cu:102.)")
        with AlertCollector() as collector:
            warnings.warn(text, UserWarning)
        self.assertEqual(collector.alerts(), [{"message": text.split(" (Triggered")[0], "count": 1}])

    def test_capped_in_number_and_length(self):
        with AlertCollector() as collector:
            for i in range(alerts.MAX_ALERTS + 5):
                warnings.warn("op%d does not have a deterministic implementation %s" % (i, "x" * 1000))
        got = collector.alerts()
        self.assertEqual(len(got), alerts.MAX_ALERTS + 1)
        self.assertEqual(got[-1], {"message": alerts.OTHER, "count": 5})
        self.assertTrue(all(len(a["message"]) <= alerts.MAX_MESSAGE for a in got))


# Runs the probe's train mode with the mlp workload's model wrapped so that every forward calls put_.
SCRIPT = """
import sys
from repro_probe.workloads import mlp
build = mlp.build_model

def build_with_put(torch, data, model_cfg):
    model = build(torch, data, model_cfg)
    inner = model.forward

    def forward(*inputs):
        t = torch.zeros(4)
        t.put_(torch.tensor([0, 1]), torch.tensor([1.0, 2.0]), accumulate=False)
        return inner(*inputs)
    model.forward = forward
    return model

mlp.build_model = build_with_put
from repro_probe.runner import run_train
sys.exit(run_train(sys.argv[1], sys.argv[2]))
"""


@unittest.skipUnless(HAS_WARN_ONLY, "use_deterministic_algorithms(warn_only=True) needs torch >= 1.11")
class AlertsInRunJsonTest(unittest.TestCase):
    def run_with_put(self, deterministic):
        d = tempfile.mkdtemp(prefix="repro-alerts-")
        self.addCleanup(shutil.rmtree, d, True)
        sha = helpers.make_data(os.path.join(d, "data.safetensors"), rows=100)
        cfg = helpers.write_config(d, sha, train={"epochs": 1, "batch_size": 40},
                                   knobs={"deterministic": deterministic})
        out = os.path.join(d, "out")
        r = subprocess.run([sys.executable, "-c", SCRIPT, cfg, out], env=dict(os.environ, PYTHONPATH=helpers.PROBE_DIR),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
        return r, helpers.load_json(os.path.join(out, "run.json"))

    def test_alerts_collected_during_training(self):
        r, run = self.run_with_put("warn")
        self.assertEqual((r.returncode, run["status"]), (0, "ok"), r.stderr)
        self.assertEqual(len(run["nondeterministic_alerts"]), 1, run["nondeterministic_alerts"])
        alert = run["nondeterministic_alerts"][0]
        self.assertTrue(alert["message"].startswith("put_ does not have a deterministic implementation"))
        # one per forward: 2 training steps (80 rows, batches of 40) and 1 validation chunk
        self.assertEqual(alert["count"], run["steps"] + 1)

    def test_no_alerts_without_warn(self):
        r, run = self.run_with_put(False)
        self.assertEqual(run["status"], "ok", r.stderr)
        self.assertEqual(run["nondeterministic_alerts"], [])


class UnsupportedWarnTest(unittest.TestCase):
    def test_older_torch_refuses_warn(self):
        class Torch110(object):
            """torch 1.10's use_deterministic_algorithms has no warn_only."""
            __version__ = "1.10.2"

            def use_deterministic_algorithms(self, mode):
                raise AssertionError("not reached: warn_only is passed")
        with self.assertRaises(ProbeError) as ctx:
            apply_knobs(Torch110(), dict(DEFAULTS["knobs"], deterministic="warn"))
        self.assertEqual(ctx.exception.type, "unsupported_knob")


if __name__ == "__main__":
    unittest.main()
