"""repro probe, script mode: this directory is put first on PYTHONPATH for the user's script, so this
file runs at the start of every Python process of the script's tree. It first imports the
sitecustomize it shadows (Debian's /usr/lib/python3.X/sitecustomize.py, or an image's own) so that
its behaviour is kept, then seeds the process when it is a child of the script (seeding.py)."""

import importlib
import os
import sys
import traceback

SHADOWED = "repro_probe_shadowed_sitecustomize"  # where the shadowed module is kept in sys.modules


def _same_dir(entry, here):
    try:
        return os.path.realpath(entry or os.curdir) == here
    except (OSError, ValueError):
        return False


def _import_shadowed():
    here = os.path.dirname(os.path.realpath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    saved = list(sys.path)
    sys.path[:] = [p for p in saved if not _same_dir(p, here)]
    try:
        try:
            module = importlib.import_module("sitecustomize")
        except ImportError as e:
            if e.name != "sitecustomize":
                raise
            module = None
        if module is not None:
            sys.modules[SHADOWED] = module
    finally:
        sys.path[:] = saved
        if ours is not None:
            sys.modules["sitecustomize"] = ours


def _main():
    try:
        _import_shadowed()
    except Exception:  # as site.py does for a failing sitecustomize: report and go on
        sys.stderr.write("Error in the shadowed sitecustomize (run by repro_probe):\n" + traceback.format_exc())
    if os.environ.get("REPRO_PROBE_ROLE") == "child" and os.environ.get("REPRO_PROBE_TRACER"):
        try:
            from repro_probe.seeding import bootstrap_child
            bootstrap_child()
        except Exception as e:
            sys.stderr.write("repro_probe: warning: seeding child process %d failed: %s\n" % (os.getpid(), e))


_main()
