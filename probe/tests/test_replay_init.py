"""`replay` kind init: rebuilding each workload's model in a fresh process reproduces the trace's
`init` digests (fidelity), with the same generator state before it; ATEN_CPU_CAPABILITY=default
changes an initializer's bytes where the host's CPU runs a vectorized one; hostile configs fail in one line."""

import hashlib
import json
import os
import shutil
import tempfile
import unittest

import helpers

WORKLOADS = ("mlp", "cnn", "lstm", "attention")


def sha_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class InitReplayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="repro-init-replay-")
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def workdir(self, workload):
        type(self).n += 1
        d = os.path.join(self.dir, "%s%d" % (workload, self.n))
        os.makedirs(d)
        helpers.MAKERS[workload](os.path.join(d, "data.safetensors"))
        return d

    def train(self, workload, env=None):
        d = self.workdir(workload)
        config = helpers.write_config(d, sha_file(os.path.join(d, "data.safetensors")), workload=workload,
                                      train={"epochs": 1, "batch_size": 32},
                                      knobs={"env": env or {}}, trace={"store_steps": []})
        out = os.path.join(d, "out")
        r = helpers.run_probe("train", config, out)
        self.assertEqual(r.returncode, 0, r.stderr)
        init = [s for s in helpers.load_json(os.path.join(out, "trace.json"))["steps"] if s["step"] == "init"][0]
        return helpers.load_json(config), dict((e["name"], e["sha256"]) for e in init["entries"])

    def replay(self, workload, train_cfg, **overrides):
        d = self.workdir(workload)
        cfg = {"schema": "repro.replay/1", "kind": "init", "train": train_cfg, "toggle": None}
        cfg.update(overrides)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        out = os.path.join(d, "out")
        r = helpers.run_probe("replay", os.path.join(d, "config.json"), out)
        return r, helpers.load_json(os.path.join(out, "replay.json"))

    def test_fidelity_every_workload(self):
        for w in WORKLOADS:
            with self.subTest(workload=w):
                train_cfg, recorded = self.train(w)
                r, result = self.replay(w, train_cfg)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual((result["status"], result["kind"]), ("ok", "init"))
                got = dict((e["name"], e["sha256"]) for e in result["entries"])
                self.assertEqual(list(got), list(recorded))  # the same names in the same order
                self.assertEqual(got, recorded)
                self.assertRegex(result["rng_before"], "^[0-9a-f]{64}$")

    def test_same_generator_state_for_the_same_seed(self):
        train_cfg, _ = self.train("mlp")
        _, one = self.replay("mlp", train_cfg)
        other = json.loads(json.dumps(train_cfg))
        other["knobs"]["env"] = {"ATEN_CPU_CAPABILITY": "default"}
        _, two = self.replay("mlp", other)
        self.assertEqual(one["rng_before"], two["rng_before"])
        seeded = json.loads(json.dumps(train_cfg))
        seeded["train"]["seed"] += 1
        _, three = self.replay("mlp", seeded)
        self.assertNotEqual(one["rng_before"], three["rng_before"])

    def test_hostile_config_is_one_line(self):
        train_cfg, _ = self.train("mlp")
        for overrides, needle in (({"toggle": {"mkldnn": "no"}}, "toggle"),
                                  ({"train": {"workload": "nope"}}, "train"),
                                  ({"train": dict(train_cfg, knobs=dict(train_cfg["knobs"], compile=True))},
                                   "compile")):
            with self.subTest(needle=needle):
                r, result = self.replay("mlp", train_cfg, **overrides)
                self.assertEqual(r.returncode, 3)
                self.assertEqual(result["status"], "error")
                self.assertEqual(result["error"]["type"], "invalid_replay")
                self.assertIn(needle, result["error"]["message"])
                self.assertNotIn("\n", result["error"]["message"])


if __name__ == "__main__":
    unittest.main()
