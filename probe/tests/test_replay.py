"""`replay` mode (one optimizer update on given bytes), as subprocesses: a replay of each of the first
steps of a small seeded Adam / SGD(momentum 0.9) run gives the trace's own digests of the parameters
and the optimizer state after that update, and hostile inputs are refused in one line."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import helpers
import torch

from repro_probe.knobtable import DEFAULT_KNOBS
from repro_probe.safetensors import read_safetensors, tensor_bytes, write_safetensors
from repro_probe.trace import TraceRecorder

STEPS = 3
LR = 0.005
STATE_KEYS = {"adam": ("exp_avg", "exp_avg_sq"), "sgd": ("momentum_buffer",)}


def record_run(opt_type, steps=STEPS, seed=7):
    """Train nn.Sequential(Linear(4, 8), ReLU, Linear(8, 3)) `steps` steps with the optimizer train.py
    builds; for each step k: the update's inputs {name: tensor} (param/, grad/, opt/ before it, the
    replay file's names), the trace's entries after it (param/ and opt/ as TraceRecorder records
    them) and the real optimizer's state["step"] tensors after it."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    if opt_type == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, 16, 4, generator=g)
    y = torch.randint(0, 3, (steps, 16), generator=g)
    recorder = TraceRecorder(torch, True, set())
    names = [n for n, _ in model.named_parameters()]
    cases = []
    for k in range(steps):
        inputs = {}
        for n, p in model.named_parameters():
            inputs["param/" + n] = p.detach().clone()
            for key, value in optimizer.state.get(p, {}).items():
                if key != "step":
                    inputs["opt/%s.%s" % (n, key)] = value.detach().clone()
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x[k]), y[k])
        loss.backward()
        for n, p in model.named_parameters():
            inputs["grad/" + n] = p.grad.detach().clone()
        optimizer.step()
        recorder.begin(k, 0)
        recorder.record_optimizer(optimizer, model)
        recorder.record_state(model)
        recorder.end()
        after = dict((e["name"], e) for e in recorder.steps[-1]["entries"])
        values = {}
        for n, p in model.named_parameters():
            values["param/" + n] = p.detach().clone()
            for key, value in optimizer.state[p].items():
                if key != "step":
                    values["opt/%s.%s" % (n, key)] = value.detach().clone()
        steps_after = [optimizer.state[p]["step"].clone() for _, p in model.named_parameters() if opt_type == "adam"]
        cases.append({"step": k, "inputs": inputs, "after": after, "values": values, "state_steps": steps_after})
    return names, cases


def write_case(directory, opt_type, names, case, tensors=None, sha=None, **overrides):
    """config.json and replay.safetensors for one case in `directory`; returns the config path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "replay.safetensors")
    write_safetensors(path, case["inputs"] if tensors is None else tensors)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    cfg = {"schema": "repro.replay/1", "kind": "update", "optimizer": {"type": opt_type, "lr": LR},
           "step": case["step"], "params": names, "knobs": dict(DEFAULT_KNOBS),
           "inputs": {"file": "replay.safetensors", "sha256": sha or digest}}
    cfg.update(overrides)
    config = os.path.join(directory, "config.json")
    with open(config, "w") as f:
        json.dump(cfg, f)
    return config


def expected_order(opt_type, names, step):
    keys = sorted(STATE_KEYS[opt_type])
    return [e for n in names for e in ["param/" + n] + ["opt/%s.%s" % (n, key) for key in keys]]


class ReplayFidelityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="repro-replay-test-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def check_optimizer(self, opt_type):
        names, cases = record_run(opt_type)
        for case in cases:
            k = case["step"]
            with self.subTest(step=k):
                d = os.path.join(self.dir, "%s-%d" % (opt_type, k))
                config = write_case(d, opt_type, names, case)
                out = os.path.join(d, "out")
                r = helpers.run_probe("replay", config, out)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertFalse(os.path.exists(os.path.join(out, "run.json")))
                res = helpers.load_json(os.path.join(out, "replay.json"))
                self.assertEqual(res["schema"], "repro.replay-result/1")
                self.assertEqual(res["status"], "ok")
                self.assertIsNone(res["error"])
                self.assertEqual(res["torch"], torch.__version__)
                self.assertEqual(res["step"], k)
                self.assertIsInstance(res["seconds"], float)
                self.assertEqual([e["name"] for e in res["entries"]], expected_order(opt_type, names, k))
                for e in res["entries"]:
                    want = case["after"][e["name"]]
                    self.assertEqual(e, want, e["name"])  # name, dtype, shape, sha256, nonfinite
                stored, _ = read_safetensors(os.path.join(out, "replay.safetensors"))
                self.assertEqual(sorted(stored), sorted(case["values"]))
                for name, value in case["values"].items():
                    self.assertEqual(tensor_bytes(stored[name]), tensor_bytes(value), name)

    def test_adam(self):
        self.check_optimizer("adam")

    def test_sgd(self):
        self.check_optimizer("sgd")

    def test_adam_step_state_is_what_replay_sets(self):
        """replay sets state["step"] = torch.tensor(float(k)) before the update of step k: the
        real optimizer's after k updates (a 0-dim float tensor of the default dtype, value k)."""
        _, cases = record_run("adam")
        for case in cases:
            k = case["step"] + 1  # updates done after this case's update
            for t in case["state_steps"]:
                made = torch.tensor(float(k))
                self.assertTrue(torch.is_tensor(t))
                self.assertEqual((t.dtype, t.shape, t.device), (made.dtype, made.shape, made.device))
                self.assertTrue(torch.equal(t, made))


class ReplayHostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="repro-replay-hostile-")
        cls.names, cases = record_run("adam", steps=2)
        cls.case = cases[1]
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def refused(self, error_type, tensors=None, sha=None, **overrides):
        ReplayHostileTest.n += 1
        d = os.path.join(self.dir, "case%d" % self.n)
        config = write_case(d, "adam", self.names, self.case, tensors=tensors, sha=sha, **overrides)
        out = os.path.join(d, "out")
        r = helpers.run_probe("replay", config, out)
        self.assertEqual(r.returncode, 3, r.stderr)
        run = helpers.load_json(os.path.join(out, "run.json"))
        self.assertEqual(sorted(run), ["error", "schema", "status"])
        self.assertEqual((run["schema"], run["status"]), ("repro.run/1", "error"))
        self.assertEqual(sorted(run["error"]), ["message", "type"])
        self.assertEqual(run["error"]["type"], error_type, run["error"]["message"])
        self.assertNotIn("\n", run["error"]["message"])
        res = helpers.load_json(os.path.join(out, "replay.json"))
        self.assertEqual((res["status"], res["error"], res["entries"]), ("error", run["error"], []))
        self.assertFalse(os.path.exists(os.path.join(out, "replay.safetensors")))
        self.assertNotIn("Traceback", r.stderr)
        return run["error"]["message"]

    def inputs(self):
        return dict(self.case["inputs"])

    def test_sha_mismatch(self):
        msg = self.refused("data_hash_mismatch", sha="0" * 64)
        self.assertIn("sha256", msg)

    def test_unknown_tensor(self):
        t = self.inputs()
        t["param/evil"] = torch.zeros(2)
        self.assertIn("param/evil", self.refused("invalid_replay", tensors=t))

    def test_state_at_step_zero_is_unexpected(self):
        self.assertIn("opt/", self.refused("invalid_replay", step=0))

    def test_shape_mismatch(self):
        t = self.inputs()
        t["grad/0.weight"] = torch.zeros(3, 3)
        self.assertIn("shape", self.refused("invalid_replay", tensors=t))

    def test_state_shape_mismatch(self):
        t = self.inputs()
        t["opt/2.bias.exp_avg"] = torch.zeros(4)
        self.assertIn("shape", self.refused("invalid_replay", tensors=t))

    def test_int_dtype(self):
        t = self.inputs()
        t["grad/0.bias"] = torch.zeros(8, dtype=torch.int64)
        self.assertIn("dtype", self.refused("invalid_replay", tensors=t))

    def test_missing_grad(self):
        t = self.inputs()
        del t["grad/2.weight"]
        self.assertIn("grad/2.weight", self.refused("invalid_replay", tensors=t))

    def test_missing_state(self):
        t = self.inputs()
        del t["opt/0.weight.exp_avg_sq"]
        self.assertIn("exp_avg_sq", self.refused("invalid_replay", tensors=t))

    def test_bad_names(self):
        self.refused("invalid_replay", params=self.names + ["x" * 401])
        self.refused("invalid_replay", params=["0.weight\n"])
        self.refused("invalid_replay", params=self.names + [3])
        self.refused("invalid_replay", params=["p%d" % i for i in range(10001)])
        self.refused("invalid_replay", params=self.names + self.names[:1])

    def test_bad_config(self):
        self.refused("invalid_replay", schema="repro.replay/2")
        self.refused("invalid_replay", kind="forward")
        self.refused("invalid_replay", optimizer={"type": "rmsprop", "lr": LR})
        self.refused("invalid_replay", optimizer={"type": "adam", "lr": True})
        self.refused("invalid_replay", step=-1)
        self.refused("invalid_replay", step=1.0)
        self.refused("invalid_replay", knobs={"threads": "many"})
        self.refused("invalid_replay", inputs={"file": "../replay.safetensors", "sha256": "0" * 64})

    def test_not_safetensors(self):
        ReplayHostileTest.n += 1
        d = os.path.join(self.dir, "case%d" % self.n)
        os.makedirs(d)
        path = os.path.join(d, "replay.safetensors")
        with open(path, "wb") as f:
            f.write(b"\xff" * 64)
        config = os.path.join(d, "config.json")
        with open(config, "w") as f:
            json.dump({"schema": "repro.replay/1", "kind": "update", "optimizer": {"type": "adam", "lr": LR},
                       "step": 0, "params": ["w"], "knobs": {},
                       "inputs": {"file": "replay.safetensors", "sha256": hashlib.sha256(b"\xff" * 64).hexdigest()}},
                      f)
        r = helpers.run_probe("replay", config, os.path.join(d, "out"))
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(helpers.load_json(os.path.join(d, "out", "run.json"))["error"]["type"], "invalid_replay")

    def test_bad_usage(self):
        r = helpers.run_probe("replay", os.path.join(self.dir, "x.json"), os.path.join(self.dir, "o"))
        self.assertEqual(r.returncode, 3)  # a config that cannot be read is an error the host reads
        self.assertEqual(helpers.load_json(os.path.join(self.dir, "o", "run.json"))["error"]["type"], "invalid_replay")
        env = dict(os.environ, PYTHONPATH=helpers.PROBE_DIR)
        r = subprocess.run([sys.executable, "-m", "repro_probe", "replay", "--config", "c.json"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 2)  # --out missing: argparse


if __name__ == "__main__":
    unittest.main()
