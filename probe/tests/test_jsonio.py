"""JSON output: non-finite floats become null, strings are capped, messages are one line."""

import json
import os
import tempfile
import unittest

import helpers  # noqa: F401

from repro_probe.jsonio import one_line, sanitize, write_json


class JsonIoTest(unittest.TestCase):
    def test_nonfinite_become_null(self):
        v = sanitize({"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": True, "d": 3})
        self.assertEqual(v, {"a": None, "b": [None, None, 1.5], "c": True, "d": 3})

    def test_write_is_strict_json(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.json")
            write_json(p, {"x": float("nan"), "s": "y" * 5000, "t": (1, 2)})
            with open(p) as f:
                text = f.read()
            self.assertNotIn("NaN", text)
            v = json.loads(text)
            self.assertIsNone(v["x"])
            self.assertEqual(len(v["s"]), 4096)
            self.assertEqual(v["t"], [1, 2])
            self.assertFalse(os.path.exists(p + ".tmp"))

    def test_one_line(self):
        self.assertEqual(one_line("a\nb\r\n  c\t d"), "a b c d")
        self.assertEqual(len(one_line("x " * 10000)), 4096)


if __name__ == "__main__":
    unittest.main()
