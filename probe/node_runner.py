"""repro's runner on a cluster node (stdlib only, Python >= 3.8): runs one probe run as a Slurm
job step would, without node.js.

    python3 -S node_runner.py SPEC.json

SPEC.json (written by the submit host into the shared staging folder, `repro.prepared/2` run
spec): {"python": interpreter, "argv": [the probe's arguments], "env": {variables on top of a
clean environment}, "timeout_seconds": n, "cwd": null, "status": path of status.json}. Relative
paths are relative to the spec's folder.

The probe runs in its own process group in a fresh temporary folder (HOME too). status.json is
written atomically (a temporary file renamed over it) when the probe ends, the timeout fires, or
Slurm sends TERM (scancel, the time limit, preemption): {exit, signal, seconds, timed_out,
terminated, stderr_tail, node}. stderr goes to the job's own stderr as well (the last 64 KiB are
kept in the status).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

STDERR_TAIL = 64 * 1024


def write_status(path, status):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(status, f)
    os.replace(tmp, path)


def main(argv):
    spec_path = os.path.abspath(argv[0])
    base = os.path.dirname(spec_path)
    with open(spec_path) as f:
        spec = json.load(f)

    def here(p):
        return p if os.path.isabs(p) else os.path.join(base, p)
    status_path = here(spec["status"])
    work = tempfile.mkdtemp(prefix="repro-node-")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1",
           "REPRO_PROBE_SCRATCH": os.path.join(work, "scratch")}
    for k, v in spec["env"].items():
        env[k] = here(v) if k == "PYTHONPATH" else v
    argv = [here(a) if a.startswith("./") else a for a in spec["argv"]]
    t0 = time.time()
    state = {"timed_out": False, "terminated": None}
    proc = subprocess.Popen([spec["python"]] + argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    tail = []

    def pump():
        size = 0
        for chunk in iter(lambda: proc.stderr.read(4096), b""):
            sys.stderr.buffer.write(chunk)
            tail.append(chunk)
            size += len(chunk)
            while size > 2 * STDERR_TAIL and len(tail) > 1:
                size -= len(tail.pop(0))
    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def kill_group():
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass

    def on_term(signum, frame):
        state["terminated"] = signal.Signals(signum).name
        kill_group()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        proc.wait(timeout=spec["timeout_seconds"])
    except subprocess.TimeoutExpired:
        state["timed_out"] = True
        kill_group()
        proc.wait()
    kill_group()  # whatever the probe left in its group
    reader.join(5)
    code = proc.returncode
    text = b"".join(tail)[-STDERR_TAIL:].decode("utf-8", "replace")
    write_status(status_path, {
        "exit": code if code >= 0 else None, "signal": signal.Signals(-code).name if code < 0 else None,
        "seconds": round(time.time() - t0, 3), "timed_out": state["timed_out"],
        "terminated": state["terminated"], "stderr_tail": text, "node": socket.gethostname()})
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
