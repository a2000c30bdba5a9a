"""Child of bench/run.mjs: the numpy side of the compare-throughput benchmark.

Usage: /usr/bin/python3 bench/compare_np.py FILE N REPS [INNER] [--allclose-only]
FILE holds two float32 arrays of N elements (a then b, raw little-endian), as written by the
harness, read straight into the two arrays (so the process's peak RSS is the compare's).
Times, with time.perf_counter, (1) np.allclose alone and (2) the set of metrics that is
comparable to one `compareValues` pass: mismatch count at the same tolerance, max abs, max rel,
relative L2 and cosine (norms accumulated in float64, as the TS core does). Seconds are per
call; INNER calls (default 1) make one timed sample. --allclose-only skips (2) and reports the
mismatch count alone (the scaling benchmark: the full set's float64 copies would dominate the
peak RSS). Prints one JSON line.
"""
import json
import sys
import time

import numpy as np

RTOL = 1.3e-6
ATOL = 1e-5


def full(a, b):
    mismatches = int(np.count_nonzero(~np.isclose(a, b, rtol=RTOL, atol=ATOL)))
    d = a - b
    ad = np.abs(d)
    max_abs = float(ad.max())
    with np.errstate(divide="ignore", invalid="ignore"):
        max_rel = float((ad / np.abs(b)).max())
    d64 = d.astype(np.float64)
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    sdd = float(np.dot(d64, d64))
    saa = float(np.dot(a64, a64))
    sbb = float(np.dot(b64, b64))
    sab = float(np.dot(a64, b64))
    return {"mismatches": mismatches, "max_abs": max_abs, "max_rel": max_rel,
            "rel_l2": (sdd ** 0.5) / (sbb ** 0.5), "cosine": sab / (saa * sbb) ** 0.5}


def timed(fn, reps, inner):
    fn()  # warm-up
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        out.append((time.perf_counter() - t0) / inner)
    return out


def main():
    args = [x for x in sys.argv[1:] if x != "--allclose-only"]
    allclose_only = len(args) < len(sys.argv) - 1
    path, n, reps = args[0], int(args[1]), int(args[2])
    inner = int(args[3]) if len(args) > 3 else 1
    with open(path, "rb") as f:
        a = np.fromfile(f, dtype="<f4", count=n)
        b = np.fromfile(f, dtype="<f4", count=n)
    if a.size != n or b.size != n:
        raise SystemExit("%s: %d floats, expected %d" % (path, a.size + b.size, 2 * n))
    allclose = timed(lambda: np.allclose(a, b, rtol=RTOL, atol=ATOL), reps, inner)
    out = {"allclose_seconds": allclose, "allclose": bool(np.allclose(a, b, rtol=RTOL, atol=ATOL)),
           "numpy": np.__version__}
    if allclose_only:
        out["metrics"] = {"mismatches": int(np.count_nonzero(~np.isclose(a, b, rtol=RTOL, atol=ATOL)))}
    else:
        out["full_seconds"] = timed(lambda: full(a, b), reps, inner)
        out["metrics"] = full(a, b)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
