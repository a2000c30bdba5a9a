"""trace.capture (train mode) and `replay` kind forward, as subprocesses: a capture leaves the trace of
steps <= s unchanged and stops after step s; replaying each workload's module on its captured inputs
in the same python gives the trace's own fwd/<path> digests; hostile inputs are refused in one line."""

import copy
import hashlib
import json
import os
import shutil
import tempfile
import unittest

import helpers

from repro_probe.safetensors import read_safetensors, tensor_sha256

TRAIN = {"epochs": 2, "batch_size": 32}
# each workload's module replayed: a first Linear (mlp), a conv leaf (cnn), the LSTM, a LayerNorm,
# and a module of several (non-contiguous) arguments
MODULES = {"mlp": "mlp.0", "cnn": "stem.conv", "lstm": "lstm", "attention": "norm1"}


def sha_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fwd_entries(trace, step, module):
    name = "fwd/" + module
    return [(e["name"], e["dtype"], e["shape"], e["sha256"]) for s in trace["steps"] if s["step"] == step
            for e in s["entries"] if e["name"] == name or e["name"].startswith(name + ".")]


class Runs(object):
    """Train runs and their out dirs under one temporary directory, cached by name."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="repro-capture-test-")
        self.cache = {}
        self.n = 0

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def data(self, workload):
        path = os.path.join(self.dir, "data-%s.safetensors" % workload)
        if not os.path.exists(path):
            helpers.MAKERS[workload](path)
        return path

    def train(self, workload, capture=None, epochs=None):
        key = (workload, json.dumps(capture), epochs)
        if key in self.cache:
            return self.cache[key]
        self.n += 1
        d = os.path.join(self.dir, "train%d" % self.n)
        os.makedirs(d)
        shutil.copy(self.data(workload), os.path.join(d, "data.safetensors"))
        train = dict(TRAIN, epochs=epochs or TRAIN["epochs"])
        config = helpers.write_config(d, sha_file(os.path.join(d, "data.safetensors")), workload=workload,
                                      train=train, trace={"capture": capture, "store_steps": []})
        out = os.path.join(d, "out")
        r = helpers.run_probe("train", config, out)
        loaded = dict((n, helpers.load_json(os.path.join(out, n + ".json"))) for n in ("run", "trace", "capture")
                      if os.path.exists(os.path.join(out, n + ".json")))
        self.cache[key] = (r, loaded, out, helpers.load_json(config))
        return self.cache[key]

    def replay(self, workload, train_cfg, capture_out, meta=None, sha=None, toggle=None, capture_file=None,
               **overrides):
        """Write a forward replay config next to the data and capture; returns (result, run.json or None, rc)."""
        self.n += 1
        d = os.path.join(self.dir, "replay%d" % self.n)
        os.makedirs(d)
        shutil.copy(self.data(workload), os.path.join(d, "data.safetensors"))
        src = capture_file or os.path.join(capture_out, "capture.safetensors")
        shutil.copy(src, os.path.join(d, "capture.safetensors"))
        meta = meta if meta is not None else helpers.load_json(os.path.join(capture_out, "capture.json"))
        cfg = {"schema": "repro.replay/1", "kind": "forward", "step": meta.get("step"), "module": meta.get("module"),
               "train": train_cfg,
               "capture": {"file": "capture.safetensors", "meta": meta,
                           "sha256": sha or sha_file(os.path.join(d, "capture.safetensors"))},
               "toggle": toggle}
        cfg.update(overrides)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        out = os.path.join(d, "out")
        r = helpers.run_probe("replay", os.path.join(d, "config.json"), out)
        run_json = os.path.join(out, "run.json")
        run = helpers.load_json(run_json) if os.path.exists(run_json) else None
        return helpers.load_json(os.path.join(out, "replay.json")), run, r, out


RUNS = None


def setUpModule():
    global RUNS
    RUNS = Runs()


def tearDownModule():
    RUNS.close()


class CaptureTest(unittest.TestCase):
    def test_capture_keeps_the_trace_and_stops(self):
        r0, plain, _, _ = RUNS.train("mlp")
        self.assertEqual(r0.returncode, 0, r0.stderr)
        for s in (0, 1, 3):
            with self.subTest(step=s):
                r, got, out, _ = RUNS.train("mlp", {"step": s, "module": "mlp.1"})
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(got["run"]["status"], "ok")
                self.assertEqual(got["run"]["steps"], s + 1)
                steps = [st["step"] for st in got["trace"]["steps"]]
                self.assertEqual(steps, ["init"] + list(range(s + 1)))
                self.assertEqual(got["trace"]["steps"], plain["trace"]["steps"][:s + 2])  # bitwise: every digest
                meta = got["capture"]
                self.assertEqual((meta["schema"], meta["step"], meta["module"], meta["type"]),
                                 ("repro.capture/1", s, "mlp.1", "BatchNorm1d"))
                self.assertEqual((meta["training"], meta["grad_enabled"]), (True, True))
                self.assertEqual(meta["structure"], ["T"])
                self.assertEqual(meta["requires_grad"], {"arg/0": True})
                names = [e["name"] for e in meta["entries"]]
                self.assertEqual(names, ["arg/0", "state/bias", "state/num_batches_tracked", "state/running_mean",
                                         "state/running_var", "state/weight", "rng/cpu"])
                stored, _ = read_safetensors(os.path.join(out, "capture.safetensors"))
                self.assertEqual(sorted(stored), sorted(names))
                for e in meta["entries"]:
                    t = stored[e["name"]]
                    self.assertEqual((e["dtype"], e["shape"], e["sha256"]),
                                     (str(t.dtype).replace("torch.", ""), list(t.shape), tensor_sha256(t)))
                self.assertEqual(stored["state/num_batches_tracked"].dtype.is_floating_point, False)
                self.assertEqual(stored["rng/cpu"].dtype, __import__("torch").uint8)

    def test_module_that_never_runs_in_the_step(self):
        # a step past the run's end: training ends as usual, nothing captured
        r, got, out, _ = RUNS.train("mlp", {"step": 10 ** 6, "module": "mlp.1"}, epochs=1)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(got["run"]["status"], "ok")
        self.assertNotIn("capture", got)
        self.assertFalse(os.path.exists(os.path.join(out, "capture.safetensors")))

    def test_not_a_submodule(self):
        for module in ("mlp.99", "nope"):
            r, got, _, _ = RUNS.train("mlp", {"step": 0, "module": module})
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertEqual(got["run"]["error"]["type"], "invalid_config")

    def test_bad_capture_config(self):
        from repro_probe.config import DEFAULTS, validate
        from repro_probe.errors import ProbeError
        for bad in ({"step": -1, "module": "a"}, {"step": 0, "module": ""}, {"step": 0, "module": "a\n"},
                    {"step": 0, "module": "a" * 401}, {"step": True, "module": "a"}, {"step": 0}, [0, "a"],
                    {"step": 0, "module": "a", "x": 1}):
            cfg = copy.deepcopy(DEFAULTS)
            cfg["trace"]["capture"] = bad
            with self.assertRaises(ProbeError) as ctx:
                validate(cfg, "fingerprint")
            self.assertEqual(ctx.exception.type, "invalid_config")


class ForwardReplayTest(unittest.TestCase):
    def check(self, workload, module, step):
        r, got, out, cfg = RUNS.train(workload, {"step": step, "module": module})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(got["capture"]["step"], step)
        res, run, rr, rout = RUNS.replay(workload, cfg, out)
        self.assertEqual(rr.returncode, 0, rr.stderr)
        self.assertIsNone(run)
        self.assertEqual((res["status"], res["error"], res["kind"], res["module"], res["toggle"], res["step"]),
                         ("ok", None, "forward", module, None, step))
        want = fwd_entries(got["trace"], step, module)
        self.assertTrue(want)
        self.assertEqual([(e["name"], e["dtype"], e["shape"], e["sha256"]) for e in res["entries"]], want)
        stored, _ = read_safetensors(os.path.join(rout, "replay.safetensors"))
        self.assertEqual(sorted(stored), sorted(e["name"] for e in res["entries"]))
        return res

    def test_fidelity_every_workload(self):
        for workload, module in sorted(MODULES.items()):
            for step in (0, 1):
                with self.subTest(workload=workload, step=step):
                    res = self.check(workload, module, step)
                    if workload == "lstm":
                        self.assertEqual([e["name"] for e in res["entries"]],
                                         ["fwd/lstm.0", "fwd/lstm.1.0", "fwd/lstm.1.1"])

    def test_fidelity_several_strided_arguments(self):
        res = self.check("attention", "attn.core", 0)
        self.assertEqual([e["name"] for e in res["entries"]], ["fwd/attn.core"])
        meta = RUNS.train("attention", {"step": 0, "module": "attn.core"})[1]["capture"]
        self.assertEqual(meta["structure"], ["T", "T", "T"])

    def test_toggle_mkldnn_off(self):
        _, _, out, cfg = RUNS.train("cnn", {"step": 0, "module": "stem.conv"})
        res, run, r, _ = RUNS.replay("cnn", cfg, out, toggle={"mkldnn": False})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((res["status"], res["toggle"]), ("ok", {"mkldnn": False}))
        self.assertEqual([e["name"] for e in res["entries"]], ["fwd/stem.conv"])


class ForwardHostileTest(unittest.TestCase):
    def refused(self, error_type, **kwargs):
        _, _, out, cfg = RUNS.train("mlp", {"step": 0, "module": "mlp.1"})
        res, run, r, rout = RUNS.replay("mlp", kwargs.pop("train_cfg", cfg), out, **kwargs)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(sorted(run), ["error", "schema", "status"])
        self.assertEqual(run["error"]["type"], error_type, run["error"]["message"])
        self.assertNotIn("\n", run["error"]["message"])
        self.assertEqual((res["status"], res["error"], res["entries"]), ("error", run["error"], []))
        self.assertFalse(os.path.exists(os.path.join(rout, "replay.safetensors")))
        return run["error"]["message"]

    def meta(self):
        _, got, _, _ = RUNS.train("mlp", {"step": 0, "module": "mlp.1"})
        return copy.deepcopy(got["capture"])

    def test_capture_sha_mismatch(self):
        self.refused("data_hash_mismatch", sha="0" * 64)

    def test_data_sha_mismatch(self):
        _, _, _, cfg = RUNS.train("mlp", {"step": 0, "module": "mlp.1"})
        cfg = copy.deepcopy(cfg)
        cfg["data"]["sha256"] = "1" * 64
        self.refused("data_hash_mismatch", train_cfg=cfg)

    def test_state_of_the_wrong_shape(self):
        import torch
        from repro_probe.capture import write_exact
        _, got, out, _ = RUNS.train("mlp", {"step": 0, "module": "mlp.1"})
        stored, _ = read_safetensors(os.path.join(out, "capture.safetensors"))
        stored["state/weight"] = torch.ones(3)
        path = os.path.join(RUNS.dir, "wrong-shape.safetensors")
        meta = self.meta()
        write_exact(path, list(stored.items()))
        for e in meta["entries"]:
            if e["name"] == "state/weight":
                e.update(shape=[3], sha256=tensor_sha256(stored["state/weight"]))
        self.assertIn("state/weight", self.refused("invalid_replay", meta=meta, capture_file=path))

    def test_structure_naming_a_missing_tensor(self):
        meta = self.meta()
        meta["structure"] = ["T", "T"]
        meta["requires_grad"]["arg/1"] = False
        self.assertIn("arg/1", self.refused("invalid_replay", meta=meta))

    def test_meta_inconsistent_with_the_file(self):
        meta = self.meta()
        meta["entries"][0]["sha256"] = "2" * 64
        self.refused("invalid_replay", meta=meta)
        meta = self.meta()
        meta["entries"] = [e for e in meta["entries"] if e["name"] != "state/bias"]
        self.refused("invalid_replay", meta=meta)
        meta = self.meta()
        meta["entries"][0]["shape"] = [1]
        self.refused("invalid_replay", meta=meta)

    def test_bad_config(self):
        meta = self.meta()
        self.refused("invalid_replay", module="mlp.99")
        self.refused("invalid_replay", step=1)
        self.refused("invalid_replay", toggle={"mkldnn": "no"})
        self.refused("invalid_replay", toggle={"cudnn": False})
        self.refused("invalid_replay", train={"workload": "mlp"})
        self.refused("invalid_replay", capture={"file": "../capture.safetensors", "sha256": "0" * 64, "meta": meta})
        for key, value in (("structure", [["T", [["T"]]]]), ("structure", "T"), ("requires_grad", {}),
                           ("type", "Linear"), ("schema", "repro.capture/2"), ("training", 1),
                           ("strides", {"arg/0": [1, 1]})):
            bad = self.meta()
            bad[key] = value
            self.refused("invalid_replay", meta=bad)


if __name__ == "__main__":
    unittest.main()
