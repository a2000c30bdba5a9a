"""Parsing torch.__config__.show(): the real text of the installed torch and a torch 2.x-style text."""

import unittest

import helpers  # noqa: F401
import torch

from repro_probe.torchconfig import parse_build_settings, parse_config_show

TORCH2_TEXT = """PyTorch built with:
  - GCC 9.3
  - C++ Version: 201703
  - Intel(R) oneAPI Math Kernel Library Version 2022.2-Product Build 20220804 for Intel(R) 64 architecture applications
  - Intel(R) MKL-DNN v3.3.2 (Git Hash 2dc95a2ad0841e29db8b22fbccaf3e5da7992b01)
  - OpenMP 201511 (a.k.a. OpenMP 4.5)
  - LAPACK is enabled (usually provided by MKL)
  - NNPACK is enabled
  - CPU capability usage: AVX512
  - CUDA Runtime 12.1
  - NVCC architecture flags: -gencode;arch=compute_50,code=sm_50;-gencode;arch=compute_90,code=sm_90
  - CuDNN 8.9.2
  - Magma 2.6.1
  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, CUDA_VERSION=12.1, CUDNN_VERSION=8.9.2, CXX_COMPILER=/opt/rh/devtoolset-9/root/usr/bin/c++, CXX_FLAGS= -D_GLIBCXX_USE_CXX11_ABI=0 -fabi-version=11 -O2 -Wl,--as-needed, LAPACK_INFO=mkl, PERF_WITH_AVX=1, TORCH_CUDA_ARCH_LIST=5.0;6.0;7.0;9.0+PTX, TORCH_VERSION=2.2.0, USE_CUDA=ON, USE_CUDNN=ON, USE_MKLDNN=ON, USE_NCCL=1, USE_ROCM=OFF, 
"""


class TorchConfigTest(unittest.TestCase):
    def test_installed_torch(self):
        text = torch.__config__.show()
        cfg = parse_config_show(text)
        bs = cfg["build_settings"]
        self.assertIn("TORCH_VERSION", bs)
        self.assertTrue(torch.__version__.startswith(bs["TORCH_VERSION"][:3]))
        self.assertEqual(cfg["blas_info"], bs.get("BLAS_INFO"))
        self.assertEqual(cfg["lapack_info"], bs.get("LAPACK_INFO"))
        self.assertIsNotNone(cfg["compiler"])
        if "MKL-DNN" in text or "oneDNN" in text:
            self.assertRegex(cfg["onednn"], r"^v[0-9]+\.[0-9]+")
        if "CPU capability usage" in text:
            self.assertRegex(cfg["cpu_capability"], r"^[A-Z0-9_]+$")
        if "OpenMP" in text:
            self.assertRegex(cfg["openmp"], r"^[0-9]+$")
        if torch.version.cuda is None:
            self.assertIsNone(cfg["cuda_runtime"])
        if torch.__version__.startswith("1.13.0a0"):  # Debian's build in this workspace
            self.assertEqual(cfg["compiler"], "GCC 12.2")
            self.assertEqual(cfg["onednn"], "v2.6.3")
            self.assertEqual(cfg["cpu_capability"], "AVX2")
            self.assertEqual(bs["USE_CUDA"], "OFF")

    def test_torch2_style_text(self):
        cfg = parse_config_show(TORCH2_TEXT)
        self.assertEqual(cfg["compiler"], "GCC 9.3")
        self.assertEqual(cfg["onednn"], "v3.3.2")
        self.assertEqual(cfg["mkl"], "2022.2")
        self.assertEqual(cfg["openmp"], "201511")
        self.assertEqual(cfg["cpu_capability"], "AVX512")
        self.assertEqual(cfg["cuda_runtime"], "12.1")
        self.assertEqual(cfg["cudnn"], "8.9.2")
        self.assertEqual(cfg["blas_info"], "mkl")
        bs = cfg["build_settings"]
        self.assertEqual(bs["CXX_FLAGS"], "-D_GLIBCXX_USE_CXX11_ABI=0 -fabi-version=11 -O2 -Wl,--as-needed")
        self.assertEqual(bs["TORCH_CUDA_ARCH_LIST"], "5.0;6.0;7.0;9.0+PTX")
        self.assertEqual(bs["USE_ROCM"], "OFF")
        self.assertEqual(len(bs), 15)

    def test_onednn_spelling_and_old_mkl(self):
        cfg = parse_config_show("PyTorch built with:\n  - clang 14.0\n  - oneDNN v3.1.1 (Git Hash x)\n"
                                "  - Intel(R) Math Kernel Library Version 2020.0.0 Product Build 20191122 for x\n")
        self.assertEqual(cfg["compiler"], "clang 14.0")
        self.assertEqual(cfg["onednn"], "v3.1.1")
        self.assertEqual(cfg["mkl"], "2020.0.0")
        self.assertEqual(parse_config_show(""), parse_config_show("garbage"))

    def test_build_settings_values_with_spaces(self):
        self.assertEqual(parse_build_settings("A=1, B=x y z, C=, "), {"A": "1", "B": "x y z", "C": ""})


if __name__ == "__main__":
    unittest.main()


class CudnnLineTest(unittest.TestCase):
    def test_built_against_apart(self):
        # torch 2.11+cu130 prints cuDNN 9.19 as "91.9" and appends the CUDA it was built against;
        # the parser used to keep the whole line as the cuDNN version
        from repro_probe.torchconfig import parse_config_show
        cfg = parse_config_show("PyTorch built with:\n  - CuDNN 91.9  (built against CUDA 13.1)\n")
        self.assertEqual(cfg["cudnn"], "91.9")
        self.assertEqual(cfg["cudnn_built_against_cuda"], "13.1")
        self.assertEqual(parse_config_show("PyTorch built with:\n  - CuDNN 8.9.2\n")["cudnn"], "8.9.2")
