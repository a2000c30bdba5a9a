"""Command line: python3 -m repro_probe fingerprint|train|script --config CONFIG.json --out DIR.

Exit codes: 0 artifacts written with status ok, 3 written with status error, 2 bad usage."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="repro_probe", description="repro probe (runs inside a target)")
    parser.add_argument("mode", choices=["fingerprint", "train", "script"])
    parser.add_argument("--config", required=True, help="path of config.json")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    from .runner import run_fingerprint, run_train
    if args.mode == "script":
        from .scriptmode import run_script
        return run_script(args.config, args.out)
    if args.mode == "fingerprint":
        return run_fingerprint(args.config, args.out)
    return run_train(args.config, args.out)


if __name__ == "__main__":
    sys.exit(main())
