"""glibc malloc's two thresholds, fixed for the canary trainings (train mode; issue 28).

By default glibc serves an allocation over its mmap threshold (128 KiB at first) with a fresh
mmap, and it raises that threshold only when such a block is freed, to the block's size; it gives
free memory at the top of the heap back to the kernel past twice that. A training frees and
allocates its activations every step, so the kernel zeroes the same pages again and again: on the
2-core bench machine the cnn canary took 4 000 to 27 000 minor page faults untraced and 41 000 to
50 000 traced (the trace's snapshots and stored copies change where the heap's top lies), and its
trace cost 1.6 x where 1.3 x was left with the thresholds fixed (bench/results.md).

steady_malloc() sets the mmap threshold to 32 MiB (the ceiling glibc's own raising stops at on
64-bit) and the trim threshold to twice that (what glibc pairs with a threshold it raised itself).
Memory goes back to the kernel less often; no value changes (every tensor is 64-byte aligned
either way, and the artifacts are byte for byte the same). It leaves the process as it is when
the environment says anything about malloc (MALLOC_* variables, glibc.malloc tunables), and on a
C library without mallopt (musl)."""

import ctypes
import os

M_TRIM_THRESHOLD = -1  # malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


def steady_malloc(environ=None, libc=None):
    """"set", or why not: "environment", "no mallopt" or "refused" (mallopt said no)."""
    environ = os.environ if environ is None else environ
    if any(name.startswith("MALLOC_") for name in environ) or "malloc" in environ.get("GLIBC_TUNABLES", ""):
        return "environment"
    try:
        mallopt = (ctypes.CDLL(None) if libc is None else libc).mallopt
    except (OSError, AttributeError):
        return "no mallopt"
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:  # first: setting either stops glibc raising it itself
        return "refused"
    return "set" if mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 else "refused"
