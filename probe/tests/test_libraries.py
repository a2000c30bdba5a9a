"""Native libraries: /proc/self/maps parsing, role and version from file names, ELF SONAME, and the
libraries actually loaded by the installed torch."""

import os
import unittest

import helpers  # noqa: F401
import torch

from repro_probe.libraries import classify, describe, elf_soname, loaded_libraries, parse_maps, parse_version

MAPS = """\
7f0000000000-7f0000001000 r--p 00000000 fd:01 1 /opt/cudnn/lib/libcudnn.so.9.1.0
7f0000001000-7f0000002000 r-xp 00001000 fd:01 1 /opt/cudnn/lib/libcudnn.so.9.1.0
7f0000003000-7f0000004000 r--p 00000000 fd:01 2 /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so
7f0000005000-7f0000006000 r--p 00000000 fd:01 3 /opt/fake/libgomp.so.1.0.0
7f0000007000-7f0000008000 r--p 00000000 fd:01 4 /usr/local/cuda/lib64/libcublasLt.so.12.1.3.1
7f0000009000-7f000000a000 r--p 00000000 fd:01 5 /tmp/libtorch_cpu.so (deleted)
7f000000b000-7f000000c000 rw-p 00000000 00:00 0 [heap]
7f000000d000-7f000000e000 rw-p 00000000 00:00 0
7f000000f000-7f0000010000 r--p 00000000 fd:01 6 /usr/lib/x86_64-linux-gnu/libz.so.1.2.13
"""


class LibrariesTest(unittest.TestCase):
    def test_parse_maps(self):
        paths = parse_maps(MAPS)
        self.assertEqual(paths, [
            "/opt/cudnn/lib/libcudnn.so.9.1.0",
            "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so",
            "/opt/fake/libgomp.so.1.0.0",
            "/usr/local/cuda/lib64/libcublasLt.so.12.1.3.1",
            "/tmp/libtorch_cpu.so",
            "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13",
        ])

    def test_roles_and_versions(self):
        cases = {
            "libcudnn.so.9.1.0": ("cudnn", "9.1.0"),
            "libcudnn_ops_infer.so.8": ("cudnn", "8"),
            "libopenblasp-r0.3.21.so": ("blas", "0.3.21"),
            "libopenblas64_p-r0.3.26.so": ("blas", "0.3.26"),
            "libblas.so.3.11.0": ("blas", "3.11.0"),
            "liblapack.so.3": ("lapack", "3"),
            "libgomp.so.1.0.0": ("openmp", "1.0.0"),
            "libgomp-a34b3233.so.1": ("openmp", "1"),
            "libiomp5.so": ("openmp", None),
            "libomp.so.5": ("openmp", "5"),
            "libcublasLt.so.12.1.3.1": ("cublas", "12.1.3.1"),
            "libcublas.so.11": ("cublas", "11"),
            "libcudart.so.12.1.105": ("cudart", "12.1.105"),
            "libnccl.so.2.18.1": ("nccl", "2.18.1"),
            "libcufft.so.11.0.2.54": ("cuda_other", "11.0.2.54"),
            "libnvrtc-builtins.so.12.1": ("cuda_other", "12.1"),
            "libcuda.so.535.104.05": ("cuda_other", "535.104.05"),
            "libmkl_rt.so.2": ("mkl", "2"),
            "libdnnl.so.2.6": ("onednn", "2.6"),
            "libmkldnn.so.0": ("onednn", "0"),
            "libtbb.so.12.8": ("other", "12.8"),
            "libtorch_cpu.so": ("torch", None),
            "libtorch_cuda.so": ("torch", None),
            "libc10.so.1.13.0": ("torch", "1.13.0"),
            "libc10_cuda.so": ("torch", None),
        }
        for name, (role, version) in cases.items():
            self.assertEqual(classify(name), role, name)
            self.assertEqual(parse_version(name), version, name)
        for name in ("libz.so.1.2.13", "libcomposite.so", "libcompress.so", "libc.so.6", "libtorch_python.so",
                     "_C.cpython-311-x86_64-linux-gnu.so", "libcurl.so.4"):
            self.assertIsNone(classify(name), name)

    def test_describe_sorted(self):
        libs = describe(parse_maps(MAPS))
        self.assertEqual([(e["role"], e["soname"], e["version"]) for e in libs], [
            ("blas", "libopenblasp-r0.3.21.so", "0.3.21"),
            ("cublas", "libcublasLt.so.12.1.3.1", "12.1.3.1"),
            ("cudnn", "libcudnn.so.9.1.0", "9.1.0"),
            ("openmp", "libgomp.so.1.0.0", "1.0.0"),
            ("torch", "libtorch_cpu.so", None),
        ])
        self.assertEqual(libs[0]["real_path"], "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so")

    def test_loaded_by_torch(self):
        (torch.ones(4, 4) @ torch.ones(4, 4)).sum()
        libs = loaded_libraries()
        roles = {e["role"] for e in libs}
        self.assertIn("torch", roles)
        self.assertTrue(roles & {"blas", "openmp", "mkl", "onednn"}, roles)
        for e in libs:
            self.assertTrue(os.path.isabs(e["real_path"]), e)
            self.assertEqual(e["real_path"], os.path.realpath(e["real_path"]))
        self.assertEqual(libs, sorted(libs, key=lambda e: (e["role"], e["soname"], e["real_path"])))
        # the SONAME read from the ELF file agrees with the name the loader used, where it used one
        for e in libs:
            if os.path.basename(e["path"]) != os.path.basename(e["real_path"]):
                self.assertEqual(e["soname"], os.path.basename(e["path"]), e)

    def test_elf_soname(self):
        self.assertIsNone(elf_soname("/nonexistent/libx.so"))
        self.assertIsNone(elf_soname(__file__))
        torch_lib = [e for e in loaded_libraries() if e["role"] == "torch"]
        self.assertTrue(torch_lib)
        self.assertTrue(elf_soname(torch_lib[0]["real_path"]).startswith("lib"))


if __name__ == "__main__":
    unittest.main()


class NvidiaVersionTest(unittest.TestCase):
    """The numbers NVIDIA libraries report about themselves, formatted (seen on an H200 with torch
    2.11: cudaRuntimeGetVersion 13000, cudnnGetVersion 91900, ncclGetVersion 22809)."""

    def test_formats(self):
        from repro_probe.libraries import format_cuda_version, format_cudnn_version, format_nccl_version
        self.assertEqual(format_cuda_version(13000), "13.0")
        self.assertEqual(format_cuda_version(12060), "12.6")
        self.assertEqual(format_cudnn_version(91900), "9.19.0")
        self.assertEqual(format_cudnn_version(8902), "8.9.2")
        self.assertEqual(format_nccl_version(22809), "2.28.9")
        self.assertEqual(format_nccl_version(2708), "2.7.8")

    def test_no_cuda_library_is_loaded_by_asking(self):
        # a library that is not mapped is never loaded just to ask its version (RTLD_NOLOAD)
        from repro_probe.libraries import nvidia_version
        self.assertIsNone(nvidia_version("cublas", "libcublas.so.13", "/nonexistent/libcublas.so.13"))
        self.assertIsNone(nvidia_version("cudnn", "libcudnn.so.9", "/nonexistent/libcudnn.so.9"))
