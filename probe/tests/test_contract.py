"""The contract between the host and the probe: the knob table both sides share (generated
from src/core/knobs.ts) and the JSON Schemas of config.json, run.json, trace.json and
fingerprint.json (generated from the host's zod schemas), checked against what the probe
actually reads and writes. Needs python3-jsonschema (installed by bootstrap.sh --full)."""

import json
import os
import shutil
import tempfile
import unittest

from helpers import PROBE_DIR, load_json, make_data, run_probe, write_config
from repro_probe import knobs as knobs_mod
from repro_probe.config import DEFAULTS, ProbeError, validate
from repro_probe.knobtable import DEFAULT_KNOBS, ENV_NAME, KNOB_NAMES, KNOBS

try:
    import jsonschema
except ImportError:  # pragma: no cover - CI installs it
    jsonschema = None

SCHEMAS = os.path.join(os.path.dirname(PROBE_DIR), "schemas")
NEEDS_JSONSCHEMA = "python3-jsonschema is not installed (apt-get install python3-jsonschema; bootstrap.sh --full does)"
# In CI a missing prerequisite is a failure, not a skip.
SKIP_JSONSCHEMA = jsonschema is None and not os.environ.get("CI")


def schema_validator(name):
    with open(os.path.join(SCHEMAS, name)) as f:
        schema = json.load(f)
    return jsonschema.Draft202012Validator(schema)


class KnobTableTest(unittest.TestCase):
    def test_defaults_come_from_the_table(self):
        self.assertEqual(DEFAULTS["knobs"], DEFAULT_KNOBS)
        self.assertEqual(set(DEFAULT_KNOBS), set(KNOB_NAMES) | {"env"})

    def test_every_knob_is_echoed_in_effect(self):
        import torch
        effective = knobs_mod.effective_knobs(torch, dict(DEFAULT_KNOBS))
        self.assertEqual(set(effective), set(KNOB_NAMES) | {"env"})

    def test_validation_follows_the_table(self):
        base = json.loads(json.dumps(DEFAULTS))
        base["data"]["sha256"] = "0" * 64
        for knob in KNOBS:
            name, t = knob["name"], knob["type"]
            bad = {"bool": "yes", "int": t.get("max", 0) + 1, "number": t.get("max", 0) * 2, "enum": "nope",
                   "pattern": "tpu"}[t["kind"]]
            cfg = json.loads(json.dumps(base))
            cfg["knobs"][name] = bad
            with self.assertRaises(ProbeError, msg=name):
                validate(cfg, "train")

    def test_env_names_are_upper_case_on_both_sides(self):
        self.assertTrue(ENV_NAME.match("OMP_NUM_THREADS"))
        self.assertIsNone(ENV_NAME.match("lower"))  # the host rejects --set env.lower=1 too


@unittest.skipIf(SKIP_JSONSCHEMA, NEEDS_JSONSCHEMA)
class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="repro-contract-")
        sha = make_data(os.path.join(cls.tmp, "data.safetensors"), rows=128)
        cls.config = write_config(cls.tmp, sha, train={"epochs": 1})
        cls.out = os.path.join(cls.tmp, "out")
        r = run_probe("train", cls.config, cls.out)
        if r.returncode != 0:
            raise AssertionError(r.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, schema, document):
        errors = sorted(schema_validator(schema).iter_errors(document), key=lambda e: list(e.path))
        self.assertEqual([], ["%s: %s" % ("/".join(map(str, e.path)), e.message) for e in errors[:5]])

    def test_config_the_probe_reads(self):
        self.check("probe-config.schema.json", load_json(self.config))

    def test_outputs_the_probe_writes(self):
        for name, schema in (("run.json", "run.schema.json"), ("trace.json", "trace.schema.json"),
                             ("fingerprint.json", "fingerprint.schema.json")):
            with self.subTest(name):
                self.check(schema, load_json(os.path.join(self.out, name)))

    def test_error_run_json(self):
        cfg = load_json(self.config)
        cfg["data"]["sha256"] = "f" * 64
        bad = os.path.join(self.tmp, "bad")
        os.makedirs(bad)
        shutil.copy(os.path.join(self.tmp, "data.safetensors"), bad)
        path = os.path.join(bad, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = run_probe("train", path, os.path.join(bad, "out"))
        self.assertEqual(r.returncode, 3)
        self.check("run.schema.json", load_json(os.path.join(bad, "out", "run.json")))


if __name__ == "__main__":
    unittest.main()
