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

An image run (SPEC.json has "image" instead of "python" and "argv") runs the probe's container
the way repro does locally, with the engine on this node: `create` with the options, image and
command repro computed on the submit host (the options adjusted to this job's allocation first:
its GPUs, and its memory and CPUs where the user set none), `start`, the inputs tar copied in
with `cp -`, status.json of the container's launcher polled with `cp`, `out/` streamed into
out.tar, and the container removed (`rm -f -v`) whatever happens, TERM from Slurm included:
the engine's daemon, not this job, is the container's parent, so Slurm would never kill it.
A container whose options name no owner (a run `repro prepare` staged) is labelled with this
runner's pid and host. status.json then also has image_id (the ID the engine ran) and container (what happened).

An inspect task (SPEC.json has "inspect") asks this node's engine what an image target's launch
plan is made from, so the submit host needs no engine: `version` (the server's platform), `image
inspect` (pulling the image first when the node does not have it), and, when "read" names paths,
the first bytes of the first of them the image has (`cp` from a container created, never
started, then removed). The answers go to the files the spec names and to status.json's "inspect".

An identify task (SPEC.json has "identify": {"python": path}) says what a python target's
interpreter is on this node (its real path, size and modification time), without running it.
"""

import io
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
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
    if "image" in spec:
        return run_image(spec, here, status_path)
    if "inspect" in spec:
        return run_inspect(spec, here, status_path)
    if "identify" in spec:
        return run_identify(spec, status_path)
    work = tempfile.mkdtemp(prefix="repro-node-")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1",
           "REPRO_PROBE_SCRATCH": os.path.join(work, "scratch")}
    for k, v in spec["env"].items():
        # each relative entry (the probe's ./probe or ../probe) is relative to the spec's folder
        env[k] = os.pathsep.join(here(p) for p in v.split(os.pathsep) if p) if k == "PYTHONPATH" else v
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
    # the job's own state says whether the run failed (squeue, scontrol: FAILED)
    return 0 if code == 0 else 1


# --- image runs -------------------------------------------------------------------------------

GPU_TOKEN = re.compile(r"^(\d+|GPU-[0-9A-Za-z-]+|MIG-[0-9A-Za-z/-]+)$")
OPTIONS_WITHOUT_VALUE = {"--read-only"}


def allocated_gpus(env):
    """The GPUs Slurm gave this job (indexes or UUIDs), or None when the job names none."""
    for name in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES"):
        tokens = [t.strip() for t in env.get(name, "").split(",") if t.strip()]
        if tokens and all(GPU_TOKEN.match(t) for t in tokens):
            return tokens
    return None


def allocated_memory_mb(env):
    """The job's memory in MB (--mem, or --mem-per-cpu times its CPUs), or None."""
    per_node = env.get("SLURM_MEM_PER_NODE", "")
    if per_node.isdigit() and int(per_node) > 0:
        return int(per_node)
    per_cpu, cpus = env.get("SLURM_MEM_PER_CPU", ""), env.get("SLURM_CPUS_ON_NODE", "")
    if per_cpu.isdigit() and cpus.isdigit() and int(per_cpu) > 0 and int(cpus) > 0:
        return int(per_cpu) * int(cpus)
    return None


def allocation_options(options, engine, env, limits_from_allocation):
    """The container's options fitted to this job: `--gpus all` (docker) or the CDI `--device
    nvidia.com/gpu=all` (podman) narrowed to the job's GPUs, and `--memory`/`--memory-swap` and
    `--cpus` from the allocation where the user set none (limits_from_allocation). Pure."""
    gpus = allocated_gpus(env)
    memory = allocated_memory_mb(env) if limits_from_allocation.get("memory") else None
    cpus = env.get("SLURM_CPUS_ON_NODE", "") if limits_from_allocation.get("cpus") else ""
    out = []
    i = 0
    while i < len(options):
        opt = options[i]
        if not opt.startswith("--") or opt in OPTIONS_WITHOUT_VALUE or i + 1 >= len(options):
            out.append(opt)
            i += 1
            continue
        value = options[i + 1]
        if opt == "--gpus" and value == "all" and gpus is not None:
            # docker reads --gpus as CSV: several devices need the quotes
            out += ["--gpus", '"device=%s"' % ",".join(gpus)]
        elif opt == "--device" and value == "nvidia.com/gpu=all" and gpus is not None:
            for g in gpus:
                out += ["--device", "nvidia.com/gpu=%s" % g]
        elif opt in ("--memory", "--memory-swap") and memory is not None:
            out += [opt, "%dm" % memory]
        elif opt == "--cpus" and cpus.isdigit() and int(cpus) > 0:
            out += [opt, cpus]
        else:
            out += [opt, value]
        i += 2
    return out


def owned_options(options, pid, host):
    """The container's options with this runner as its owner (`--label repro.pid=`, `repro.host=`)
    when they name none: a run `repro prepare` staged has no repro process behind it, so an orphan
    sweep on this machine sees a live owner while the runner runs, and a dead one after. Pure."""
    if any(o.startswith("repro.pid=") for o in options) or not options or options[0] != "create":
        return list(options)
    return [options[0], "--label", "repro.host=%s" % host, "--label", "repro.pid=%d" % pid] + list(options[1:])


class Terminated(Exception):
    pass


def terminate_on_signals(state):
    """TERM or INT (scancel, Slurm's time limit, preemption) is recorded in state["terminated"]
    and raises Terminated, once: the caller's clean-up (removing its container) then runs."""
    def on_term(signum, frame):
        if state["terminated"] is None:
            state["terminated"] = signal.Signals(signum).name
            raise Terminated()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)


def engine_env():
    """The job's environment for the engine's CLI; a rootless engine finds its store through HOME."""
    env = dict(os.environ)
    if "HOME" not in env:
        try:
            env["HOME"] = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            pass
    runtime = "/run/user/%d" % os.getuid()
    if "XDG_RUNTIME_DIR" not in env and os.getuid() != 0 and os.path.isdir(runtime):
        env["XDG_RUNTIME_DIR"] = runtime
    return env


def tail_text(data, size=STDERR_TAIL):
    return data[-size:].decode("utf-8", "replace")


def status_from_tar(data):
    """status.json of the container's launcher, out of the tar `cp …/status.json -` gives."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                if member.isfile() and os.path.basename(member.name) == "status.json" and member.size < 65536:
                    raw = json.loads(tar.extractfile(member).read().decode("utf-8"))
                    return raw if isinstance(raw, dict) and isinstance(raw.get("exit"), int) else None
    except (tarfile.TarError, ValueError, OSError):
        return None
    return None


def run_image(spec, here, status_path):
    img = spec["image"]
    engine = img["engine"]
    env = engine_env()
    scratch = tempfile.mkdtemp(prefix="repro-node-")
    t0 = time.time()
    deadline = t0 + spec["timeout_seconds"]
    name = "repro-%s-%d-%d" % (os.environ.get("SLURM_JOB_ID", "job"), os.getpid(), int(t0))
    state = {"timed_out": False, "terminated": None}
    facts = {"phase": None, "error": "", "exit_code": None, "oom_killed": False, "boot": None,
             "out_truncated": False}
    result = {"image_id": None, "logs": b""}
    waiter = []

    terminate_on_signals(state)

    def engine_run(args, stdin=None, cap=None, timeout=300):
        """The engine's CLI; (exit code, stdout bytes, stderr bytes); stdout stops at cap."""
        try:
            p = subprocess.Popen([engine] + args, cwd=scratch, env=env,
                                 stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:  # no engine on this node
            return 127, b"", ("%s on node %s: %s\n" % (engine, socket.gethostname(), e)).encode("utf-8")
        try:
            out, err = p.communicate(stdin, timeout=timeout)
        except BaseException:
            p.kill()
            p.wait()
            raise
        if cap is not None and len(out) > cap:
            facts["out_truncated"] = True
            out = out[:cap]
        return p.returncode, out, err

    def stopped():
        return bool(waiter) and waiter[0].poll() is not None

    def record_stop():
        code, out, err = engine_run(["inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", name],
                                    timeout=30)
        words = out.decode("utf-8", "replace").split()
        if code == 0 and words:
            facts["exit_code"] = int(words[0]) if words[0].lstrip("-").isdigit() else 1
            facts["oom_killed"] = len(words) > 1 and words[1] == "true"
        # podman's conmon writes `oom` into its working directory when the kernel killed the container
        facts["oom_killed"] = facts["oom_killed"] or os.path.exists(os.path.join(scratch, "oom"))

    try:
        options = allocation_options(img["options"], engine, os.environ, img.get("limits_from_allocation", {}))
        options = owned_options(options, os.getpid(), socket.gethostname())
        code, out, err = engine_run(options + ["--name", name, img["image"]] + img["command"], timeout=120)
        if code != 0:
            facts["phase"], facts["error"] = "create", tail_text(err)
        else:
            code, out, err = engine_run(["inspect", "--format", "{{.Image}}", name], timeout=30)
            image_id = out.decode("utf-8", "replace").strip()
            if re.match(r"^[0-9a-f]{64}$", image_id):
                image_id = "sha256:" + image_id
            result["image_id"] = image_id or None
            code, out, err = engine_run(["start", name], timeout=120)
            if code != 0:
                facts["phase"], facts["error"] = "start", tail_text(err)
                record_stop()
            else:
                waiter.append(subprocess.Popen([engine, "wait", name], cwd=scratch, env=env, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                with open(here(img["inputs_tar"]), "rb") as f:
                    inputs = f.read()
                code, out, err = engine_run(["cp", "-", "%s:%s" % (name, img["work_area"])], stdin=inputs)
                if code != 0:
                    facts["phase"], facts["error"] = "copy-in", tail_text(err)
                    if stopped():
                        record_stop()
                else:
                    pause = 0.1
                    while True:
                        if stopped():
                            facts["phase"] = "stopped"
                            record_stop()
                            break
                        if time.time() > deadline:
                            facts["phase"] = "timed-out"
                            state["timed_out"] = True
                            break
                        status_in = "%s:%s/status.json" % (name, img["work_area"])
                        code, out, err = engine_run(["cp", status_in, "-"], timeout=30)
                        boot = status_from_tar(out) if code == 0 else None
                        if boot is not None:
                            facts["phase"], facts["boot"] = "status", boot
                            code, out, err = engine_run(["cp", "%s:%s/out" % (name, img["work_area"]), "-"],
                                                        cap=img["out_cap"])
                            if code == 0:
                                with open(here(img["out_tar"]), "wb") as f:
                                    f.write(out)
                            else:
                                facts["error"] = tail_text(err)
                            break
                        time.sleep(max(0, min(pause, deadline - time.time())))
                        pause = min(0.5, pause * 1.5)
                code, out, err = engine_run(["logs", name], timeout=30)
                result["logs"] = err[-STDERR_TAIL:]
    except Terminated:
        facts["phase"] = "terminated"
    finally:
        # from here on a second TERM must not cut the removal short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        remove_container(engine, env, scratch, name, img["remove"])
        for w in waiter:
            if w.poll() is None:
                w.kill()
            w.wait()
    text = tail_text(result["logs"]) if result["logs"] else facts["error"]
    sys.stderr.write(text)
    sys.stderr.flush()
    write_status(status_path, {
        "exit": None, "signal": None, "seconds": round(time.time() - t0, 3), "timed_out": state["timed_out"],
        "terminated": state["terminated"], "stderr_tail": text, "node": socket.gethostname(),
        "image_id": result["image_id"], "container": facts,
        "allocation": {"gpus": allocated_gpus(os.environ), "memory_mb": allocated_memory_mb(os.environ),
                       "cpus": os.environ.get("SLURM_CPUS_ON_NODE")}})
    shutil.rmtree(scratch, ignore_errors=True)
    boot = facts["boot"]
    return 0 if facts["phase"] == "status" and boot["exit"] == 0 else 1


INSPECT_CAP = 4 * 1024 * 1024
FILE_HEAD = 8192


def run_inspect(spec, here, status_path):
    task = spec["inspect"]
    engine = task["engine"]
    env = engine_env()
    scratch = tempfile.mkdtemp(prefix="repro-node-")
    t0 = time.time()
    deadline = t0 + spec["timeout_seconds"]
    name = "repro-inspect-%s-%d-%d" % (os.environ.get("SLURM_JOB_ID", "job"), os.getpid(), int(t0))
    state = {"terminated": None, "timed_out": False}
    answer = {"version": "", "ok": False, "error": "", "file": None}

    terminate_on_signals(state)

    def engine_run(args, cap=INSPECT_CAP):
        """The engine's CLI, within the task's time: (exit code, stdout up to cap, stderr tail)."""
        left = deadline - time.time()
        if left <= 0:
            state["timed_out"] = True
            return 124, b"", b"the inspect task ran out of time\n"
        try:
            p = subprocess.Popen([engine] + args, cwd=scratch, env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:  # no engine on this node
            return 127, b"", ("%s: %s\n" % (engine, e)).encode("utf-8")
        try:
            out, err = p.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            state["timed_out"] = True
            return 124, b"", b"the inspect task ran out of time\n"
        except BaseException:
            p.kill()
            p.wait()
            raise
        return p.returncode, out[:cap], err[-STDERR_TAIL:]

    created = False
    try:
        code, out, err = engine_run(["version", "--format", task["version_format"]], cap=1024)
        if code != 0:
            answer["error"] = "the %s engine is not answering: %s" % (engine, tail_text(err).strip())
        else:
            answer["version"] = out.decode("utf-8", "replace").strip()
            code, out, err = engine_run(["image", "inspect", task["image"]])
            if code != 0:
                code, _, pull_err = engine_run(["pull", "--quiet", task["image"]], cap=4096)
                if code == 0:
                    code, out, err = engine_run(["image", "inspect", task["image"]])
                else:
                    err = pull_err
            if code != 0:
                answer["error"] = "image %s is not present and could not be pulled: %s" % (
                    task["image"], tail_text(err).strip())
            else:
                with open(here(task["inspect_out"]), "wb") as f:
                    f.write(out)
                answer["ok"] = True
                if task.get("read"):
                    code, out, err = engine_run(task["create"] + ["--name", name, task["read_image"]], cap=4096)
                    created = True
                    if code != 0:
                        answer["ok"] = False
                        answer["error"] = "cannot create a container to inspect the image: %s" % tail_text(err).strip()
                    else:
                        for p in task["read"]:
                            code, out, err = engine_run(task["cp"] + ["%s:%s" % (name, p), "-"], cap=FILE_HEAD)
                            if code == 0 and out:
                                with open(here(task["file_out"]), "wb") as f:
                                    f.write(out)
                                answer["file"] = p
                                break
    except Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if created:
            remove_container(engine, env, scratch, name, task["remove"])
    sys.stderr.write(answer["error"])
    write_status(status_path, {
        "exit": 0 if answer["ok"] else 1, "signal": None, "seconds": round(time.time() - t0, 3),
        "timed_out": state["timed_out"], "terminated": state["terminated"],
        "stderr_tail": answer["error"][-STDERR_TAIL:], "node": socket.gethostname(), "inspect": answer})
    shutil.rmtree(scratch, ignore_errors=True)
    return 0 if answer["ok"] else 1


def run_identify(spec, status_path):
    given = spec["identify"]["python"]
    t0 = time.time()
    answer = {"real_path": None, "size": None, "mtime": None, "error": ""}
    real = os.path.realpath(given)
    try:
        st = os.stat(real)
        if not os.path.isfile(real) or not os.access(real, os.X_OK):
            answer["error"] = "%s is not an executable file" % given
        else:
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_mtime))
            answer.update(real_path=real, size=st.st_size,
                          mtime="%s.%03dZ" % (when, int(st.st_mtime * 1000) % 1000))
    except OSError:
        answer["error"] = "%s does not exist" % given
    write_status(status_path, {
        "exit": 1 if answer["error"] else 0, "signal": None, "seconds": round(time.time() - t0, 3),
        "timed_out": False, "terminated": None, "stderr_tail": answer["error"], "node": socket.gethostname(),
        "identify": answer})
    return 1 if answer["error"] else 0


def remove_container(engine, env, scratch, name, remove):
    """`rm -f -v` the container, again while the engine still lists it (a `create` that TERM cut
    short may finish in the daemon after its client died)."""
    if shutil.which(engine, path=env.get("PATH")) is None:
        return
    for attempt in range(5):
        subprocess.run([engine] + remove + [name], cwd=scratch, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        left = subprocess.run([engine, "ps", "-a", "-q", "--filter", "name=^%s$" % name], cwd=scratch, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
        if left.returncode == 0 and not left.stdout.strip():
            return
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
