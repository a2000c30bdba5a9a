"""Fingerprint pieces (env redaction, os-release, version decoding) and `fingerprint` mode end to end."""

import json
import os
import tempfile
import time
import unittest

import helpers
import torch

from repro_probe.fingerprint import _version_text, parse_os_release, redact_env


class RedactEnvTest(unittest.TestCase):
    def test_allowlist_and_secrets(self):
        env = {
            "OMP_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": "0,1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
            "PYTHONHASHSEED": "0", "TORCH_HOME": "/t", "NCCL_DEBUG": "INFO", "KMP_AFFINITY": "compact",
            "PATH": "/usr/bin", "HOME": "/root", "PYTHONPATH": "/x", "MY_OMP_THING": "1",
            "HF_TOKEN": "x", "TORCH_TOKEN": "secret", "NVIDIA_API_KEY": "k", "CUDA_SECRET": "s",
            "MKL_PASSWORD": "p", "OMP_CREDENTIALS": "c", "NCCL_AUTH_HEADER": "a", "TORCH_key_x": "lower",
            "OPENBLAS_VERBOSE": "line1\nline2", "ATEN_LONG": "z" * 1000, "PYTORCH_CR": "a\rb",
        }
        got = redact_env(env)
        self.assertEqual(got, {
            "OMP_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": "0,1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
            "PYTHONHASHSEED": "0", "TORCH_HOME": "/t", "NCCL_DEBUG": "INFO", "KMP_AFFINITY": "compact",
            "OPENBLAS_VERBOSE": "line1", "ATEN_LONG": "z" * 256, "PYTORCH_CR": "a",
        })


class HelpersTest(unittest.TestCase):
    def test_os_release(self):
        rel = parse_os_release('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n# c\n')
        self.assertEqual(rel, {"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "ID": "debian", "VERSION_ID": "12"})

    def test_version_text(self):
        self.assertEqual(_version_text(8902), "8.9.2")
        self.assertEqual(_version_text(90100), "9.1.0")
        self.assertEqual(_version_text(21803), "2.18.3")
        self.assertEqual(_version_text(2708), "2.7.8")
        self.assertEqual(_version_text((2, 19, 3)), "2.19.3")
        self.assertIsNone(_version_text(None))


class FingerprintModeTest(unittest.TestCase):
    def test_fingerprint_mode(self):
        with tempfile.TemporaryDirectory() as d:
            cfg = helpers.write_config(d, None, knobs={"threads": 2, "env": {"OMP_NUM_THREADS": "2"}})
            out = os.path.join(d, "out")
            t0 = time.time()
            r = helpers.run_probe("fingerprint", cfg, out, extra_env={"HF_TOKEN": "hunter2"})
            elapsed = time.time() - t0
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sorted(os.listdir(out)), ["fingerprint.json"])
            with open(os.path.join(out, "fingerprint.json")) as f:
                text = f.read()
            self.assertNotIn("hunter2", text)
            fp = json.loads(text)
        self.assertEqual(fp["schema"], "repro.fingerprint/1")
        self.assertEqual(fp["probe_version"], "0.1.0")
        self.assertEqual(fp["torch"]["version"], str(torch.__version__))
        if "DNN" in torch.__config__.show():
            self.assertRegex(fp["torch"]["config"]["onednn"], r"^v[0-9]")
        self.assertEqual(fp["threads"]["intra_op"], 2)
        self.assertEqual(fp["threads"]["cpu_count"], os.cpu_count())
        self.assertEqual(fp["env"]["OMP_NUM_THREADS"], "2")
        for key in ("cudnn_enabled", "cudnn_benchmark", "cudnn_deterministic", "cudnn_allow_tf32",
                    "matmul_allow_tf32", "float32_matmul_precision", "deterministic_algorithms",
                    "deterministic_warn_only", "mkldnn_enabled"):
            self.assertIn(key, fp["flags"])
        self.assertFalse(fp["flags"]["deterministic_algorithms"])
        self.assertEqual(fp["cuda"]["available"], torch.cuda.is_available())
        attention = fp["attention"]
        self.assertEqual(attention["sdpa_available"], hasattr(torch.nn.functional, "scaled_dot_product_attention"))
        for name in ("flash_sdp_enabled", "mem_efficient_sdp_enabled", "math_sdp_enabled", "cudnn_sdp_enabled"):
            flag = getattr(torch.backends.cuda, name, None)
            self.assertEqual(attention[name], None if flag is None else bool(flag()), name)
        roles = {e["role"] for e in fp["libraries"]}
        self.assertTrue(roles & {"blas", "openmp"}, roles)
        names = [d["name"].lower() for d in fp["distributions"]]
        self.assertEqual(names, sorted(names))
        self.assertTrue(fp["python"]["version"])
        self.assertEqual(fp["os"]["system"], "Linux")
        self.assertLess(elapsed, 30)

    def test_fingerprint_invalid_config_is_usage_error(self):
        with tempfile.TemporaryDirectory() as d:
            cfg = helpers.write_config(d, None, knobs={"device": "tpu"})
            r = helpers.run_probe("fingerprint", cfg, os.path.join(d, "out"))
            self.assertEqual(r.returncode, 2)
            self.assertIn("invalid_config", r.stderr)


if __name__ == "__main__":
    unittest.main()
