"""Command line: python3 -m repro_probe fingerprint|train|script|replay --config CONFIG.json --out DIR.

Exit codes: 0 artifacts written with status ok, 3 written with status error, 2 bad usage."""

import argparse
import sys


UNSET_ENV = "REPRO_UNSET_ENV"


def unset_requested_env(environ=None):
    """Remove the variables named in REPRO_UNSET_ENV (comma-separated), and it, before torch or
    any math library loads: how repro's counterfactual rerun takes away a variable an image's ENV
    sets (e.g. ONEDNN_MAX_CPU_ISA), which no engine flag can. Returns the names removed."""
    import os
    environ = os.environ if environ is None else environ
    names = [n for n in environ.pop(UNSET_ENV, "").split(",") if n]
    for name in names:
        environ.pop(name, None)
    return names


EMULATE_CPU = "REPRO_EMULATE_CPU"
EMULATED_ENV = "REPRO_EMULATED_ENV"
# What each emulated CPU caps: ATen's kernels and oneDNN's JIT at the ISA that CPU has at most.
EMULATED_CPUS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}


def emulate_cpu(environ=None):
    """REPRO_EMULATE_CPU=avx2 (the test suite's AVX2-host switch, docs/testing.md): cap ATen and
    oneDNN at AVX2 before torch loads, as on a CPU without AVX-512, where the target does not set
    the variable itself. The names set go in REPRO_EMULATED_ENV, so the fingerprint records the
    emulation (env.REPRO_EMULATE_CPU) instead of them: both sides of a comparison run under it,
    and an image's own setting still shows as its own. Returns the names set."""
    import os
    environ = os.environ if environ is None else environ
    cpu = environ.get(EMULATE_CPU, "")
    if not cpu:
        return []
    caps = EMULATED_CPUS.get(cpu)
    if caps is None:
        raise SystemExit("repro_probe: %s=%s: the only value is %s"
                         % (EMULATE_CPU, cpu, ", ".join(sorted(EMULATED_CPUS))))
    names = [name for name in sorted(caps) if name not in environ]
    for name in names:
        environ[name] = caps[name]
    environ[EMULATED_ENV] = ",".join(names)
    return names


def main(argv=None):
    unset_requested_env()
    emulate_cpu()
    parser = argparse.ArgumentParser(prog="repro_probe", description="repro probe (runs inside a target)")
    parser.add_argument("mode", choices=["fingerprint", "train", "script", "replay"])
    parser.add_argument("--config", required=True, help="path of config.json")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    from .runner import run_fingerprint, run_train
    if args.mode == "script":
        from .scriptmode import run_script
        return run_script(args.config, args.out)
    if args.mode == "replay":
        from .replay import run_replay
        return run_replay(args.config, args.out)
    if args.mode == "fingerprint":
        return run_fingerprint(args.config, args.out)
    return run_train(args.config, args.out)


if __name__ == "__main__":
    sys.exit(main())
