"""REPRO_EMULATE_CPU=avx2, the test suite's AVX2-host switch (docs/testing.md): ATen and oneDNN are
capped at AVX2 before torch loads, unless the target sets the variable itself; the fingerprint
records the switch, not the variables it added, so both sides of a comparison stay alike and an
image's own setting still shows as its own."""

import os
import subprocess
import sys
import unittest

import helpers

from repro_probe.__main__ import emulate_cpu
from repro_probe.fingerprint import recorded_env


class EmulateCpuTest(unittest.TestCase):
    def test_caps_set_unless_the_target_sets_them(self):
        env = {"REPRO_EMULATE_CPU": "avx2", "PATH": "/bin"}
        self.assertEqual(emulate_cpu(env), ["ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"])
        self.assertEqual(env["ATEN_CPU_CAPABILITY"], "avx2")
        self.assertEqual(env["ONEDNN_MAX_CPU_ISA"], "AVX2")
        own = {"REPRO_EMULATE_CPU": "avx2", "ONEDNN_MAX_CPU_ISA": "SSE41"}
        self.assertEqual(emulate_cpu(own), ["ATEN_CPU_CAPABILITY"])
        self.assertEqual(own["ONEDNN_MAX_CPU_ISA"], "SSE41")
        self.assertEqual(emulate_cpu({"PATH": "/bin"}), [])

    def test_unknown_value_is_refused(self):
        with self.assertRaises(SystemExit) as cm:
            emulate_cpu({"REPRO_EMULATE_CPU": "avx512"})
        self.assertIn("the only value is avx2", str(cm.exception))

    def test_fingerprint_records_the_switch_not_what_it_added(self):
        env = {"REPRO_EMULATE_CPU": "avx2", "ONEDNN_MAX_CPU_ISA": "SSE41", "OMP_NUM_THREADS": "1"}
        emulate_cpu(env)
        rec = recorded_env(env)
        self.assertEqual(rec.get("REPRO_EMULATE_CPU"), "avx2")
        self.assertNotIn("ATEN_CPU_CAPABILITY", rec)
        self.assertEqual(rec.get("ONEDNN_MAX_CPU_ISA"), "SSE41")
        self.assertNotIn("REPRO_EMULATED_ENV", rec)
        plain = recorded_env({"ONEDNN_MAX_CPU_ISA": "AVX2"})
        self.assertEqual(plain.get("ONEDNN_MAX_CPU_ISA"), "AVX2")
        self.assertNotIn("REPRO_EMULATE_CPU", plain)

    def test_in_effect_in_the_probe_process(self):
        """torch loaded after the switch reports ATen's capability capped at AVX2 (on any x86-64 host:
        AVX2 is the floor of ours)."""
        env = dict(os.environ, PYTHONPATH=helpers.PROBE_DIR, REPRO_EMULATE_CPU="avx2")
        env.pop("ATEN_CPU_CAPABILITY", None)
        code = ("import repro_probe.__main__ as m; m.emulate_cpu(); import torch; "
                "from repro_probe.torchconfig import parse_config_show; "
                "print(parse_config_show(torch.__config__.show()).get('cpu_capability'))")
        out = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(out.stdout.split(), ["AVX2"])


if __name__ == "__main__":
    unittest.main()
