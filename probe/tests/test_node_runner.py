"""probe/node_runner.py's pure parts: a container's options fitted to the Slurm job's allocation
(only its GPUs; memory and CPUs from it where the user set none) and the launcher's status read
out of the tar `cp` gives. Constructed job environments: no GPU is needed, none is simulated."""

import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest

import helpers

spec = importlib.util.spec_from_file_location("node_runner", os.path.join(helpers.PROBE_DIR, "node_runner.py"))
node_runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(node_runner)

DOCKER = ["create", "--network", "none", "--read-only", "--memory", "4g", "--memory-swap", "4g", "--cpus", "2",
          "--gpus", "all", "--label", "repro=1", "--env", "A=--gpus", "--entrypoint", "python3"]
PODMAN = ["create", "--read-only", "--memory", "4g", "--memory-swap", "4g", "--cpus", "2",
          "--device", "nvidia.com/gpu=all", "--label", "repro=1"]
NONE = {"memory": False, "cpus": False}
BOTH = {"memory": True, "cpus": True}


def value(args, flag):
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


class AllocationTest(unittest.TestCase):
    def test_docker_gets_only_the_jobs_gpus(self):
        out = node_runner.allocation_options(DOCKER, "docker", {"SLURM_JOB_GPUS": "2,3"}, NONE)
        # docker reads --gpus as CSV: several devices inside quotes
        self.assertEqual(value(out, "--gpus"), ['"device=2,3"'])
        self.assertEqual(len(out), len(DOCKER))
        self.assertEqual(value(out, "--env"), ["A=--gpus"])  # values are never taken for flags

    def test_cuda_visible_devices_and_uuids(self):
        env = {"CUDA_VISIBLE_DEVICES": "GPU-0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"}
        out = node_runner.allocation_options(DOCKER, "docker", env, NONE)
        self.assertEqual(value(out, "--gpus"), ['"device=GPU-0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"'])
        # the job's own list wins over CUDA_VISIBLE_DEVICES (which task/cgroup renumbers from 0)
        both = {"SLURM_JOB_GPUS": "1", "CUDA_VISIBLE_DEVICES": "0"}
        out = node_runner.allocation_options(DOCKER, "docker", both, NONE)
        self.assertEqual(value(out, "--gpus"), ['"device=1"'])

    def test_podman_cdi_devices_one_each(self):
        out = node_runner.allocation_options(PODMAN, "podman", {"SLURM_JOB_GPUS": "0,1"}, NONE)
        self.assertEqual(value(out, "--device"), ["nvidia.com/gpu=0", "nvidia.com/gpu=1"])

    def test_no_gpus_named_leaves_the_options(self):
        unnamed = ({}, {"CUDA_VISIBLE_DEVICES": ""}, {"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, {"SLURM_JOB_GPUS": "0;rm"})
        for env in unnamed:
            self.assertEqual(node_runner.allocation_options(DOCKER, "docker", env, NONE), DOCKER, env)

    def test_memory_and_cpus_from_the_allocation_only_where_not_set(self):
        env = {"SLURM_MEM_PER_NODE": "8192", "SLURM_CPUS_ON_NODE": "4"}
        out = node_runner.allocation_options(DOCKER, "docker", env, BOTH)
        self.assertEqual((value(out, "--memory"), value(out, "--memory-swap"), value(out, "--cpus")),
                         (["8192m"], ["8192m"], ["4"]))
        out = node_runner.allocation_options(DOCKER, "docker", env, {"memory": False, "cpus": True})
        self.assertEqual((value(out, "--memory"), value(out, "--cpus")), (["4g"], ["4"]))
        per_cpu = {"SLURM_MEM_PER_CPU": "1000", "SLURM_CPUS_ON_NODE": "3"}
        self.assertEqual(value(node_runner.allocation_options(DOCKER, "docker", per_cpu, BOTH), "--memory"), ["3000m"])
        # no memory in the allocation (no --mem, no DefMemPerNode): the default stays
        self.assertEqual(value(node_runner.allocation_options(DOCKER, "docker", {"SLURM_CPUS_ON_NODE": "1"}, BOTH),
                               "--memory"), ["4g"])

    def test_read_only_takes_no_value(self):
        out = node_runner.allocation_options(["create", "--read-only", "--cpus", "2"], "docker",
                                             {"SLURM_CPUS_ON_NODE": "1"}, BOTH)
        self.assertEqual(out, ["create", "--read-only", "--cpus", "1"])


class OwnerTest(unittest.TestCase):
    def test_a_prepared_run_gets_the_runner_as_its_owner(self):
        out = node_runner.owned_options(DOCKER, 4242, "gpu-box")
        self.assertEqual(out[0], "create")
        self.assertEqual(sorted(value(out, "--label")), ["repro.host=gpu-box", "repro.pid=4242", "repro=1"])
        self.assertEqual(out[5:], DOCKER[1:])

    def test_a_slurm_run_keeps_the_audit_as_its_owner(self):
        owned = DOCKER + ["--label", "repro.pid=17", "--label", "repro.host=submit"]
        self.assertEqual(node_runner.owned_options(owned, 4242, "node1"), owned)


class StatusTarTest(unittest.TestCase):
    def tar(self, name, data):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def test_reads_the_launchers_status(self):
        raw = json.dumps({"exit": 0, "python": "/usr/bin/python3", "full": False}).encode()
        self.assertEqual(node_runner.status_from_tar(self.tar("status.json", raw))["python"], "/usr/bin/python3")

    def test_rejects_what_is_not_one(self):
        self.assertIsNone(node_runner.status_from_tar(b"not a tar"))
        self.assertIsNone(node_runner.status_from_tar(self.tar("status.json", b'{"exit": "0"}')))
        self.assertIsNone(node_runner.status_from_tar(self.tar("other.json", b'{"exit": 0}')))


class PythonRunTest(unittest.TestCase):
    def test_pythonpath_keeps_the_knobs_entries_and_resolves_the_probes(self):
        """--set env.PYTHONPATH=… comes before the probe's entry; relative entries are the spec's folder's."""
        with tempfile.TemporaryDirectory() as base:
            seen = os.path.join(base, "seen")
            spec = {"schema": "repro.prepared/2", "python": sys.executable,
                    "argv": ["-c", "import os; open(%r, 'w').write(os.environ['PYTHONPATH'])" % seen],
                    "env": {"PYTHONPATH": "/opt/mylib:../probe"}, "timeout_seconds": 60, "status": "status.json"}
            with open(os.path.join(base, "spec.json"), "w") as f:
                json.dump(spec, f)
            runner = os.path.join(helpers.PROBE_DIR, "node_runner.py")
            r = subprocess.run([sys.executable, "-S", runner, os.path.join(base, "spec.json")], capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(base, "status.json")) as f:
                self.assertEqual(json.load(f)["exit"], 0)
            with open(seen) as f:
                self.assertEqual(f.read(), "/opt/mylib:" + os.path.join(base, "../probe"))


class IdentifyTest(unittest.TestCase):
    def identify(self, python):
        with tempfile.TemporaryDirectory() as base:
            with open(os.path.join(base, "spec.json"), "w") as f:
                json.dump({"schema": "repro.prepared/2", "identify": {"python": python}, "timeout_seconds": 60,
                           "status": "status.json"}, f)
            runner = os.path.join(helpers.PROBE_DIR, "node_runner.py")
            code = subprocess.run([sys.executable, "-S", runner, os.path.join(base, "spec.json")]).returncode
            with open(os.path.join(base, "status.json")) as f:
                return code, json.load(f)["identify"]

    def test_the_interpreter_as_this_node_has_it(self):
        code, answer = self.identify(sys.executable)
        self.assertEqual(code, 0)
        real = os.path.realpath(sys.executable)
        self.assertEqual(answer["real_path"], real)
        self.assertEqual(answer["size"], os.stat(real).st_size)
        self.assertRegex(answer["mtime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_a_missing_interpreter_is_named(self):
        code, answer = self.identify("/nonexistent/bin/python3")
        self.assertEqual(code, 1)
        self.assertEqual(answer["error"], "/nonexistent/bin/python3 does not exist")
        self.assertIsNone(answer["real_path"])


if __name__ == "__main__":
    unittest.main()
