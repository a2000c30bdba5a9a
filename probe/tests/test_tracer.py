"""Script mode end to end (subprocesses, the scripts of tests/scripts): entry names by module path,
steps and their boundaries, evaluation forwards kept apart, seeding (DataLoader workers, child
processes), hidden nondeterminism, truncation, the observer check, report_metric, knobs the script
overrides, and the bootstrap sitecustomize chaining to the one it shadows."""

import hashlib
import importlib
import os
import random
import unittest

import helpers
from tracer_helpers import ScriptCase, first_difference

from repro_probe.safetensors import read_safetensors, tensor_bytes

LAYER = "encoder.layers.0."
PLAIN_PARAMS = [LAYER + p for p in ("self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                                    "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight",
                                    "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")]
PLAIN_PARAMS += ["head.weight", "head.bias"]
PLAIN_MODULES = [LAYER + m for m in ("self_attn", "dropout1", "norm1", "linear1", "dropout", "linear2", "dropout2",
                                     "norm2")] + ["head"]
TORCH2 = hasattr(importlib.import_module("torch.optim.optimizer"), "register_optimizer_step_post_hook")


class TracerTest(ScriptCase, unittest.TestCase):
    def plain(self):
        return self.probe("plain", "plain.py", ["--steps", "3"], script={"observer": True})

    def test_plain_loop_names_and_values(self):
        r = self.plain()
        self.assertOk(r)
        self.assertEqual(r.run["steps"], 3)
        self.assertEqual((r.script["end"], r.script["truncated"], r.script["steps_recorded"]), ("finished", False, 3))
        self.assertEqual([s["step"] for s in r.trace["steps"]], ["init", 0, 1, 2])
        self.assertEqual(r.names("init"), ["param/" + p for p in PLAIN_PARAMS])
        expected = (["fwd/%s.0" % PLAIN_MODULES[0]] + ["fwd/" + m for m in PLAIN_MODULES[1:]] + ["out", "loss"]
                    + ["grad/" + p for p in PLAIN_PARAMS] + ["param/" + p for p in PLAIN_PARAMS])
        for step in (0, 1, 2):
            self.assertEqual(r.names(step), expected)
        self.assertEqual(r.run["model"]["modules"], PLAIN_MODULES)
        self.assertEqual(r.run["model"]["module_types"][LAYER + "self_attn"], "MultiheadAttention")
        self.assertEqual(r.script["roots"], [{"label": "", "type": "Net", "compiled": False}])
        self.assertEqual(r.script["optimizers"], [{"index": 0, "type": "SGD", "params": 14}])
        self.assertEqual(r.script["hooks"]["optimizer"],
                         "global optimizer step hooks" if TORCH2 else "optimizer instance step wrappers")
        self.assertEqual(r.run["knobs_overridden"], [])
        self.assertEqual(r.run["knobs_effective"]["device"], "cpu")
        self.assertEqual(r.script["env"]["PYTHONHASHSEED"], "1234")
        self.assertTrue(r.script["env"]["PYTHONPATH"].startswith(os.path.join(helpers.PROBE_DIR, "repro_probe",
                                                                              "bootstrap")))
        self.assertEqual(r.script["seed"], 1234)
        self.assertTrue(r.script["seeded"]["torch"] and r.script["seeded"]["python_random"])
        self.assertEqual(r.script["eval_forwards"], {"policy": "skipped", "no_grad": 0, "eval_mode": 0})
        self.assertEqual(r.script["argv"][1:], ["--steps", "3"])
        self.assertEqual(r.script["cwd"], os.path.dirname(r.script["path"]))
        loss = [e for s in r.trace["steps"] if s["step"] == 0 for e in s["entries"] if e["name"] == "loss"][0]
        self.assertEqual((loss["dtype"], loss["shape"]), ("float64", []))
        self.assertIsInstance(r.run["final"]["train_loss"], float)
        self.assertIsNone(r.run["final"]["val_accuracy"])
        # stored: init, 0, 1 and max_steps - 1 (29: never reached); every value hashes to its digest
        self.assertEqual([s["stored"] for s in r.trace["steps"]], [True, True, True, False])
        stored, _ = read_safetensors(os.path.join(r.out, "tensors.safetensors"))
        by_key = {"%s|%s" % (s["step"], e["name"]): e for s in r.trace["steps"] for e in s["entries"]}
        self.assertEqual(len(stored), sum(len(s["entries"]) for s in r.trace["steps"] if s["stored"]))
        for key, value in stored.items():
            self.assertEqual(hashlib.sha256(tensor_bytes(value)).hexdigest(), by_key[key]["sha256"], key)
        self.assertTrue(os.path.exists(os.path.join(r.out, "fingerprint.json")))

    def test_two_runs_bitwise_equal(self):
        a = self.plain()
        b = self.probe("plain-again", "plain.py", ["--steps", "3"])
        self.assertOk(b)
        self.assertEqual(a.digests(), b.digests())

    def test_observer_check_equal(self):
        check = self.plain().script["observer_check"]
        self.assertEqual((check["equal"], check["params"], check["differing"]), (True, 14, []))
        self.assertEqual(check["steps"], {"traced": 3, "untraced": 3})
        self.assertIsNone(check["untraced_error"])
        self.assertGreater(check["seconds"]["traced"], 0)
        self.assertIn("observer_seconds", self.plain().run["timings"])

    def test_trace_disabled(self):
        r = self.probe("notrace", "plain.py", ["--steps", "3"], trace={"enabled": False})
        self.assertOk(r)
        self.assertEqual(r.trace["steps"], [])
        self.assertEqual(r.run["steps"], 3)
        self.assertIsNone(r.script["hooks"]["forward"])
        self.assertEqual(r.run["final"]["train_loss"], self.plain().run["final"]["train_loss"])

    def test_max_steps_truncates(self):
        r = self.probe("truncated", "plain.py", ["--steps", "100"], script={"max_steps": 4})
        self.assertOk(r)
        self.assertEqual((r.run["steps"], r.script["truncated"], r.script["end"]), (4, True, "truncated"))
        self.assertNotIn("plain: done", r.proc.stdout)  # the script did not run to its end
        self.assertEqual([s["step"] for s in r.trace["steps"]], ["init", 0, 1, 2, 3])
        self.assertEqual([s["stored"] for s in r.trace["steps"]], [True, True, True, False, True])
        self.assertEqual(self.plain().digests(), [d for d in r.digests() if d[0] != 3])

    def test_two_optimizers_one_step_per_iteration(self):
        r = self.probe("two-optimizers", "two_optimizers.py")
        self.assertOk(r)
        self.assertEqual(r.run["steps"], 4)
        self.assertEqual(r.names(0), ["fwd/0", "fwd/1", "fwd/2", "out", "loss",
                                      "grad/0.weight", "grad/0.bias", "param/0.weight", "param/0.bias",
                                      "grad/2.weight", "grad/2.bias", "param/2.weight", "param/2.bias"])
        self.assertEqual([o["type"] for o in r.script["optimizers"]], ["SGD", "Adam"])

    def test_module_called_twice_and_two_roots(self):
        r = self.probe("twice", "module_twice.py")
        self.assertOk(r)
        self.assertEqual(r.names(0), ["fwd/shared", "fwd/shared#1", "fwd/out", "out",
                                      "fwd/shared#2", "fwd/shared#3", "fwd/out#1", "out#1", "out/MSELoss", "loss",
                                      "grad/shared.weight", "grad/shared.bias", "grad/out.weight", "grad/out.bias",
                                      "param/shared.weight", "param/shared.bias", "param/out.weight", "param/out.bias"])
        self.assertEqual(r.script["roots"], [{"label": "", "type": "Siamese", "compiled": False},
                                             {"label": "MSELoss", "type": "MSELoss", "compiled": False}])

    def test_eval_forwards_are_not_mixed_into_steps(self):
        r = self.probe("eval", "eval_loop.py")
        self.assertOk(r)
        params = ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
        expected = (["fwd/%d" % i for i in range(5)] + ["out", "loss"] + ["grad/" + p for p in params]
                    + ["param/" + p for p in params]
                    + ["buffer/1.running_mean", "buffer/1.running_var", "buffer/1.num_batches_tracked"])
        for step in (0, 1, 2):
            self.assertEqual(r.names(step), expected)
        self.assertEqual(r.script["eval_forwards"], {"policy": "skipped", "no_grad": 6, "eval_mode": 3})

    def test_dataloader_workers_seeded(self):
        a = self.probe("loader-a", "dataloader_workers.py", script={"observer": True})
        b = self.probe("loader-b", "dataloader_workers.py")
        self.assertOk(a)
        self.assertOk(b)
        self.assertEqual(a.run["steps"], 8)  # 2 epochs x 24 rows / 6
        self.assertEqual(a.digests(), b.digests())
        self.assertEqual(a.script["seeded"]["dataloader_generators"], 1)
        self.assertEqual(a.script["seeded"]["dataloader_worker_init_fns"], 1)
        self.assertTrue(a.script["observer_check"]["equal"], a.script["observer_check"])

    def test_dataloader_spawn_workers_match_fork(self):
        """Spawned workers are fresh interpreters (the bootstrap runs there; seed_worker is pickled
        by reference): same batches as forked ones, so the same trace."""
        fork = self.probe("loader-a", "dataloader_workers.py", script={"observer": True})
        spawn = self.probe("loader-spawn", "dataloader_workers.py", ["--spawn"])
        self.assertOk(spawn)
        self.assertEqual(spawn.digests(), fork.digests())

    def test_hidden_nondeterminism_shows_up(self):
        a = self.probe("hidden-a", "hidden_nondeterminism.py", script={"observer": True})
        b = self.probe("hidden-b", "hidden_nondeterminism.py")
        self.assertOk(a)
        self.assertOk(b)
        first = first_difference(a.digests(), b.digests())
        print("\n  hidden nondeterminism: first differing entry %r" % (first,))
        self.assertEqual(first, (0, "fwd/0"))  # init is equal (seeded), the OS-seeded input noise is not
        self.assertEqual(a.names("init"), b.names("init"))
        check = a.script["observer_check"]  # the observer sees the difference too
        self.assertFalse(check["equal"])
        self.assertIn("0.weight", check["differing"])

    def test_report_metric(self):
        r = self.probe("metrics", "metrics.py")
        self.assertOk(r)
        final = r.run["final"]
        self.assertTrue(0 <= final["val_accuracy"] <= 1)
        self.assertEqual(final["custom_score"], 2.5)
        self.assertIsInstance(final["train_loss"], float)
        self.assertIsNone(final["val_loss"])
        self.assertEqual(r.script["metrics"], ["custom_score", "val_accuracy"])
        self.assertIn("report_metric: bad name", r.proc.stderr)

    def test_report_metric_is_a_no_op_outside_a_run(self):
        from repro_probe import report_metric
        self.assertIsNone(report_metric("val_accuracy", 0.5))

    def test_knobs_the_script_sets_win(self):
        r = self.probe("sets-knobs", "sets_knobs.py", knobs={"threads": 2, "deterministic": False})
        self.assertOk(r)
        self.assertEqual(r.run["knobs_effective"]["threads"], 1)
        self.assertTrue(r.run["knobs_effective"]["deterministic"])
        self.assertEqual(r.run["knobs_overridden"], ["deterministic", "threads"])
        self.assertEqual(r.run["knobs_requested"]["threads"], 2)

    def test_argv_path_cwd_include(self):
        lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "lib")
        for name, env in (("paths", {}), ("paths-safe", {"PYTHONSAFEPATH": "1"})):  # no cwd entry on 3.11+
            r = self.probe(name, "paths.py", [self.dir], env=env, script={"cwd": self.dir, "include": [lib]})
            self.assertOk(r)
            metrics = dict((k, r.run["final"][k]) for k in r.script["metrics"])
            self.assertEqual(metrics, {"path0_is_script_dir": 1.0, "include_value": 7.0, "cwd_as_expected": 1.0,
                                       "argv0_is_script": 1.0, "bootstrap_on_path": 1.0}, name)
            self.assertEqual(r.script["include"], [lib])
            self.assertEqual(r.script["cwd"], self.dir)

    def test_sitecustomize_chains_and_seeds_children(self):
        fake = os.path.join(self.dir, "fake-site")
        os.makedirs(fake)
        with open(os.path.join(fake, "sitecustomize.py"), "w") as f:
            f.write("import os\nwith open(os.environ['FAKE_SITE_LOG'], 'a') as f:\n"
                    "    f.write('%d\\n' % os.getpid())\n")
        log = os.path.join(self.dir, "fake-site.log")
        env = {"PYTHONPATH": os.pathsep.join([helpers.PROBE_DIR, fake]), "FAKE_SITE_LOG": log}
        r = self.probe("children", "children.py", env=env)
        self.assertOk(r)
        with open(log) as f:
            pids = set(int(line) for line in f)
        final = r.run["final"]
        self.assertIn(int(final["main_pid"]), pids)  # the script's process, through the bootstrap
        self.assertIn(int(final["child_pid"]), pids)  # a python the script started
        self.assertEqual(final["child_random"], random.Random(1234).random())
        try:
            import numpy
            self.assertEqual(final["child_numpy"], numpy.random.RandomState(1234).rand())
        except ImportError:
            pass
        self.assertEqual(final["hash_seed_is_set"], 1.0)


if __name__ == "__main__":
    unittest.main()
