"""Op replay for the user's own training script (script mode, script_replay.py), as subprocesses with
real torch: trace.capture copies a module's inputs at its first call in step s and stops the script
after step s (the trace of steps <= s unchanged); trace.replay runs the script again, in a fresh
process, up to that call and replaces it by one call on the captured bytes, whose outputs must have
the digests the trace recorded for fwd/<module> at step s. Scripts with torch.optim and without
(backward-defined steps), examples/ml-repo as the host copies it, and hostile captures refused in one
line."""

import copy
import hashlib
import json
import os
import shutil
import tempfile
import time
import unittest

import helpers
from tracer_helpers import run_script_probe, write_script_config

from repro_probe.safetensors import read_safetensors, tensor_sha256

EXAMPLE = os.path.join(os.path.dirname(helpers.PROBE_DIR), "examples", "ml-repo")

# the user's own model class: Linear + LayerNorm + GELU (+ Dropout: the captured RNG state matters)
BLOCK = '''
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, dropout):
        super().__init__()
        self.fc = nn.Linear(8, 32)
        self.norm = nn.LayerNorm(32)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        return self.head(self.drop(self.act(self.norm(self.fc(x)))))
'''

OPTIM = BLOCK + '''

torch.manual_seed(0)
x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
model = Block(0.2)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(5):
    idx = torch.randperm(64)[:16]
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x[idx].t().contiguous().t()), y[idx])
    loss.backward()
    opt.step()
print("finished")
'''

# no torch.optim: a step is one top-level backward and the hand-written update after it
BACKWARD = BLOCK + '''

torch.manual_seed(1)
x = torch.randn(32, 8)
y = torch.randint(0, 3, (32,))
model = Block(0.1)
for step in range(4):
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.05 * p.grad
            p.grad = None
'''

# a module called with a keyword argument: forward pre-hooks do not see it, so it cannot be captured
KWARGS = '''
import torch
import torch.nn as nn


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, scale=1.0):
        return self.fc(x) * scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Scaled()
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        return self.out(self.inner(x, scale=2.0))


net = Net()
opt = torch.optim.SGD(net.parameters(), lr=0.1)
x = torch.randn(8, 4)
for _ in range(3):
    opt.zero_grad()
    net(x).pow(2).mean().backward()
    opt.step()
'''


def sha_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fwd_entries(trace, step, module):
    """The first call's fwd/<module> entries of a step (fwd/<module>, fwd/<module>.i, ...)."""
    name = "fwd/" + module
    return [(e["name"], e["dtype"], e["shape"], e["sha256"]) for s in trace["steps"] if s["step"] == step
            for e in s["entries"] if e["name"] == name or e["name"].startswith(name + ".")]


def load(out, name):
    path = os.path.join(out, name)
    return helpers.load_json(path) if os.path.exists(path) else None


class Runs(object):
    """Script runs under one temporary directory, cached by name."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="repro-script-replay-test-")
        self.scripts = {}
        for name, text in (("optim", OPTIM), ("backward", BACKWARD), ("kwargs", KWARGS)):
            path = os.path.join(self.dir, name + ".py")
            with open(path, "w") as f:
                f.write(text)
            self.scripts[name] = path
        self.cache = {}
        self.n = 0
        self.seconds = {}

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _dir(self, kind):
        self.n += 1
        d = os.path.join(self.dir, "%s%d" % (kind, self.n))
        os.makedirs(d)
        return d

    def run(self, script, trace=None, cached=True):
        """(proc, run.json, trace.json, out dir) of a script run with `trace` (capture, replay...)."""
        key = (script, json.dumps(trace, sort_keys=True))
        if cached and key in self.cache:
            return self.cache[key]
        d = self._dir("run")
        config = write_script_config(d, self.scripts[script], (), **({"trace": trace} if trace else {}))
        out = os.path.join(d, "out")
        proc = run_script_probe(config, out)
        self.cache[key] = (proc, load(out, "run.json"), load(out, "trace.json"), out)
        return self.cache[key]

    def capture(self, script, step, module):
        return self.run(script, {"capture": {"step": step, "module": module}})

    def replay(self, script, capture_out, step=None, module=None, meta=None, sha=None, toggle=None,
               capture_file=None, project=None):
        """A fresh process replaying `module` at `step` on the capture in capture_out (the capture file
        copied next to the config). project: (directory to copy as project/, script args, max_steps)
        as the host lays out a run's inputs. Returns (proc, run.json, replay.json, out dir)."""
        d = self._dir("replay")
        shutil.copy(capture_file or os.path.join(capture_out, "capture.safetensors"),
                    os.path.join(d, "capture.safetensors"))
        meta = meta if meta is not None else load(capture_out, "capture.json")
        replay = {"step": meta["step"] if step is None else step,
                  "module": meta["module"] if module is None else module,
                  "capture": {"file": "capture.safetensors", "meta": meta,
                              "sha256": sha or sha_file(os.path.join(d, "capture.safetensors"))},
                  "toggle": toggle}
        if project is None:
            config = write_script_config(d, self.scripts[script], (), trace={"replay": replay})
        else:
            config = project_config(d, project, {"replay": replay})
        out = os.path.join(d, "out")
        t0 = time.time()
        proc = run_script_probe(config, out)
        self.seconds["replay"] = time.time() - t0
        return proc, load(out, "run.json"), load(out, "replay.json"), out


def project_config(d, project, trace=None):
    """As the host writes a script run's inputs: the project copied to project/ next to config.json,
    paths relative to the config's folder, the working directory the project's root."""
    src, args, max_steps = project
    shutil.copytree(src, os.path.join(d, "project"), ignore=shutil.ignore_patterns("reports", "__pycache__"))
    cfg = {"schema": "repro.config/1",
           "script": {"kind": "script", "path": "project/train.py", "root": "project", "cwd": "project",
                      "args": list(args), "max_steps": max_steps}}
    if trace:
        cfg["trace"] = trace
    config = os.path.join(d, "config.json")
    with open(config, "w") as f:
        json.dump(cfg, f)
    return config


RUNS = None


def setUpModule():
    global RUNS
    RUNS = Runs()


def tearDownModule():
    RUNS.close()


class ScriptCaptureTest(unittest.TestCase):
    def test_capture_keeps_the_trace_and_stops_after_its_step(self):
        p0, plain, plain_trace, _ = RUNS.run("optim")
        self.assertEqual(p0.returncode, 0, p0.stderr[-3000:])
        self.assertEqual(plain["steps"], 5)
        for step in (0, 1, 3):
            with self.subTest(step=step):
                p, run, trace, out = RUNS.capture("optim", step, "norm")
                self.assertEqual(p.returncode, 0, p.stderr[-3000:])
                self.assertNotIn("finished", p.stdout)  # stopped after step s
                self.assertEqual((run["status"], run["steps"], run["script"]["end"]), ("ok", step + 1, "truncated"))
                self.assertEqual(run["capture"], {"step": step, "module": "norm", "captured": True})
                self.assertEqual([s["step"] for s in trace["steps"]], ["init"] + list(range(step + 1)))
                self.assertEqual(trace["steps"], plain_trace["steps"][:step + 2])  # every digest, bit for bit
                meta = load(out, "capture.json")
                self.assertEqual((meta["schema"], meta["step"], meta["module"], meta["type"]),
                                 ("repro.capture/1", step, "norm", "LayerNorm"))
                self.assertEqual((meta["training"], meta["grad_enabled"], meta["structure"]), (True, True, ["T"]))
                self.assertEqual([e["name"] for e in meta["entries"]],
                                 ["arg/0", "state/bias", "state/weight", "rng/cpu"])
                stored, _ = read_safetensors(os.path.join(out, "capture.safetensors"))
                for e in meta["entries"]:
                    self.assertEqual(e["sha256"], tensor_sha256(stored[e["name"]]))

    def test_a_module_never_called_captures_nothing(self):
        p, run, trace, out = RUNS.capture("optim", 1, "nope")
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertEqual((run["status"], run["steps"]), ("ok", 2))
        self.assertEqual(run["capture"], {"step": 1, "module": "nope", "captured": False})
        self.assertFalse(os.path.exists(os.path.join(out, "capture.json")))

    def test_keyword_arguments_are_refused_in_one_line(self):
        p, run, _, out = RUNS.capture("kwargs", 1, "inner")
        self.assertEqual(p.returncode, 3, p.stderr[-3000:])
        self.assertEqual(run["error"]["type"], "capture_unsupported", run["error"])
        self.assertIn("scale", run["error"]["message"])
        self.assertNotIn("\n", run["error"]["message"])
        self.assertFalse(os.path.exists(os.path.join(out, "capture.json")))
        ok = RUNS.capture("kwargs", 1, "inner.fc")[1]  # its child is called positionally
        self.assertEqual((ok["status"], ok["capture"]["captured"]), ("ok", True))

    def test_config_shapes(self):
        from repro_probe.config import DEFAULTS, validate
        from repro_probe.errors import ProbeError
        good = {"step": 0, "module": "fc", "capture": {}, "toggle": None}
        for mode, trace in (("train", {"replay": good}), ("script", {"replay": dict(good, extra=1)}),
                            ("script", {"replay": {"step": 0, "module": "fc"}}),
                            ("script", {"replay": dict(good, step=-1)}), ("script", {"replay": dict(good, module="")}),
                            ("script", {"replay": dict(good, capture=[])}),
                            ("script", {"replay": good, "capture": {"step": 0, "module": "fc"}}),
                            ("script", {"capture": {"step": 0, "module": "fc", "backward": True}})):
            cfg = copy.deepcopy(DEFAULTS)
            cfg["trace"].update(trace)
            cfg["script"]["path"] = "train.py"
            with self.subTest(mode=mode, trace=trace), self.assertRaises(ProbeError) as ctx:
                validate(cfg, mode)
            self.assertEqual(ctx.exception.type, "invalid_config")
        cfg = copy.deepcopy(DEFAULTS)
        cfg["trace"]["replay"] = good
        cfg["script"]["path"] = "train.py"
        validate(cfg, "script")


class ScriptReplayTest(unittest.TestCase):
    def check(self, script, step, module, toggle=None):
        p0, _, plain_trace, _ = RUNS.run(script)
        self.assertEqual(p0.returncode, 0, p0.stderr[-3000:])
        p, run, _, out = RUNS.capture(script, step, module)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertTrue(run["capture"]["captured"])
        rp, rrun, res, rout = RUNS.replay(script, out, toggle=toggle)
        self.assertEqual(rp.returncode, 0, rp.stderr[-3000:])
        self.assertEqual((rrun["status"], rrun["error"]), ("ok", None))
        self.assertEqual(rrun["script"]["replay"], {"step": step, "module": module, "replayed": True})
        self.assertEqual((res["schema"], res["status"], res["error"], res["kind"], res["script"], res["module"],
                          res["step"], res["toggle"]),
                         ("repro.replay-result/1", "ok", None, "forward", True, module, step, toggle))
        want = fwd_entries(plain_trace, step, module)
        self.assertTrue(want)
        self.assertEqual([(e["name"], e["dtype"], e["shape"], e["sha256"]) for e in res["entries"]], want)
        stored, _ = read_safetensors(os.path.join(rout, "replay.safetensors"))
        self.assertEqual(sorted(stored), sorted(e["name"] for e in res["entries"]))
        self.assertFalse(os.path.exists(os.path.join(rout, "trace.json")))  # the replay's run records no trace
        return res

    def test_fidelity_every_module_of_a_users_class(self):
        for module in ("fc", "norm", "act", "drop", "head"):
            for step in (0, 1):
                with self.subTest(module=module, step=step):
                    self.check("optim", step, module)

    def test_fidelity_without_torch_optim(self):
        p0, plain, _, _ = RUNS.run("backward")
        self.assertEqual(plain["script"]["step_definition"], "backward")
        for module, step in (("norm", 2), ("drop", 1), ("fc", 0)):
            with self.subTest(module=module, step=step):
                self.check("backward", step, module)

    def test_toggle_mkldnn_off(self):
        self.check("optim", 1, "fc", toggle={"mkldnn": False})

    def test_examples_ml_repo_as_the_host_runs_it(self):
        project = (EXAMPLE, ["--epochs", "2"], 20)
        plain_dir = RUNS._dir("ml-plain")
        p0 = run_script_probe(project_config(plain_dir, project), os.path.join(plain_dir, "out"))
        self.assertEqual(p0.returncode, 0, p0.stderr[-3000:])
        plain_trace = load(os.path.join(plain_dir, "out"), "trace.json")
        for module in ("encoder.0", "encoder.3"):  # its first module; its Dropout (the captured RNG state)
            with self.subTest(module=module):
                d = RUNS._dir("ml-capture")
                t0 = time.time()
                p = run_script_probe(project_config(d, project, {"capture": {"step": 1, "module": module}}),
                                     os.path.join(d, "out"))
                capture_seconds = time.time() - t0
                self.assertEqual(p.returncode, 0, p.stderr[-3000:])
                out = os.path.join(d, "out")
                self.assertEqual(load(out, "run.json")["capture"], {"step": 1, "module": module, "captured": True})
                self.assertEqual(load(out, "trace.json")["steps"], plain_trace["steps"][:3])
                rp, rrun, res, _ = RUNS.replay(None, out, project=project)
                self.assertEqual(rp.returncode, 0, rp.stderr[-3000:])
                self.assertEqual((res["status"], res["script"]), ("ok", True))
                self.assertEqual([(e["name"], e["dtype"], e["shape"], e["sha256"]) for e in res["entries"]],
                                 fwd_entries(plain_trace, 1, module))
                print("\n  ml-repo %s: capture %.1f s, replay %.1f s"
                      % (module, capture_seconds, RUNS.seconds["replay"]))


class ScriptReplayHostileTest(unittest.TestCase):
    def refused(self, error_type, ends=False, **kwargs):
        """ends: the script ran to its end (the module was never reached)."""
        p, run, _, out = RUNS.capture("optim", 1, "norm")
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        rp, rrun, res, rout = RUNS.replay("optim", out, **kwargs)
        self.assertEqual(rp.returncode, 3, rp.stderr[-3000:])
        self.assertEqual(rrun["status"], "error")
        self.assertEqual(rrun["error"]["type"], error_type, rrun["error"])
        self.assertNotIn("\n", rrun["error"]["message"])
        self.assertNotIn("Traceback", rp.stderr)
        self.assertEqual((res["status"], res["error"], res["entries"], res["script"]),
                         ("error", rrun["error"], [], True))
        self.assertFalse(os.path.exists(os.path.join(rout, "replay.safetensors")))
        self.assertEqual("finished" in rp.stdout, ends)
        return rrun["error"]["message"]

    def meta(self):
        return copy.deepcopy(load(RUNS.capture("optim", 1, "norm")[3], "capture.json"))

    def test_capture_sha_mismatch(self):
        self.assertIn("sha256", self.refused("data_hash_mismatch", sha="0" * 64))

    def test_meta_inconsistent_with_the_file(self):
        meta = self.meta()
        meta["entries"][0]["sha256"] = "2" * 64
        self.refused("invalid_replay", meta=meta)
        meta = self.meta()
        meta["step"] = 2
        self.assertIn("step", self.refused("invalid_replay", meta=meta, step=1))

    def test_state_of_the_wrong_shape(self):
        import torch
        from repro_probe.capture import write_exact
        stored, _ = read_safetensors(os.path.join(RUNS.capture("optim", 1, "norm")[3], "capture.safetensors"))
        stored["state/weight"] = torch.ones(3)
        path = os.path.join(RUNS.dir, "wrong-shape.safetensors")
        write_exact(path, list(stored.items()))
        meta = self.meta()
        for e in meta["entries"]:
            if e["name"] == "state/weight":
                e.update(shape=[3], sha256=tensor_sha256(stored["state/weight"]))
        self.assertIn("state/weight", self.refused("invalid_replay", meta=meta, capture_file=path))

    def test_module_of_another_type(self):
        meta = self.meta()
        meta["module"] = "head"
        self.assertIn("Linear", self.refused("invalid_replay", meta=meta))

    def test_module_never_called_in_the_step(self):
        meta = self.meta()
        meta["module"] = "nope"
        self.assertIn("not called", self.refused("invalid_replay", meta=meta))
        meta = self.meta()
        meta["step"] = 40  # past the script's last step
        self.assertIn("not called", self.refused("invalid_replay", ends=True, meta=meta))

    def test_bad_toggle(self):
        self.refused("invalid_replay", toggle={"cudnn": False})


if __name__ == "__main__":
    unittest.main()
