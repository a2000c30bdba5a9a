"""repro's launcher inside a probe container, passed as `python -c` (stdlib only, Python >= 3.8).

argv: WORK_AREA LINGER_SECONDS MODE --config CONFIG --out OUT

The work area is a size-bounded tmpfs volume, mounted (empty) when the container starts: wait
for repro to copy the probe and its inputs in (`ready` is the last file of that copy), run the
probe as `python -m repro_probe` would, then write `status.json` (exit code, interpreter, whether
the work area ran full) and linger until repro has copied the artifacts out and removes the
container. repro reads only files through the engine, never stdout: images print banners.

In a Kubernetes Pod (docs/scale-out.md) the container is not removed but must end on its own, so
the Job counts the index: the host writes `collected` once it has the artifacts, which ends the
linger, and with REPRO_TERMINATION_LOG set (the container's terminationMessagePath) the status is
also written there, where the kubelet reads it into the Pod's status.
"""

import importlib
import json
import os
import runpy
import sys
import time
import traceback

RESERVE = 64 * 1024  # kept free for status.json, whatever the probe writes
STATUS_BYTES = 4096  # status.json is a few hundred bytes
FULL_BELOW = 16 * 1024  # tmpfs fills to the last page before a write fails with ENOSPC


def wait_for(path, seconds, step=0.05):
    until = time.time() + seconds
    while not os.path.exists(path):
        if time.time() > until:
            return False
        time.sleep(step)
    return True


def run_probe(root, args):
    probe = os.path.join(root, "probe")
    # Added to the image's own path, never substituted: its PYTHONPATH stays in effect, also
    # for the probe's child processes (an entrypoint may have rewritten it after repro set it).
    if probe not in sys.path:
        sys.path.append(probe)
    # The directory did not exist when python started (its PYTHONPATH entry was cached as empty).
    sys.path_importer_cache.pop(probe, None)
    importlib.invalidate_caches()
    own = os.environ.get("PYTHONPATH", "")
    if probe not in own.split(os.pathsep):
        os.environ["PYTHONPATH"] = own + os.pathsep + probe if own else probe
    sys.argv = ["repro_probe"] + args
    try:
        runpy.run_module("repro_probe", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None:
            return 0
        return e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def main(argv):
    root, linger, args = argv[0], float(argv[1]), argv[2:]
    reserve = os.path.join(root, ".reserve")
    try:
        with open(reserve, "wb") as f:
            f.write(b"\0" * RESERVE)
    except OSError:
        reserve = None
    # status.json's pages, allocated now: a hostile thread in this very process (a sitecustomize)
    # can refill the released reserve before the status is written; overwriting in place needs no
    # new page, so the status still gets out when the work area is full
    tmp = os.path.join(root, "status.tmp")
    try:
        status_file = open(tmp, "r+b" if os.path.exists(tmp) else "w+b")
        status_file.write(b" " * STATUS_BYTES)
        status_file.flush()
    except OSError:
        status_file = None
    if not wait_for(os.path.join(root, "ready"), linger):
        sys.stderr.write("repro: the probe's inputs never arrived in %s\n" % root)
        return 70
    code = run_probe(root, args)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    st = os.statvfs(root)
    free = st.f_bavail * st.f_frsize
    if reserve:
        os.unlink(reserve)
    status = {"exit": code, "python": sys.executable, "full": free < FULL_BELOW, "free_bytes": free,
              "uid": os.getuid(), "gid": os.getgid()}
    data = json.dumps(status).encode("utf-8")
    if status_file is not None and len(data) <= STATUS_BYTES:
        status_file.seek(0)
        status_file.write(data)
        status_file.truncate(len(data))
        status_file.close()
    else:
        with open(tmp, "wb") as f:
            f.write(data)
    os.rename(tmp, os.path.join(root, "status.json"))
    termination_log = os.environ.get("REPRO_TERMINATION_LOG")
    if termination_log:
        # a file the kubelet mounted there: written in place (a rename cannot replace a mount)
        try:
            with open(termination_log, "wb") as f:
                f.write(data)
        except OSError:
            pass
    # repro copies out/ and removes the container (or, in a Pod, writes `collected`); linger
    # only bounds a repro that vanished.
    wait_for(os.path.join(root, "collected"), linger, 0.2)
    return code


sys.exit(main(sys.argv[1:]))
