"""Data-parallel training (knobs.world_size > 1, ddp.py) end to end with gloo on the CPU: rank 0's
trace in global-batch order, the replica check (also with a planted drift in rank 1), a killed
rank as one error line with no process left, and the usage errors."""

import os
import shutil
import tempfile
import textwrap
import unittest

import helpers

from repro_probe.config import DEFAULTS

SMALL = {"train": {"epochs": 1, "batch_size": 32}, "model": {"hidden": [16, 8]}}


def processes_with(marker):
    """pids of live processes whose environment holds `marker` (the ranks inherit the test's env)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


# a sitecustomize that acts in rank 1 only (torch.distributed knows its rank once the group is up):
# after its 3rd optimizer step it either nudges one parameter (a replica drift) or kills itself
SITE = textwrap.dedent("""
    import os, signal
    ACTION = os.environ.get("REPRO_TEST_RANK1", "").split("-")[0]
    if ACTION:
        import torch
        import torch.distributed as dist
        count = [0]

        def patch(cls):
            original = cls.step

            def step(self, *a, **k):
                out = original(self, *a, **k)
                if dist.is_available() and dist.is_initialized() and dist.get_rank() == 1:
                    count[0] += 1
                    if count[0] == 3:
                        if ACTION == "kill":
                            os.kill(os.getpid(), signal.SIGKILL)
                        with torch.no_grad():
                            p = self.param_groups[0]["params"][0]
                            p.view(-1)[0] += 1e-3
                return out
            cls.step = step
        patch(torch.optim.Adam)
""")


class DistributedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="repro-probe-ddp-")
        cls.sha = helpers.make_tokens(os.path.join(cls.dir, "data.safetensors"), rows=200)
        cls.site = os.path.join(cls.dir, "site")
        os.makedirs(cls.site)
        with open(os.path.join(cls.site, "sitecustomize.py"), "w") as f:
            f.write(SITE)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_ws(self, name, ws, workload="attention", env=None, **sections):
        d = os.path.join(self.dir, name)
        os.makedirs(d)
        shutil.copy(os.path.join(self.dir, "data.safetensors"), d)
        merged = {k: dict(v) for k, v in SMALL.items()}
        for k, v in sections.items():
            merged.setdefault(k, {}).update(v)
        merged.setdefault("knobs", {}).update({"world_size": ws})
        cfg = helpers.write_config(d, self.sha, workload=workload, **merged)
        out = os.path.join(d, "out")
        extra = {}
        if env:
            extra = dict(env, PYTHONPATH=self.site + os.pathsep + helpers.PROBE_DIR)
        p = helpers.run_probe("train", cfg, out, extra_env=extra, timeout=300)
        return p, out

    def test_world_size_2_trace_in_global_batch_order_and_replicas_agree(self):
        p, out = self.run_ws("ws2", 2)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        run = helpers.load_json(os.path.join(out, "run.json"))
        d = run["distributed"]
        self.assertEqual((d["world_size"], d["backend"]), (2, "gloo"))
        self.assertIsNone(d["replicas"]["drift"])
        self.assertIn("end", d["replicas"]["checked"])
        self.assertEqual(run["knobs_effective"]["world_size"], 2)
        self.assertEqual(run["knobs_effective"]["ddp_backend"], "gloo")
        self.assertEqual(run["knobs_effective"]["bucket_cap_mb"], 25)
        # 160 training rows (200 - 20 % validation) in batches of 32: 5 full batches, none dropped
        self.assertEqual(run["steps"], 5)
        trace = helpers.load_json(os.path.join(out, "trace.json"))
        step0 = dict((e["name"], e) for e in trace["steps"][1]["entries"])
        # module outputs gathered from both ranks: the global batch of 32 rows, not a rank's 16
        self.assertEqual(step0["fwd/tok"]["shape"][0], 32)
        self.assertEqual(step0["out"]["shape"][0], 32)
        self.assertEqual(step0["fwd/pos"]["shape"], [16, 16])  # no batch dim: rank 0's, not gathered
        self.assertIn("loss", step0)
        self.assertTrue(any(n.startswith("grad/") for n in step0))
        fp = helpers.load_json(os.path.join(out, "fingerprint.json"))
        self.assertEqual(fp["knobs"]["world_size"], 2)

    def test_world_size_2_twice_is_bitwise_the_same(self):
        p1, out1 = self.run_ws("ws2-a", 2)
        p2, out2 = self.run_ws("ws2-b", 2)
        self.assertEqual((p1.returncode, p2.returncode), (0, 0), p1.stderr[-2000:] + p2.stderr[-2000:])
        with open(os.path.join(out1, "trace.json"), "rb") as a, open(os.path.join(out2, "trace.json"), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_a_rank_that_drifts_is_named_with_its_step(self):
        p, out = self.run_ws("drift", 2, env={"REPRO_TEST_RANK1": "nudge"})
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        drift = helpers.load_json(os.path.join(out, "run.json"))["distributed"]["replicas"]["drift"]
        self.assertIsNotNone(drift)
        self.assertEqual(drift["rank"], 1)
        # the nudge lands after the 3rd step (step 2): the first check after it is the last step or the end
        self.assertIn(drift["step"], [4, "end"])

    def test_a_killed_rank_is_one_line_and_leaves_no_process(self):
        marker = "kill-%d" % os.getpid()
        p, out = self.run_ws("kill", 2, env={"REPRO_TEST_RANK1": marker})
        self.assertEqual(p.returncode, 3)
        run = helpers.load_json(os.path.join(out, "run.json"))
        self.assertEqual(run["error"]["type"], "rank_failed")
        self.assertIn("SIGKILL", run["error"]["message"])
        self.assertNotIn("\n", run["error"]["message"])
        self.assertEqual(processes_with("REPRO_TEST_RANK1=" + marker), [])

    def test_usage_errors(self):
        p, _ = self.run_ws("odd", 3)
        self.assertEqual(p.returncode, 3)
        self.assertIn("does not split evenly over world_size 3", p.stderr)
        p, _ = self.run_ws("compile", 2, knobs={"compile": True})
        self.assertIn("compile", p.stderr)
        self.assertIn("world_size", p.stderr)
        p, _ = self.run_ws("nccl", 2, knobs={"ddp_backend": "nccl"})
        self.assertIn("nccl needs CUDA", p.stderr)
        p, _ = self.run_ws("syncbn", 2, knobs={"sync_batchnorm": True})
        self.assertIn("SyncBatchNorm", p.stderr)

    def test_defaults_keep_world_size_1(self):
        self.assertEqual(DEFAULTS["knobs"]["world_size"], 1)
        self.assertFalse(DEFAULTS["train"]["drop_last"])


if __name__ == "__main__":
    unittest.main()
