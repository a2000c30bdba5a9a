"""script.nproc > 1: the script under torchrun (repro_probe/torchrun.py), rank 0 traced, the other ranks
untraced, their final parameters against rank 0's (the replica check); DistributedDataParallel
unwrapped so names match a world-size-1 run; OMP_NUM_THREADS (torchrun's) in the fingerprint; and the
launch mistakes the tracer turns into one line: env:// without torchrun, nccl without CUDA, training in
torch.multiprocessing.spawn children."""

import os
import sys
import unittest

import torch

import helpers
from tracer_helpers import SCRIPTS, ScriptCase

from repro_probe.scriptmode import child_command

SCRIPT = "ddp_gloo.py"


class ScriptNprocTest(ScriptCase, unittest.TestCase):
    def ranked(self, name, args=(), nproc=2, **script):
        script = dict(script, nproc=nproc)
        return self.probe(name, SCRIPT, list(args), script=script)

    def run_names(self, r):
        return [(s["step"], e["name"]) for s in r.trace["steps"] for e in s["entries"]]

    def setUp(self):  # torchrun's OMP_NUM_THREADS must show (the caller's would win)
        self._omp = os.environ.pop("OMP_NUM_THREADS", None)

    def tearDown(self):
        if self._omp is not None:
            os.environ["OMP_NUM_THREADS"] = self._omp

    def test_names_match_world_size_1(self):
        one, two = self.ranked("one", nproc=1), self.ranked("two")
        self.assertOk(one)
        self.assertOk(two)
        self.assertEqual(self.run_names(two), self.run_names(one))
        self.assertIn((0, "fwd/0"), self.run_names(two))  # DDP's module. prefix is gone
        init = lambda r: [e for s in r.trace["steps"] if s["step"] == "init" for e in s["entries"]]  # noqa: E731
        self.assertEqual(init(two), init(one))  # same seed, same replicas
        self.assertNotIn("distributed", one.run)

    def test_bare_linear_in_ddp_is_the_root(self):
        one = self.ranked("linear1", ["--model", "linear"], nproc=1)
        two = self.ranked("linear2", ["--model", "linear"])
        self.assertOk(two)
        self.assertEqual(self.run_names(two), self.run_names(one))
        self.assertEqual([n for s, n in self.run_names(two) if s == 0][:2], ["out", "loss"])  # no fwd/ of the wrapped
        self.assertEqual(two.script["roots"], [{"label": "", "type": "Linear", "compiled": False}])

    def test_replicas_agree(self):
        r = self.ranked("two")
        self.assertEqual(r.run["distributed"], {"world_size": 2, "backend": "gloo",
                                                "replicas": {"checked": ["end"], "drift": None}})
        self.assertEqual(r.run["steps"], 4)

    def test_omp_num_threads_recorded(self):
        one, two = self.ranked("one", nproc=1), self.ranked("two")
        fp = lambda r: helpers.load_json(os.path.join(r.out, "fingerprint.json"))["env"]  # noqa: E731
        self.assertEqual(fp(two).get("OMP_NUM_THREADS"), "1")  # torchrun's, at nproc > 1
        self.assertNotIn("OMP_NUM_THREADS", fp(one))
        self.assertEqual(two.script["env"]["USE_LIBUV"], "0")

    def test_observer_at_world_size_2(self):
        r = self.ranked("observer", observer=True)
        self.assertOk(r)
        self.assertTrue(r.script["observer_check"]["equal"], r.script["observer_check"])
        self.assertIsNone(r.run["distributed"]["replicas"]["drift"])

    def test_rank_drift_is_named(self):
        r = self.ranked("drift", ["--mode", "drift"])
        self.assertOk(r)
        self.assertEqual(r.run["distributed"]["replicas"], {"checked": ["end"], "drift": {"rank": 1, "step": "end"}})
        self.assertIn("replica check: rank 1", r.proc.stderr)

    def test_rank_error_names_the_rank(self):
        r = self.ranked("raise", ["--mode", "raise"])
        self.assertEqual(r.proc.returncode, 3)
        self.assertEqual(r.run["error"], {"type": "script_error", "message": "rank 1: ValueError: rank 1 went wrong"})

    def assertLaunchError(self, r, type_, words):
        self.assertEqual(r.proc.returncode, 3, r.proc.stderr[-2000:])
        self.assertEqual(r.run["error"]["type"], type_)
        self.assertIn(words, r.run["error"]["message"])
        self.assertNotIn("\n", r.run["error"]["message"])
        self.assertNotIn("Traceback", r.proc.stderr)  # one line, not the script's traceback

    def test_env_init_without_torchrun(self):
        r = self.ranked("env", ["--mode", "env"], nproc=1)
        self.assertLaunchError(r, "distributed_env", "RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT are not set")

    @unittest.skipIf(torch.cuda.is_available(), "a CUDA target takes nccl")
    def test_nccl_on_cpu(self):
        r = self.ranked("nccl", ["--mode", "nccl"], nproc=1)
        self.assertLaunchError(r, "nccl_unavailable", "nccl backend, which needs CUDA")

    def test_spawn_children(self):
        r = self.ranked("spawn", ["--mode", "spawn"], nproc=1)
        self.assertLaunchError(r, "spawn_children", "torch.multiprocessing.spawn children, which are not traced")

    def test_notebook_refused(self):
        r = self.probe("notebook", "lecture.ipynb", script={"nproc": 2})
        self.assertEqual(r.proc.returncode, 3)
        self.assertEqual(r.run["error"]["type"], "invalid_config")
        self.assertIn("a notebook runs in one process", r.run["error"]["message"])

    def test_nproc_range(self):
        r = self.probe("seventeen", SCRIPT, script={"nproc": 17})
        self.assertEqual(r.run["error"]["type"], "invalid_config")
        self.assertIn("script.nproc", r.run["error"]["message"])

    def test_child_command(self):
        run = ["-m", "repro_probe.scriptrun", "traced", "--config", "/c.json", "--out", "/o"]
        self.assertEqual(child_command("traced", "/c.json", "/o", None), [sys.executable] + run)
        cmd = child_command("traced", "/c.json", "/o", "/p.json", 3, "/ranks")
        self.assertEqual(cmd[:6], [sys.executable, "-m", "repro_probe.torchrun", "--standalone",
                                   "--nproc_per_node", "3"])
        self.assertEqual(cmd[-11:], run + ["--params", "/p.json", "--ranks", "/ranks"])
        self.assertTrue(os.path.isfile(os.path.join(SCRIPTS, SCRIPT)))


if __name__ == "__main__":
    unittest.main()
