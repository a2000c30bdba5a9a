"""Script mode for code shaped like research repos and tutorials: loops without torch.optim (a step is
one top-level backward and the parameters after it), optimizers stepped with a closure (LBFGS: one
trace step per step(), its first evaluation recorded), notebooks (code cells in order in one
namespace, IPython syntax without IPython), `python -m` modules, and files or modules the script
cannot find named in run.json's error."""

import os
import shutil
import unittest

import torch
from tracer_helpers import SCRIPTS, ScriptCase

HAS_IPYTHON = False
try:
    import IPython  # noqa: F401
    HAS_IPYTHON = True
except ImportError:
    pass


class BackwardStepsTest(ScriptCase, unittest.TestCase):
    def hand(self):
        return self.probe("hand", "hand_update.py", ["4"], script={"observer": True})

    def test_each_backward_is_a_step_with_named_leaves(self):
        r = self.hand()
        self.assertOk(r)
        self.assertEqual(r.script["step_definition"], "backward")
        self.assertEqual((r.run["steps"], r.script["end"]), (4, "finished"))
        leaves = ["W1", "b1", "weight", "bias", "leaf0"]  # head is the root: its own parameters
        for step in range(4):
            names = r.names(step)
            self.assertEqual(names[:2], ["out", "loss"], step)  # head is the root module
            self.assertEqual(sorted(n for n in names if n.startswith("grad/")), sorted("grad/" + n for n in leaves))
            self.assertEqual(sorted(n for n in names if n.startswith("param/")), sorted("param/" + n for n in leaves))
            self.assertLess(names.index("grad/W1"), names.index("param/W1"))

    def test_params_recorded_after_the_update(self):
        r = self.hand()
        by = {(s["step"], e["name"]): e["sha256"] for s in r.trace["steps"] for e in s["entries"]}
        # the update changes W1 between step 0's value (after its update) and step 1's
        self.assertNotEqual(by[(0, "param/W1")], by[(1, "param/W1")])

    def test_bitwise_against_itself_and_observer_equal(self):
        a = self.hand()
        b = self.probe("hand-again", "hand_update.py", ["4"])
        self.assertOk(b)
        self.assertEqual(a.digests(), b.digests())
        check = a.script["observer_check"]
        self.assertEqual((check["equal"], check["params"]), (True, 5), check)

    def test_max_steps_stops_at_the_next_backward(self):
        r = self.probe("hand-max", "hand_update.py", ["10"], script={"max_steps": 3})
        self.assertOk(r)
        self.assertEqual((r.run["steps"], r.script["end"], r.script["truncated"]), (3, "truncated", True))
        self.assertEqual([s["step"] for s in r.trace["steps"]], ["init", 0, 1, 2])

    def test_optimizer_scripts_keep_the_optimizer_definition(self):
        r = self.probe("plain", "plain.py", ["--steps", "2"])
        self.assertOk(r)
        self.assertEqual(r.script["step_definition"], "optimizer step")


class ClosureTest(ScriptCase, unittest.TestCase):
    def test_lbfgs_one_trace_step_per_optimizer_step(self):
        r = self.probe("lbfgs", "lbfgs_closure.py", script={"observer": True})
        self.assertOk(r)
        self.assertEqual((r.run["steps"], r.script["step_definition"]), (3, "optimizer step"))
        self.assertEqual([s["step"] for s in r.trace["steps"]], ["init", 0, 1, 2])
        closures = r.script["closures"]
        self.assertGreater(closures["evaluations"], 3)  # LBFGS evaluates the closure several times a step
        self.assertEqual(closures["recorded"], "first evaluation of each step")
        params = ["cell.weight_ih", "cell.weight_hh", "cell.bias_ih", "cell.bias_hh", "linear.weight", "linear.bias"]
        self.assertEqual(r.names("init"), ["param/" + p for p in params])
        for step in (0, 1, 2):
            names = r.names(step)
            self.assertEqual(names.count("loss"), 1)
            self.assertEqual([n for n in names if n.startswith("grad/")], ["grad/" + p for p in params])
            self.assertEqual([n for n in names if n.startswith("param/")], ["param/" + p for p in params])
            self.assertEqual(len([n for n in names if n.startswith("fwd/linear")]), 15)  # one evaluation's forward
        self.assertTrue(r.script["observer_check"]["equal"], r.script["observer_check"])

    def test_the_recorded_loss_is_the_first_evaluation(self):
        """LBFGS returns its first evaluation's loss; it is the loss the trace records (recomputed here)."""
        r = self.probe("lbfgs", "lbfgs_closure.py", script={"observer": True})
        loss = [e for s in r.trace["steps"] if s["step"] == 0 for e in s["entries"] if e["name"] == "loss"][0]
        self.assertEqual((loss["dtype"], loss["shape"]), ("float64", []))
        step0 = [s for s in r.trace["steps"] if s["step"] == 0][0]
        self.assertTrue(step0["stored"])
        from repro_probe.safetensors import read_safetensors
        stored, _ = read_safetensors(os.path.join(r.out, "tensors.safetensors"))
        import importlib.util
        spec = importlib.util.spec_from_file_location("lbfgs_closure_mod", os.path.join(SCRIPTS, "lbfgs_closure.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        # the script seeds torch at import (its own seed wins over the probe's), then builds the model
        data = torch.sin(torch.arange(0, 16, dtype=torch.double).view(1, -1).repeat(3, 1) / 3
                         + torch.arange(3).view(-1, 1))
        seq = mod.Sequence().double()
        first = torch.nn.MSELoss()(seq(data[:, :-1]), data[:, 1:]).detach()
        self.assertEqual(float(stored["0|loss"]), float(first))


class NotebookTest(ScriptCase, unittest.TestCase):
    def nb(self, name, file, allow_errors=False):
        d = os.path.join(self.dir, "nb-" + name)
        if not os.path.exists(d):
            os.makedirs(d)
            shutil.copy(os.path.join(SCRIPTS, file), d)
            shutil.copy(os.path.join(SCRIPTS, "points.txt"), d)
        return self.probe(name, os.path.join(d, file), script={"allow_errors": allow_errors, "observer": True})

    def test_a_raising_cell_stops_the_run_and_is_named(self):
        r = self.nb("stops", "lecture.ipynb")
        self.assertEqual(r.run["status"], "error")
        self.assertEqual(r.run["error"]["type"], "notebook_cell_error")
        self.assertIn("cell 4 (# this cell raises on purpose: the shapes do not match)", r.run["error"]["message"])
        self.assertIn("RuntimeError", r.run["error"]["message"])

    def test_allow_errors_goes_on_and_traces_by_variable_name(self):
        r = self.nb("allow", "lecture.ipynb", allow_errors=True)
        self.assertOk(r)
        nb = r.script["notebook"]
        self.assertEqual(nb["cells"], 5)
        self.assertEqual([e["cell"] for e in nb["errors"]], [4])
        if not HAS_IPYTHON:
            self.assertEqual(nb["skipped_magics"], [{"cell": 2, "line": 1, "magic": "%matplotlib inline"}])
        self.assertEqual(r.script["step_definition"], "backward")
        self.assertEqual(r.run["steps"], 5)
        self.assertEqual(sorted(n for n in r.names(0) if n.startswith("param/")),
                         ["param/W1", "param/W2", "param/b1", "param/b2"])
        self.assertEqual({s.get("cell") for s in r.trace["steps"] if s["step"] != "init"}, {6})
        self.assertTrue(r.script["observer_check"]["equal"], r.script["observer_check"])

    @unittest.skipIf(HAS_IPYTHON, "with IPython, cell magics and shell lines go through IPython's transformer")
    def test_ipython_syntax_without_ipython_names_the_cell(self):
        r = self.nb("cellmagic", "cell_magic.ipynb")
        self.assertEqual(r.run["error"]["type"], "notebook_syntax")
        self.assertIn("cell 1 (%%time) starts with the cell magic %%time", r.run["error"]["message"])
        r = self.nb("shell", "shell_line.ipynb")
        self.assertEqual(r.run["error"]["type"], "notebook_syntax")
        self.assertIn("line 2 runs a shell command (!pip install foo)", r.run["error"]["message"])


class ModuleAndMissingTest(ScriptCase, unittest.TestCase):
    def test_module_runs_as_python_dash_m(self):
        pkg = os.path.join(SCRIPTS, "pkgmod")
        r = self.probe("module", os.path.join(pkg, "unused"), ["--x", "1"],
                       script={"kind": "module", "module": "trainpkg.train", "path": None, "cwd": pkg})
        self.assertOk(r)
        self.assertEqual(r.run["steps"], 3)
        self.assertEqual(r.script["kind"], "module")
        self.assertEqual(r.script["module"], "trainpkg.train")
        self.assertEqual(r.names(0)[0], "fwd/0")
        self.assertIn("argv0 %s args ['--x', '1']" % os.path.join(pkg, "trainpkg", "train.py"), r.proc.stdout)

    def test_missing_file_is_named_relative_to_the_project_root(self):
        d = os.path.join(self.dir, "proj")
        os.makedirs(os.path.join(d, "src"))
        with open(os.path.join(d, "src", "train.py"), "w") as f:
            f.write("import torch\nopen('data/train.bin', 'rb')\n")
        r = self.probe("missing-file", os.path.join(d, "src", "train.py"), script={"root": d, "cwd": d})
        self.assertEqual(r.run["error"]["type"], "missing_file")
        self.assertEqual(r.run["error"]["path"], os.path.join("data", "train.bin"))
        self.assertIn("could not open data/train.bin", r.run["error"]["message"])

    def test_missing_module_names_the_module(self):
        d = os.path.join(self.dir, "proj2")
        os.makedirs(d)
        with open(os.path.join(d, "train.py"), "w") as f:
            f.write("import torch\nimport model_beside_me\n")
        r = self.probe("missing-module", os.path.join(d, "train.py"))
        self.assertEqual((r.run["error"]["type"], r.run["error"]["module"]), ("missing_module", "model_beside_me"))


if __name__ == "__main__":
    unittest.main()
