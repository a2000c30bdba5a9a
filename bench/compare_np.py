"""Child of bench/run.mjs: the numpy side of the compare-throughput benchmark.

Usage: /usr/bin/python3 bench/compare_np.py FILE N REPS
FILE holds two float32 arrays of N elements (a then b, raw little-endian), as written by the
harness. Times, with time.perf_counter, (1) np.allclose alone and (2) the set of metrics that
is comparable to one `compareValues` pass: mismatch count at the same tolerance, max abs,
max rel, relative L2 and cosine (norms accumulated in float64, as the TS core does). Prints
one JSON line.
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


def timed(fn, reps):
    fn()  # warm-up
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main():
    path, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    raw = np.fromfile(path, dtype="<f4")
    if raw.size != 2 * n:
        raise SystemExit("%s: %d floats, expected %d" % (path, raw.size, 2 * n))
    a = raw[:n].copy()
    b = raw[n:].copy()
    allclose = timed(lambda: np.allclose(a, b, rtol=RTOL, atol=ATOL), reps)
    full_s = timed(lambda: full(a, b), reps)
    print(json.dumps({"allclose_seconds": allclose, "full_seconds": full_s,
                      "allclose": bool(np.allclose(a, b, rtol=RTOL, atol=ATOL)),
                      "metrics": full(a, b), "numpy": np.__version__}))


if __name__ == "__main__":
    main()
