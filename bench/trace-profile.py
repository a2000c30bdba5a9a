#!/usr/bin/python3
"""Where the probe's trace time goes, per workload (issue 28): bench 6's ratio (train_seconds with the
full trace vs trace.enabled false, pairs interleaved) and a cProfile breakdown of the recorder's work.

  /usr/bin/python3 bench/trace-profile.py [--probe DIR ...] [--inputs DIR] [--pairs N] [--workloads mlp,cnn]

Each --probe is a probe folder (default: this checkout's probe/); with two (e.g. a worktree of HEAD and
this one) every repetition runs both, alternating which goes first, so the machine's drift hits both.
--variants (e.g. nohash,crc32,norecord) instead times the probe with parts of the trace taken out
or replaced, round-robin with an untraced run (VARIANTS below says what each one does): what the
trace would cost without each part, not a build to ship.
--inputs holds inputs-<workload>/ folders (config.json + data.safetensors, as bench 6 takes them from
an audit's run directories); without it an untimed `repro audit --workload all` makes them (needs
`npm run build`). Needs a python with torch (/usr/bin/python3 here)."""

import argparse
import cProfile
import gc
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = ("mlp", "cnn", "lstm", "attention")
RECORDER_FILES = ("trace.py", "tracer.py", "safetensors.py")  # code the recorder runs (train_seconds part)
# callee name fragments -> category, first match wins (builtins and torch methods the recorder calls)
CATEGORIES = (
    ("non-finite check", ("isfinite", "'sum'", "stack", "'cat'", "'item'", "'__bool__'", "'__int__'")),
    ("hashing", ("sha256", "hexdigest", "'update'", "hash_wait")),
    ("stored-step clones", ("'clone'",)),
    ("contiguous copies", ("contiguous", "'cpu'", "'float'", "string_at", "'copy_'", "'empty'",
                           "'detach'", "storable", "snapshot")),
)
COLUMNS = (("hooks + bookkeeping",) + tuple(c for c, _ in CATEGORIES)
           + ("other calls", "trace.json write", "tensors write"))


VARIANTS = {  # name -> what the child changes in the probe before it trains (--variants)
    "full": "nothing: the trace as it is",
    "crc32": "zlib.crc32 in place of every sha256 (a 32-bit digest, ~2.4 x sha256's speed here)",
    "nohash": "no hashing at all (digests left empty)",
    "norecord": "hooks attached, nothing recorded (the hooks' dispatch and the loop's calls only)",
    "nofwd": "forward outputs not recorded (the groups are)",
    "nogroups": "gradients, optimizer state, parameters and buffers not recorded (forward outputs are)",
    "nocount": "no non-finite check",
    "sync": "no worker thread: every digest on the training thread (REPRO_TRACE_ASYNC_HASH=0)",
}


def patch_variant(name):
    """In the probe's interpreter: the change VARIANTS[name] describes."""
    from repro_probe import trace as T
    if name not in VARIANTS:
        raise SystemExit("unknown variant %r (one of %s)" % (name, ", ".join(VARIANTS)))
    if name in ("crc32", "nohash"):
        import ctypes
        import zlib
        crc = name == "crc32"

        class Digest(object):
            def __init__(self, data):
                self.value = "%08x" % zlib.crc32(data) if crc else ""

            def hexdigest(self):
                return self.value

        T._sha256 = lambda address, n: Digest((ctypes.c_ubyte * n).from_address(address) if n else b"").value
        T.hashlib = type("hashlib", (), {"sha256": Digest})
    elif name == "norecord":
        T.TraceRecorder._record_output = lambda self, n, output: None
        T.TraceRecorder.record_many = lambda self, pairs: None
        T.TraceRecorder.record = lambda self, n, t: None
    elif name == "nofwd":
        T.TraceRecorder._record_output = lambda self, n, output: None
    elif name == "nogroups":
        T.TraceRecorder.record_many = lambda self, pairs: None
    elif name == "nocount":
        T.count_nonfinite = lambda torch, t: 0
    elif name == "sync":
        os.environ[T.ASYNC_HASH_ENV] = "0"


def make_inputs(where):
    """bench 6's inputs: one untimed audit of every workload, its run directories' inputs/."""
    out = os.path.join(where, "audit")
    env = dict(os.environ, REPRO_CACHE_DIR=os.path.join(where, "cache"))
    subprocess.run([shutil.which("node") or "node", os.path.join(ROOT, "bin", "run.js"), "audit", "--python",
                    sys.executable, "--workload", "all", "--repeats", "1", "--no-explain", "--no-cache",
                    "--format", "json", "--out", out], env=env, stdout=subprocess.DEVNULL, check=False)
    for w in WORKLOADS:
        shutil.copytree(os.path.join(out, "t1-r1" if w == "mlp" else "t1-%s-r1" % w, "inputs"),
                        os.path.join(where, "inputs-" + w))
    return where


def config(inputs, on, scratch):
    """config.json of the workload with trace.enabled set, written beside its data."""
    with open(os.path.join(inputs, "config.json")) as f:
        cfg = json.load(f)
    cfg["trace"]["enabled"] = on
    path = os.path.join(inputs, "config-trace-%s.json" % ("on" if on else "off"))
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


def timed_run(probe, inputs, on, scratch, profile=None, variant=None):
    """One `python -m repro_probe train` (or this file's --child under cProfile, or its --variant);
    its run.json timings."""
    out = tempfile.mkdtemp(dir=scratch)
    if variant is not None:
        cmd = [sys.executable, os.path.abspath(__file__), "--variant", variant]
    elif profile is not None:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", profile]
    else:
        cmd = [sys.executable, "-m", "repro_probe", "train"]
    cmd += ["--config", config(inputs, on, scratch), "--out", out]
    subprocess.run(cmd, cwd=inputs, env=dict(os.environ, PYTHONPATH=probe), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, "run.json")) as f:
        rj = json.load(f)
    shutil.rmtree(out)
    if rj["status"] != "ok":
        raise SystemExit("%s %s: status %s" % (probe, inputs, rj["status"]))
    return rj


def child(stats_path, argv):
    """In the probe's interpreter: run_training under cProfile, the artifact writes timed apart."""
    import repro_probe.jsonio as jsonio
    import repro_probe.runner as runner
    import repro_probe.safetensors as st
    import repro_probe.train as train
    extra = {"trace.json write": 0.0, "tensors write": 0.0}
    prof = cProfile.Profile()

    def profiled(*a, **k):
        prof.enable()
        try:
            return run_training(*a, **k)
        finally:
            prof.disable()

    def timed(fn, key, test):
        def wrapper(*a, **k):
            gc.collect()  # a collection due now would land in whichever write comes first
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                if test(a):
                    extra[key] += time.perf_counter() - t0
        return wrapper

    run_training = train.run_training
    train.run_training = profiled
    runner.write_json = timed(jsonio.write_json, "trace.json write", lambda a: a[0].endswith("trace.json"))
    st.write_safetensors = timed(st.write_safetensors, "tensors write", lambda a: True)
    from repro_probe.__main__ import main
    code = main(["train"] + argv)
    prof.dump_stats(stats_path)
    with open(stats_path + ".json", "w") as f:
        json.dump(extra, f)
    return code


def breakdown(stats_path):
    """Seconds per category: the recorder's own Python (hooks, record, names: its files' tottime) and
    what it calls outside them, sorted by callee name."""
    stats = pstats.Stats(stats_path).stats
    ours = lambda func: func[0].endswith(RECORDER_FILES)  # noqa: E731
    out = dict((c, 0.0) for c in COLUMNS)
    for func, (_, _, tt, _, callers) in stats.items():
        if ours(func):
            out["hooks + bookkeeping"] += tt
            continue
        name = "%s %s" % (func[0], func[2])
        for caller, edge in callers.items():
            if not ours(caller):
                continue
            cat = next((c for c, keys in CATEGORIES if any(k in name for k in keys)), "other calls")
            out[cat] += edge[3]
    with open(stats_path + ".json") as f:
        out.update(json.load(f))
    return out


def median_ratio(on, off):
    return statistics.median(a / b for a, b in zip(on, off))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probe", action="append", help="probe folder (repeatable); default probe/")
    ap.add_argument("--inputs", help="folder of inputs-<workload>/ (default: made by one audit)")
    ap.add_argument("--pairs", type=int, default=5, help="trace on/off pairs per probe and workload")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--profile-runs", type=int, default=3, help="profiled runs per probe and workload (medians)")
    ap.add_argument("--no-profile", action="store_true", help="ratios only")
    ap.add_argument("--variants", help="comma-separated names from VARIANTS: each timed against an untraced run")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.child:
        return child(args.child, rest)
    if args.variant:
        patch_variant(args.variant)
        from repro_probe.__main__ import main as probe_main
        return probe_main(["train"] + rest)
    probes = [os.path.abspath(p) for p in args.probe or [os.path.join(ROOT, "probe")]]
    scratch = tempfile.mkdtemp(prefix="trace-profile-")
    try:
        inputs = os.path.abspath(args.inputs) if args.inputs else make_inputs(scratch)
        workloads = args.workloads.split(",")
        if args.variants:
            report_variants(probes[0], inputs, workloads, args.variants.split(","), args.pairs, scratch)
        else:
            report(probes, inputs, workloads, args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def report(probes, inputs, workloads, args, scratch):
    print("machine: %s, %d CPUs usable, load average %s; torch from %s" % (
        cpu_model(), len(os.sched_getaffinity(0)), " ".join("%.2f" % x for x in os.getloadavg()), sys.executable))
    rows = []
    for w in workloads:
        where = os.path.join(inputs, "inputs-" + w)
        on = dict((p, []) for p in probes)
        off = dict((p, []) for p in probes)
        trace = dict((p, []) for p in probes)
        for i in range(args.pairs):
            order = probes if i % 2 == 0 else probes[::-1]
            for p in order:
                for flag in ((True, False) if i % 2 == 0 else (False, True)):
                    rj = timed_run(p, where, flag, scratch)
                    (on if flag else off)[p].append(rj["timings"]["train_seconds"])
                    if flag:
                        trace[p].append(rj["timings"].get("trace_seconds", 0.0))
            sys.stderr.write("%s: pair %d/%d\n" % (w, i + 1, args.pairs))
        for p in probes:
            prof = None
            if not args.no_profile:
                runs = []
                for k in range(args.profile_runs):
                    stats = os.path.join(scratch, "prof-%s-%d-%d" % (w, probes.index(p), k))
                    timed_run(p, where, True, scratch, profile=stats)
                    runs.append(breakdown(stats))
                prof = dict((c, statistics.median(r[c] for r in runs)) for c in COLUMNS)
            rows.append((w, p, on[p], off[p], trace[p], prof))
    print("\n| workload | probe | train, trace on | trace off | ratio (median of pairs) | recorder's trace_seconds |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for w, p, a, b, t, _ in rows:
        print("| %s | %s | %.3f s | %.3f s | **%.2f** | %.3f s |" % (
            w, p, statistics.median(a), statistics.median(b), median_ratio(a, b), statistics.median(t)))
    if args.no_profile:
        return
    print("\nTraced runs under cProfile, median of %d (only run_training profiled, its own overhead inflating "
          "the Python parts; the two writes after it timed apart, each after a gc.collect()), ms:\n"
          % args.profile_runs)
    print("| workload | probe | " + " | ".join(COLUMNS) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in COLUMNS) + " |")
    for w, p, _, _, _, prof in rows:
        print("| %s | %s | " % (w, p) + " | ".join("%.0f" % (prof[c] * 1e3) for c in COLUMNS) + " |")


def report_variants(probe, inputs, workloads, variants, rounds, scratch):
    """Each variant's train_seconds against an untraced run, round-robin (the order rotated each
    round); the ratio is the median of each round's variant / untraced."""
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit("unknown variant %r (one of %s)" % (v, ", ".join(VARIANTS)))
    print("machine: %s, %d CPUs usable, load average %s; torch from %s; probe %s" % (
        cpu_model(), len(os.sched_getaffinity(0)), " ".join("%.2f" % x for x in os.getloadavg()),
        sys.executable, probe))
    print("\n| workload | variant | train_seconds | recorder's trace_seconds | ratio to untraced (median of rounds) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for w in workloads:
        where = os.path.join(inputs, "inputs-" + w)
        names = ["off"] + variants
        runs = dict((n, []) for n in names)
        for i in range(rounds):
            k = i % len(names)
            for n in names[k:] + names[:k]:
                rj = timed_run(probe, where, n != "off", scratch, variant=None if n == "off" else n)
                runs[n].append((rj["timings"]["train_seconds"], rj["timings"].get("trace_seconds", 0.0)))
            sys.stderr.write("%s: round %d/%d\n" % (w, i + 1, rounds))
        off = [t for t, _ in runs["off"]]
        print("| %s | untraced | %.3f s | — | 1 |" % (w, statistics.median(off)))
        for n in variants:
            print("| %s | %s: %s | %.3f s | %.3f s | **%.2f** |" % (
                w, n, VARIANTS[n], statistics.median(t for t, _ in runs[n]),
                statistics.median(s for _, s in runs[n]), median_ratio([t for t, _ in runs[n]], off)))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
