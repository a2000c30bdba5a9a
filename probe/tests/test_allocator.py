"""allocator.steady_malloc (issue 28): glibc's mmap and trim thresholds fixed for train mode, left
alone when the environment says anything about malloc; the artifacts of a run are the same bytes
with it and without it."""

import os
import subprocess
import sys
import unittest

import helpers  # noqa: F401
from repro_probe import allocator

# a fresh interpreter: glibc's own thresholds, then a 16 MiB block — mapped by itself or from the heap
MAPPED = r"""
import ctypes, sys
sys.path.insert(0, %r)
from repro_probe.allocator import steady_malloc
libc = ctypes.CDLL(None)
class MallInfo(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                             "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo.restype = MallInfo
libc.malloc.restype = ctypes.c_void_p
said = steady_malloc() if sys.argv[1] == "on" else "off"
before = libc.mallinfo().hblks
p = libc.malloc(16 << 20)
print(said, libc.mallinfo().hblks - before)
"""


def glibc():
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # no such name: not glibc
        return False


class NoMallopt(object):
    """A C library without mallopt (musl's)."""


class SteadyMallocTest(unittest.TestCase):
    def test_the_environment_wins(self):
        for env in ({"MALLOC_ARENA_MAX": "2"}, {"MALLOC_TRIM_THRESHOLD_": "0"},
                    {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}):
            self.assertEqual(allocator.steady_malloc(env), "environment", env)
        self.assertEqual(allocator.steady_malloc({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}, NoMallopt()),
                         "no mallopt")

    @unittest.skipUnless(glibc(), "glibc's malloc only: mallopt and mallinfo")
    def test_a_16_mib_block_comes_from_the_heap(self):
        probe = os.path.dirname(os.path.dirname(allocator.__file__))
        got = {}
        for mode in ("off", "on"):
            r = subprocess.run([sys.executable, "-c", MAPPED % probe, mode], capture_output=True, text=True,
                               env=dict((k, v) for k, v in os.environ.items() if not k.startswith("MALLOC_")))
            self.assertEqual(r.returncode, 0, r.stderr)
            got[mode] = r.stdout.split()
        self.assertEqual(got, {"off": ["off", "1"], "on": ["set", "0"]})


class TrainRunTest(unittest.TestCase):
    """The cnn canary (activations of 128 KiB and more) with the thresholds fixed and with glibc's own
    (MALLOC_ARENA_MAX set: the environment wins): the same trace and stored values, byte for byte."""

    def test_artifacts_identical(self):
        self.assertFalse([k for k in os.environ if k.startswith("MALLOC_")],
                         "a MALLOC_ variable here: neither run would fix the thresholds")
        got = helpers.cnn_artifacts(self, [{}, {"MALLOC_ARENA_MAX": "8"}], "allocator-")
        self.assertEqual(got["trace.json"][0], got["trace.json"][1])
        self.assertEqual(got["tensors.safetensors"][0], got["tensors.safetensors"][1])


if __name__ == "__main__":
    unittest.main()
