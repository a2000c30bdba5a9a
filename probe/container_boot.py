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


# ---------------------------------------------------------------------------------------------
# serve: one container for many runs of a target (argv: WORK_AREA LINGER_SECONDS serve [DIR…]:
# the folders emptied after each run besides the work area, /tmp in a container), started
# with `python -S` (stdlib only: an image's sitecustomize does not run in the supervisor).
#
# Each run is one job, taken strictly one after another, in the same paths a one-run container
# uses (/repro/in, /repro/out, /repro/ready, /repro/status.json), so the probe and the image see
# what they would in a container of their own:
#   repro copies jobs/SEQ/in/ and jobs/SEQ/job.json, then jobs/SEQ/ready (last; SEQ counts the
#   runs from 1) — the supervisor links the inputs into in/, creates ready, and starts a freshly
#   exec'd python running repro_probe as `-m` would (this interpreter, site enabled, the image's
#   environment plus the job's PYTHONPATH entry for the probe). Its stderr is kept to its last
#   64 KiB in stderr.tail (and passed on to the container's log); its OOM score is raised so
#   that the kernel's OOM killer takes it, not this process. status.json gets its exit code, the
#   signal that ended it, whether the container's memory cgroup OOM-killed a process during the
#   run, and whether the work area ran full. Whatever the run started is killed when it ends (the
#   supervisor is a child subreaper, so orphans stay its descendants); repro copies out/ and
#   then jobs/SEQ/collected, and the run's files, the scratch folder and the DIRs are emptied
#   before run SEQ+1 is taken. What the engine wrote is never moved or removed while its cp
#   may still be setting times.
# An idle supervisor (no job, or no `collected`) ends after LINGER_SECONDS; repro removes the
# container when it is done with the target, and at once after any run that did not end cleanly.

TAIL = 64 * 1024

# A run's python: `python -m repro_probe` as a one-run container's launcher runs it (runpy), then
# out at once with its exit code: the interpreter's own teardown (torch's, measured at ~0.9 s a
# run here) is not waited for, as it never was when the launcher wrote the status itself.
CHILD = """import os, runpy, sys, traceback
sys.argv = ["repro_probe"] + sys.argv[1:]
code = 0
try:
    runpy.run_module("repro_probe", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = 0 if e.code is None else (e.code if isinstance(e.code, int) else 1)
except BaseException:
    traceback.print_exc()
    code = 1
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except Exception:
        pass
os._exit(code)
"""


def oom_kills():
    """The container's memory cgroup's OOM kill count (cgroup v2, then v1), or None."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def become_subreaper():
    """PR_SET_CHILD_SUBREAPER: what a run leaves behind (a daemonised grandchild) is reparented
    to this process, not to the container's PID 1 (a kept entrypoint's shell), so it stays one of
    this process's descendants."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except Exception:
        pass


def kill_descendants():
    """SIGKILL every descendant of this process: nothing a run started outlives it."""
    import signal
    me = os.getpid()
    for _ in range(5):
        parent = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        found = set()
        grew = True
        while grew:
            grew = False
            for pid, ppid in parent.items():
                if pid not in found and (ppid == me or ppid in found):
                    found.add(pid)
                    grew = True
        if not found:
            return
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        # reap what was this process's own (a subreaper inherits the orphans)
        deadline = time.time() + 1
        while time.time() < deadline:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    time.sleep(0.01)
            except ChildProcessError:
                break


def empty(path, keep=()):
    import shutil
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        if name in keep:
            continue
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            try:
                os.unlink(full)
            except OSError:
                pass


def raise_oom_score():
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def run_child(root, mode):
    import subprocess
    import threading
    probe = os.path.join(root, "probe")
    env = dict(os.environ)
    own = env.get("PYTHONPATH", "")
    if probe not in own.split(os.pathsep):
        env["PYTHONPATH"] = own + os.pathsep + probe if own else probe
    argv = [sys.executable, "-c", CHILD, mode, "--config", os.path.join(root, "in", "config.json"),
            "--out", os.path.join(root, "out")]
    tail = bytearray()

    def keep_tail(fd):
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            # also the container's own log: what repro reads when a run never ends
            try:
                os.write(2, chunk)
            except OSError:
                pass
            tail.extend(chunk)
            if len(tail) > TAIL:
                del tail[:len(tail) - TAIL]

    try:
        child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 preexec_fn=raise_oom_score, start_new_session=True)
    except OSError as e:
        return 127, None, ("repro: cannot start %s: %s\n" % (sys.executable, e)).encode()
    reader = threading.Thread(target=keep_tail, args=(child.stderr.fileno(),), daemon=True)
    reader.start()
    code = child.wait()
    # nothing the run started outlives it (or holds its stderr open, or writes once its status is out)
    kill_descendants()
    reader.join(5)
    child.stderr.close()
    if code < 0:
        return 128 - code, -code, bytes(tail)
    return code, None, bytes(tail)


def link_tree(src, dst):
    """dst as this process's own folders holding hard links to src's files (a copy where a link
    is refused): nothing under src moves, so the engine's cp, which sets folders' times only
    once all of its tar is written, never finds a path gone."""
    import shutil
    for here, dirs, files in os.walk(src):
        to = os.path.join(dst, os.path.relpath(here, src))
        os.makedirs(to, exist_ok=True)
        for name in files:
            try:
                os.link(os.path.join(here, name), os.path.join(to, name))
            except OSError:
                shutil.copy2(os.path.join(here, name), os.path.join(to, name))


def serve(root, linger, scratch_dirs):
    import shutil
    become_subreaper()
    reserve = os.path.join(root, ".reserve")
    jobs = os.path.join(root, "jobs")
    seq = 1
    while True:
        try:
            with open(reserve, "wb") as f:
                f.write(b"\0" * RESERVE)
        except OSError:
            pass
        job_dir = os.path.join(jobs, str(seq))
        if not wait_for(os.path.join(job_dir, "ready"), linger, 0.02):
            return 0
        with open(os.path.join(job_dir, "job.json")) as f:
            job = json.load(f)
        empty(root, keep=("probe", ".reserve", "jobs"))
        # The engine's cp writes as root, and the work area is sticky (1777): an image's other
        # user could not remove root's entries there. So in/ is this process's own, its files
        # links to the (world-writable) inputs in jobs/SEQ/in.
        link_tree(os.path.join(job_dir, "in"), os.path.join(root, "in"))
        open(os.path.join(root, "ready"), "w").close()
        before = oom_kills()
        code, sig, tail = run_child(root, job["mode"])
        after = oom_kills()
        try:
            os.unlink(reserve)
        except OSError:
            pass
        st = os.statvfs(root)
        free = st.f_bavail * st.f_frsize
        status = {"exit": code, "signal": sig, "python": sys.executable, "full": free < FULL_BELOW,
                  "free_bytes": free, "uid": os.getuid(), "gid": os.getgid(), "seq": seq,
                  "oom": before is not None and after is not None and after > before}
        for name, data in (("stderr.tail", tail), ("status.json", json.dumps(status).encode("utf-8"))):
            tmp = os.path.join(root, name + ".tmp")
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                os.rename(tmp, os.path.join(root, name))
            except OSError:
                if name == "status.json":
                    return 74
        if not wait_for(os.path.join(job_dir, "collected"), linger, 0.02):
            return 0
        empty(root, keep=("probe", "jobs"))
        # the engine may still be setting the times of `collected`: it and its folder stay until
        # the next run is collected; earlier runs' folders go
        empty(job_dir, keep=("collected",))
        for name in os.listdir(jobs):
            if name.isdigit() and int(name) < seq:
                shutil.rmtree(os.path.join(jobs, name), ignore_errors=True)
        for d in scratch_dirs:
            empty(d)
        seq += 1


if len(sys.argv) > 3 and sys.argv[3] == "serve":
    sys.exit(serve(sys.argv[1], float(sys.argv[2]), sys.argv[4:]))
sys.exit(main(sys.argv[1:]))
