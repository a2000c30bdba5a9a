"""config.json validation: defaults, type and range checks, unknown keys, train-mode data fields."""

import copy
import json
import os
import tempfile
import unittest

import helpers  # noqa: F401

from repro_probe.config import DEFAULTS, load_config
from repro_probe.errors import ProbeError

SHA = "ab" * 32


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "config.json")

    def tearDown(self):
        self.dir.cleanup()

    def load(self, cfg, mode="train"):
        with open(self.path, "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
        return load_config(self.path, mode)

    def base(self):
        cfg = copy.deepcopy(DEFAULTS)
        cfg["data"]["sha256"] = SHA
        return cfg

    def test_contract_example_is_valid(self):
        cfg, warnings, cfg_dir = self.load(self.base())
        self.assertEqual(warnings, [])
        self.assertEqual(cfg_dir, self.dir.name)
        self.assertEqual(cfg["train"]["epochs"], 3)

    def test_defaults_filled(self):
        cfg, _, _ = self.load({"schema": "repro.config/1", "data": {"file": "d.safetensors", "sha256": SHA},
                               "knobs": {"threads": 2}})
        self.assertEqual(cfg["knobs"]["threads"], 2)
        self.assertIsNone(cfg["knobs"]["interop_threads"])
        self.assertEqual(cfg["model"]["hidden"], [64, 32])
        self.assertEqual(cfg["trace"], {"enabled": True, "store_steps": None, "capture": None, "replay": None})

    def test_workload_and_deterministic_warn(self):
        cfg, _, _ = self.load(self.base())
        self.assertEqual(cfg["workload"], "mlp")
        for name in ("mlp", "cnn", "lstm", "attention"):
            raw = self.base()
            raw["workload"] = name
            raw["knobs"]["deterministic"] = "warn"
            cfg, warnings, _ = self.load(raw)
            self.assertEqual((cfg["workload"], cfg["knobs"]["deterministic"], warnings), (name, "warn", []))

    def test_fingerprint_mode_needs_no_data(self):
        cfg, _, _ = self.load({"schema": "repro.config/1", "knobs": {"device": "cpu"}}, mode="fingerprint")
        self.assertEqual(cfg["knobs"]["device"], "cpu")

    def test_unknown_keys_warn(self):
        cfg = self.base()
        cfg["extra"] = 1
        cfg["knobs"]["turbo"] = True
        _, warnings, _ = self.load(cfg)
        self.assertEqual(len(warnings), 2)

    def test_invalid_values(self):
        cases = [
            ("schema", None, "repro.config/2"),
            ("data", "sha256", "xyz"),
            ("data", "sha256", None),
            ("model", "hidden", [64, 0]),
            ("model", "hidden", 64),
            ("model", "dropout", 1.0),
            ("model", "embedding_dim", True),
            ("train", "epochs", 0),
            ("train", "batch_size", 1.5),
            ("train", "lr", -1),
            ("train", "lr", float("nan")),
            ("train", "optimizer", "rmsprop"),
            ("train", "seed", -1),
            ("train", "val_fraction", 1),
            ("knobs", "device", "gpu"),
            ("knobs", "threads", 0),
            ("knobs", "threads", True),
            ("knobs", "deterministic", 1),
            ("knobs", "deterministic", "Warn"),
            ("knobs", "deterministic", None),
            ("workload", None, "resnet"),
            ("workload", None, None),
            ("workload", None, ["cnn"]),
            ("knobs", "tf32_matmul", "yes"),
            ("knobs", "float32_matmul_precision", "low"),
            ("knobs", "amp", "fp8"),
            ("knobs", "env", {"A B": "1"}),
            ("knobs", "env", {"A": 1}),
            ("trace", "store_steps", [0, -1]),
            ("trace", "enabled", None),
        ]
        for section, key, value in cases:
            cfg = self.base()
            if key is None:
                cfg[section] = value
            else:
                cfg[section][key] = value
            with self.assertRaises(ProbeError, msg="%s.%s=%r" % (section, key, value)) as ctx:
                self.load(cfg)
            self.assertEqual(ctx.exception.type, "invalid_config")

    def test_not_json(self):
        with self.assertRaises(ProbeError):
            self.load("{not json")
        with self.assertRaises(ProbeError):
            self.load("[]")


if __name__ == "__main__":
    unittest.main()
