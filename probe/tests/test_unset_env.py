"""REPRO_UNSET_ENV: the names a counterfactual rerun takes away (an image's ENV that no engine
flag can remove) are gone before torch loads, and so is the variable itself; the knobs echo
reports them unset."""

import os
import subprocess
import sys
import unittest

import helpers

from repro_probe.__main__ import unset_requested_env
from repro_probe.knobs import _echoed_env


class UnsetEnvTest(unittest.TestCase):
    def test_names_removed(self):
        env = {"REPRO_UNSET_ENV": "ONEDNN_MAX_CPU_ISA,,DNNL_VERBOSE", "ONEDNN_MAX_CPU_ISA": "AVX2", "PATH": "/bin"}
        self.assertEqual(unset_requested_env(env), ["ONEDNN_MAX_CPU_ISA", "DNNL_VERBOSE"])
        self.assertEqual(env, {"PATH": "/bin"})
        self.assertEqual(unset_requested_env({"PATH": "/bin"}), [])

    def test_echo_names_the_unset_variables(self):
        self.assertEqual(_echoed_env({"OMP_NUM_THREADS": "1", "REPRO_UNSET_ENV": "ONEDNN_MAX_CPU_ISA"}),
                         {"OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA"})

    def test_gone_in_the_probe_process_before_torch(self):
        env = dict(os.environ, PYTHONPATH=helpers.PROBE_DIR, REPRO_UNSET_ENV="ONEDNN_MAX_CPU_ISA",
                   ONEDNN_MAX_CPU_ISA="AVX2")
        code = ("import os, repro_probe.__main__ as m; m.unset_requested_env(); import torch; "
                "print(os.environ.get('ONEDNN_MAX_CPU_ISA'), os.environ.get('REPRO_UNSET_ENV'))")
        out = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(out.stdout.split(), ["None", "None"])


if __name__ == "__main__":
    unittest.main()
