"""Script mode pieces in process (fast): the config's script section, entry-name cleaning, error
classification, the observer comparison, DataLoader seeding, and the tracer's step rules (names by
module path, one step per iteration with several optimizers, alternating GAN-style steps, nested
optimizer steps, the step limit) with hooks installed in this process."""

import copy
import json
import os
import socket
import tempfile
import unittest
import urllib.error

import helpers  # noqa: F401
import torch
import torch.nn as nn

from repro_probe.config import DEFAULTS, load_config
from repro_probe.errors import ProbeError
from repro_probe.scriptmode import observer_check, recorded_env
from repro_probe.scriptrun import classify, network_cause
from repro_probe.seeding import loader_seed, patch_dataloader, seed_worker
from repro_probe.trace import TraceRecorder
from repro_probe.tracer import MAX_NAME, StepLimitReached, Tracer, clean_name


class ScriptConfigTest(unittest.TestCase):
    def load(self, script, mode="script"):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "config.json")
            cfg = copy.deepcopy(DEFAULTS)
            cfg["script"].update(script)
            with open(path, "w") as f:
                json.dump(cfg, f)
            return load_config(path, mode)[0]

    def test_defaults(self):
        cfg = self.load({"path": "train.py"})
        self.assertEqual(cfg["script"], {"kind": "script", "path": "train.py", "module": None, "root": None,
                                         "args": [], "cwd": None, "max_steps": 30, "include": [],
                                         "observer": False, "allow_errors": False, "nproc": 1, "sha256": None})

    def test_module_kind(self):
        cfg = self.load({"kind": "module", "module": "pkg.train", "cwd": "."})
        self.assertEqual((cfg["script"]["module"], cfg["script"]["path"]), ("pkg.train", None))
        for bad in ("pkg..train", "1pkg", "pkg/train", "", None):
            with self.assertRaises(ProbeError):
                self.load({"kind": "module", "module": bad, "cwd": "."})
        with self.assertRaises(ProbeError):
            self.load({"kind": "module", "module": "pkg.train"})  # no cwd
        with self.assertRaises(ProbeError):
            self.load({"kind": "other", "path": "train.py"})

    def test_path_only_required_in_script_mode(self):
        self.load({}, mode="fingerprint")
        with self.assertRaises(ProbeError):
            self.load({})

    def test_invalid(self):
        for bad in ({"path": ""}, {"path": 3}, {"args": "--x"}, {"args": [1]}, {"max_steps": 0},
                    {"max_steps": True}, {"include": "src"}, {"include": [""]}, {"observer": "yes"}, {"cwd": ""}):
            with self.assertRaises(ProbeError, msg=repr(bad)) as ctx:
                self.load(dict({"path": "train.py"}, **bad))
            self.assertEqual(ctx.exception.type, "invalid_config")


class PiecesTest(unittest.TestCase):
    def test_clean_name(self):
        self.assertEqual(clean_name("fwd/a|b\nc"), "fwd/a_b_c")
        long_a, long_b = "fwd/" + "a" * 600, "fwd/" + "a" * 599 + "b"
        self.assertEqual(len(clean_name(long_a)), MAX_NAME)
        self.assertNotEqual(clean_name(long_a), clean_name(long_b))

    def test_network_cause(self):
        gai = socket.gaierror(-2, "Name or service not known")
        self.assertIs(network_cause(gai), gai)
        self.assertIs(network_cause(urllib.error.URLError(gai)), gai)
        unreachable = OSError(101, "Network is unreachable")
        try:
            try:
                raise unreachable
            except OSError as e:
                raise RuntimeError("could not download the weights") from e
        except RuntimeError as wrapped:
            self.assertIs(network_cause(wrapped), unreachable)
        self.assertIsNone(network_cause(ValueError("x")))
        self.assertIsNone(network_cause(OSError(2, "No such file")))

    def test_classify(self):
        e = ModuleNotFoundError("No module named 'wandb'", name="wandb")
        self.assertEqual(classify(e, None).type, "missing_module")
        e = classify(RuntimeError("a\nb\n"), None)
        self.assertEqual((e.type, e.message), ("script_error", "RuntimeError: b"))
        self.assertEqual(classify(socket.gaierror(-3, "Temporary failure"), None).type, "network_blocked")

    def test_recorded_env_drops_secrets(self):
        self.assertEqual(recorded_env({"PYTHONPATH": "/a\n/b", "HF_TOKEN": "x", "MY_API_KEY": "y"}),
                         {"PYTHONPATH": "/a"})

    def test_observer_check(self):
        traced = {"steps": 2, "script_seconds": 1.0, "error": None,
                  "params": [{"key": "opt0.0.0", "name": "w", "sha256": "a"},
                             {"key": "opt0.0.1", "name": "b", "sha256": "b"}]}
        same = dict(traced, script_seconds=0.5)
        self.assertTrue(observer_check(traced, same)["equal"])
        other = dict(traced, params=[{"key": "opt0.0.0", "name": "opt0.0.0", "sha256": "a"},
                                     {"key": "opt0.0.1", "name": "opt0.0.1", "sha256": "c"}])
        check = observer_check(traced, other)
        self.assertEqual((check["equal"], check["differing"]), (False, ["b"]))
        self.assertFalse(observer_check(traced, dict(same, steps=3))["equal"])
        self.assertFalse(observer_check(traced, None)["equal"])

    def test_dataloader_seeding(self):
        self.assertNotEqual(loader_seed(1, 0), loader_seed(1, 1))
        counts = {"loaders": 0, "generators": 0, "worker_init_fns": 0}
        undo = patch_dataloader(torch, 7, counts)
        try:
            data = list(range(10))
            a = torch.utils.data.DataLoader(data, batch_size=2, shuffle=True)
            own = torch.Generator().manual_seed(3)
            b = torch.utils.data.DataLoader(data, 2, True, generator=own, num_workers=2, worker_init_fn=print)
            c = torch.utils.data.DataLoader(data, batch_size=2, num_workers=1)
        finally:
            undo()
        self.assertEqual(a.generator.initial_seed(), loader_seed(7, 0))
        self.assertIs(b.generator, own)
        self.assertIs(b.worker_init_fn, print)
        self.assertIs(c.worker_init_fn, seed_worker)
        self.assertEqual(counts, {"loaders": 3, "generators": 2, "worker_init_fns": 1})
        d = torch.utils.data.DataLoader(data)
        self.assertIsNone(d.generator)  # undone


class RecorderBudgetTest(unittest.TestCase):
    def test_over_budget_step_is_not_copied(self):
        recorder = TraceRecorder(torch, True, {0, 1}, budget=4000)
        recorder.begin(0, None)
        recorder.record("small", torch.ones(10))
        recorder.record("big", torch.ones(2000))  # 8000 bytes: the step is dropped before a copy
        recorder.record("after", torch.ones(10))
        recorder.end()
        self.assertFalse(recorder.steps[0]["stored"])
        self.assertEqual([e["name"] for e in recorder.steps[0]["entries"]], ["small", "big", "after"])
        recorder.begin(1, None)
        recorder.record("small", torch.ones(10))
        recorder.end()
        self.assertTrue(recorder.steps[1]["stored"])
        self.assertEqual(list(recorder.stored), ["1|small"])
        self.assertEqual(recorder.stored_bytes, 40)


class TracerStepsTest(unittest.TestCase):
    """The tracer in this process: hooks installed for one test, removed after it."""

    def trace(self, body, max_steps=100):
        recorder = TraceRecorder(torch, True, set())
        tracer = Tracer(torch, recorder, max_steps)
        tracer.install()
        try:
            body()
            stopped = False
        except StepLimitReached:
            stopped = True
        finally:
            tracer.finish()
            tracer.uninstall()
        self.assertEqual(tracer.errors, [])
        return tracer, recorder, stopped

    def names(self, recorder, step):
        return [e["name"] for s in recorder.steps if s["step"] == step for e in s["entries"]]

    # optimizers are built inside body(): before torch 2.0 the tracer wraps them at construction

    def test_gan_alternating_optimizers(self):
        def body():
            torch.manual_seed(0)
            gen, disc = nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 1))
            opt_g, opt_d = torch.optim.SGD(gen.parameters(), lr=0.1), torch.optim.SGD(disc.parameters(), lr=0.1)
            for _ in range(2):
                fake = gen(torch.randn(4, 2))
                opt_d.zero_grad()
                disc(fake.detach()).mean().backward()
                opt_d.step()
                opt_g.zero_grad()
                (-disc(fake).mean()).backward()
                opt_g.step()
        tracer, recorder, _ = self.trace(body)
        self.assertEqual(tracer.steps_done, 4)  # each optimizer step after its own backward is a step
        self.assertEqual([r["label"] for r in tracer.roots_summary()], ["", "Sequential"])
        self.assertEqual(self.names(recorder, 0), ["out", "fwd/Sequential:0", "out/Sequential", "loss",
                                                   "grad/Sequential:0.weight", "grad/Sequential:0.bias",
                                                   "param/Sequential:0.weight", "param/Sequential:0.bias"])
        self.assertEqual(self.names(recorder, 1), ["fwd/Sequential:0", "out/Sequential", "loss",
                                                   "grad/weight", "grad/bias", "param/weight", "param/bias"])
        self.assertEqual(self.names(recorder, "init"), ["param/weight", "param/bias"])

    def test_nested_optimizer_step_and_step_limit(self):
        class Wrapper(torch.optim.Optimizer):  # a Lookahead-style optimizer stepping another one
            def __init__(self, inner):
                torch.optim.Optimizer.__init__(self, inner.param_groups, {})
                self.inner = inner

            def step(self, closure=None):
                return self.inner.step()

        def body():
            model = nn.Linear(3, 1)
            outer = Wrapper(torch.optim.SGD(model.parameters(), lr=0.1))
            for _ in range(5):
                outer.zero_grad()
                model(torch.ones(2, 3)).sum().backward()
                outer.step()
        tracer, recorder, stopped = self.trace(body, max_steps=3)
        self.assertTrue(stopped)
        self.assertEqual(tracer.steps_done, 3)
        self.assertEqual([type(o).__name__ for o in tracer.optimizers], ["Wrapper"])
        self.assertEqual(self.names(recorder, 2), ["out", "loss", "grad/weight", "grad/bias",
                                                   "param/weight", "param/bias"])
        self.assertEqual([s["step"] for s in recorder.steps], ["init", 0, 1, 2])

    def test_trailing_forward_without_step_is_discarded(self):
        def body():
            model = nn.Linear(3, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            model(torch.ones(2, 3)).sum().backward()
            opt.step()
            model(torch.ones(2, 3)).sum().backward()  # never stepped
        tracer, recorder, _ = self.trace(body)
        self.assertEqual([s["step"] for s in recorder.steps], ["init", 0])
        self.assertEqual(tracer.trailing_entries_discarded, 2)

    def test_lr_scheduler_wraps_the_wrapped_step(self):
        box = {}

        def body():
            model = nn.Linear(3, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
            for _ in range(2):
                model(torch.ones(2, 3)).sum().backward()
                opt.step()
                sched.step()
            box["lr"] = opt.param_groups[0]["lr"]
        tracer, _, _ = self.trace(body)
        self.assertEqual(tracer.steps_done, 2)
        self.assertAlmostEqual(box["lr"], 0.001)


if __name__ == "__main__":
    unittest.main()
