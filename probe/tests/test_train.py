"""`train` mode end to end, as subprocesses on a small synthetic data set: bitwise reproducibility,
stored values, seeds, data hash mismatch, non-finite values, trace off, knob errors."""

import hashlib
import os
import shutil
import tempfile
import unittest

import helpers
import torch

from repro_probe.safetensors import read_safetensors, tensor_bytes

SMALL = {"train": {"epochs": 2, "batch_size": 64}, "model": {"hidden": [16, 8]}}


class TrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="repro-probe-test-")
        cls.sha = helpers.make_data(os.path.join(cls.dir, "data.safetensors"))
        cls.runs = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def train(self, name, data_sha=None, **sections):
        """Run the probe in its own directory (config next to a copy of the data); cached by name."""
        if name in self.runs:
            return self.runs[name]
        d = os.path.join(self.dir, name)
        os.makedirs(d)
        shutil.copy(os.path.join(self.dir, "data.safetensors"), d)
        merged = {k: dict(v) for k, v in SMALL.items()}
        for k, v in sections.items():
            merged.setdefault(k, {}).update(v)
        cfg = helpers.write_config(d, data_sha or self.sha, **merged)
        out = os.path.join(d, "out")
        r = helpers.run_probe("train", cfg, out)
        run, trace = (helpers.load_json(os.path.join(out, n)) if os.path.exists(os.path.join(out, n)) else None
                      for n in ("run.json", "trace.json"))
        self.runs[name] = (r, run, trace, out)
        return self.runs[name]

    @staticmethod
    def digests(trace):
        return [(s["step"], e["name"], e["sha256"]) for s in trace["steps"] for e in s["entries"]]

    def test_ok_run_shape(self):
        r, run, trace, out = self.train("a")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(run["status"], "ok")
        self.assertIsNone(run["error"])
        self.assertEqual(run["data"], {"sha256": self.sha, "rows": 256, "train_rows": 204, "val_rows": 52,
                                       "numeric": 4, "categorical": 2, "classes": 3})
        self.assertEqual(run["steps"], 8)  # ceil(204 / 64) = 4 per epoch
        self.assertEqual([e["last_step"] for e in run["epochs"]], [3, 7])
        self.assertEqual(run["model"]["modules"], ["emb.0", "emb.1"] + ["mlp.%d" % i for i in range(9)])
        self.assertEqual(run["knobs_effective"]["device"], "cpu")
        self.assertIsInstance(run["knobs_effective"]["threads"], int)
        self.assertEqual(run["nonfinite"], {"loss": 0, "entries": 0})
        for key in ("import_seconds", "setup_seconds", "train_seconds", "total_seconds"):
            self.assertGreaterEqual(run["timings"][key], 0)
        self.assertTrue(0 <= run["final"]["val_accuracy"] <= 1)
        self.assertTrue(os.path.exists(os.path.join(out, "fingerprint.json")))

        steps = trace["steps"]
        self.assertEqual(trace["schema"], "repro.trace/1")
        self.assertEqual([s["step"] for s in steps], ["init"] + list(range(8)))
        self.assertEqual([s["stored"] for s in steps], [True, True, True, False, True, False, False, False, True])
        names = [e["name"] for e in steps[1]["entries"]]
        params = ["emb.0.weight", "emb.1.weight", "mlp.0.weight", "mlp.0.bias", "mlp.1.weight", "mlp.1.bias",
                  "mlp.4.weight", "mlp.4.bias", "mlp.5.weight", "mlp.5.bias", "mlp.8.weight", "mlp.8.bias"]
        buffers = ["mlp.1.running_mean", "mlp.1.running_var", "mlp.1.num_batches_tracked",
                   "mlp.5.running_mean", "mlp.5.running_var", "mlp.5.num_batches_tracked"]
        self.assertEqual(names, ["fwd/" + m for m in run["model"]["modules"]] + ["out", "loss"]
                         + ["grad/" + p for p in params]
                         + ["opt/%s.%s" % (p, k) for p in params for k in ("exp_avg", "exp_avg_sq")]
                         + ["param/" + p for p in params] + ["buffer/" + b for b in buffers])
        self.assertEqual([e["name"] for e in steps[0]["entries"]],
                         ["param/" + p for p in params] + ["buffer/" + b for b in buffers])
        loss = [e for e in steps[1]["entries"] if e["name"] == "loss"][0]
        self.assertEqual((loss["dtype"], loss["shape"]), ("float64", []))
        nbt = [e for e in steps[1]["entries"] if e["name"] == "buffer/mlp.1.num_batches_tracked"][0]
        self.assertEqual(nbt["dtype"], "int64")

        stored, _ = read_safetensors(os.path.join(out, "tensors.safetensors"))
        for key in ("init|param/mlp.0.weight", "0|loss", "0|fwd/mlp.0", "1|grad/mlp.0.weight",
                    "7|buffer/mlp.1.num_batches_tracked", "3|param/emb.1.weight"):
            self.assertIn(key, stored)
        self.assertNotIn("4|loss", stored)
        self.assertEqual(stored["0|loss"].dtype, torch.float64)
        self.assertEqual(list(stored["0|loss"].shape), [])
        self.assertEqual(int(stored["7|buffer/mlp.1.num_batches_tracked"]), 8)
        # every stored value hashes to its trace digest (same dtype here: no widening on the CPU)
        by_key = {"%s|%s" % (s["step"], e["name"]): e for s in steps for e in s["entries"]}
        self.assertEqual(len(stored), sum(len(s["entries"]) for s in steps if s["stored"]))
        for key, value in stored.items():
            e = by_key[key]
            self.assertEqual(list(value.shape), e["shape"], key)
            self.assertEqual(hashlib.sha256(tensor_bytes(value)).hexdigest(), e["sha256"], key)

    def test_bitwise_reproducible(self):
        _, run_a, trace_a, _ = self.train("a")
        r, run_b, trace_b, _ = self.train("b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.digests(trace_a), self.digests(trace_b))
        self.assertEqual(run_a["final"], run_b["final"])

    def test_seed_changes_digests(self):
        _, _, trace_a, _ = self.train("a")
        r, run, trace_s, _ = self.train("seed", train={"seed": 99})
        self.assertEqual(run["status"], "ok", r.stderr)
        a, s = self.digests(trace_a), self.digests(trace_s)
        self.assertEqual([x[:2] for x in a], [x[:2] for x in s])
        self.assertNotEqual(a[0][2], s[0][2])  # init params already differ
        self.assertTrue(all(x[2] != y[2] for x, y in zip(a, s) if x[1].startswith("param/mlp.0")))

    def test_store_steps_override(self):
        r, run, trace, out = self.train("store", trace={"store_steps": [2, 5, 100]})
        self.assertEqual(run["status"], "ok", r.stderr)
        self.assertEqual([s["step"] for s in trace["steps"] if s["stored"]], ["init", 2, 5])
        stored, _ = read_safetensors(os.path.join(out, "tensors.safetensors"))
        self.assertEqual({k.split("|")[0] for k in stored}, {"init", "2", "5"})

    def test_trace_disabled(self):
        r, run, trace, out = self.train("notrace", trace={"enabled": False})
        self.assertEqual(run["status"], "ok", r.stderr)
        self.assertEqual(trace["steps"], [])
        stored, _ = read_safetensors(os.path.join(out, "tensors.safetensors"))
        self.assertEqual(stored, {})
        _, run_a, _, _ = self.train("a")
        self.assertEqual(run["final"], run_a["final"])  # the trace does not perturb training

    def test_data_hash_mismatch(self):
        r, run, trace, out = self.train("badhash", data_sha="0" * 64)
        self.assertEqual(r.returncode, 3)
        self.assertEqual(run["status"], "error")
        self.assertEqual(run["error"]["type"], "data_hash_mismatch")
        self.assertNotIn("\n", run["error"]["message"])
        self.assertTrue(os.path.exists(os.path.join(out, "fingerprint.json")))

    def test_nonfinite_lr(self):
        r, run, trace, out = self.train("hugelr", train={"lr": 1e30, "optimizer": "sgd"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(run["status"], "ok")
        self.assertGreater(run["nonfinite"]["entries"], 0)
        self.assertGreater(run["nonfinite"]["loss"], 0)
        counted = sum(1 for s in trace["steps"] for e in s["entries"] if e["nonfinite"] > 0)
        self.assertEqual(counted, run["nonfinite"]["entries"])
        with open(os.path.join(out, "run.json")) as f:
            self.assertNotIn("NaN", f.read())

    def test_nonfinite_data(self):
        d = os.path.join(self.dir, "poison-data")
        os.makedirs(d)
        sha = helpers.make_data(os.path.join(d, "data.safetensors"), poison=True)
        cfg = helpers.write_config(d, sha, **SMALL)
        r = helpers.run_probe("train", cfg, os.path.join(d, "out"))
        self.assertEqual(r.returncode, 0, r.stderr)
        run = helpers.load_json(os.path.join(d, "out", "run.json"))
        self.assertGreater(run["nonfinite"]["entries"], 0)

    def test_bf16_autocast_cpu(self):
        r, run, trace, out = self.train("bf16", knobs={"amp": "bf16"})
        self.assertEqual(r.returncode, 0, r.stderr)
        step0 = {e["name"]: e for e in trace["steps"][1]["entries"]}
        self.assertEqual(step0["fwd/mlp.0"]["dtype"], "bfloat16")
        stored, _ = read_safetensors(os.path.join(out, "tensors.safetensors"))
        self.assertEqual(stored["0|fwd/mlp.0"].dtype, torch.float32)  # widened

    def test_knob_errors(self):
        r, run, _, _ = self.train("fp16cpu", knobs={"amp": "fp16"})
        if run["status"] == "error":  # fp16 autocast on the CPU is unsupported before torch 2.x
            self.assertEqual(run["error"]["type"], "unsupported_knob")
            self.assertEqual(r.returncode, 3)
        if not torch.cuda.is_available():
            r, run, _, _ = self.train("cuda", knobs={"device": "cuda"})
            self.assertEqual(r.returncode, 3)
            self.assertEqual(run["error"]["type"], "cuda_unavailable")
        if not hasattr(torch, "compile"):
            r, run, _, _ = self.train("compile", knobs={"compile": True})
            self.assertEqual(r.returncode, 3)
            self.assertEqual(run["error"]["type"], "unsupported_knob")

    def test_invalid_config(self):
        r, run, _, out = self.train("invalid", train={"optimizer": "lbfgs"})
        self.assertEqual(r.returncode, 3)
        self.assertEqual(run["error"]["type"], "invalid_config")
        self.assertIsNone(run["knobs_requested"])

    def test_edge_shapes(self):
        """No categorical columns, no hidden layer, SGD, interop threads, a trailing batch of one row."""
        d = os.path.join(self.dir, "edge")
        os.makedirs(d)
        sha = helpers.make_data(os.path.join(d, "data.safetensors"), cards=())
        cfg = helpers.write_config(d, sha, train={"epochs": 2, "batch_size": 29, "optimizer": "sgd"},
                                   model={"hidden": []}, knobs={"interop_threads": 2})
        r = helpers.run_probe("train", cfg, os.path.join(d, "out"))
        self.assertEqual(r.returncode, 0, r.stderr)
        run = helpers.load_json(os.path.join(d, "out", "run.json"))
        self.assertEqual(run["model"]["modules"], ["mlp.0"])
        self.assertEqual(run["knobs_effective"]["interop_threads"], 2)
        self.assertEqual(run["steps"], 14)  # 204 rows / 29 = 7 full batches; the 1-row remainder is dropped
        self.assertEqual([e["last_step"] for e in run["epochs"]], [6, 13])

    def test_deterministic_knob(self):
        r, run, trace, _ = self.train("det", knobs={"deterministic": True, "threads": 1})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(run["knobs_effective"]["deterministic"])
        self.assertEqual(run["knobs_effective"]["threads"], 1)
        fp = helpers.load_json(os.path.join(self.runs["det"][3], "fingerprint.json"))
        self.assertTrue(fp["flags"]["deterministic_algorithms"])
        self.assertTrue(fp["flags"]["cudnn_deterministic"])


if __name__ == "__main__":
    unittest.main()
