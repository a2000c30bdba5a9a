"""torch.compile inside repro-fixture:compile (Debian's torch 2.6 with g++, python3-dev,
python3-setuptools and libtorch-dev; skipped without docker or the image): the observer check
for a compiled run — traced and untraced end with bit-identical losses and parameters — and what
the compiled trace holds (the boundaries the compiled graph keeps, eager replays, fused regions).
The container is hardened like repro's: read-only root, no network, /tmp without exec; only
the scratch area (REPRO_PROBE_SCRATCH) allows exec, as repro's work area does."""

import os
import shutil
import subprocess
import tempfile
import unittest

import helpers

IMAGE = "repro-fixture:compile"


def _have(image):
    if shutil.which("docker") is None:
        return False
    return subprocess.call(["docker", "image", "inspect", image], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0


AVAILABLE = _have(IMAGE)
SMALL = {"train": {"epochs": 1, "batch_size": 64}, "model": {"hidden": [16, 8]}}


@unittest.skipUnless(AVAILABLE or os.environ.get("CI"), "%s (or docker) not available" % IMAGE)
class CompiledInDockerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="repro-compiled-docker-")
        os.chmod(cls.dir, 0o777)
        cls.runs = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def probe(self, name, traced, workload="mlp", compiled=True):
        if name in self.runs:
            return self.runs[name]
        d = os.path.join(self.dir, name)
        os.makedirs(os.path.join(d, "scratch"))
        sha = helpers.MAKERS[workload](os.path.join(d, "data.safetensors"))
        sections = dict((k, dict(v)) for k, v in SMALL.items()) if workload == "mlp" else {"train": {"epochs": 1}}
        sections["knobs"] = {"compile": compiled}
        sections["trace"] = {"enabled": traced, "store_steps": [0, 3]}
        helpers.write_config(d, sha, workload=workload, **sections)
        cmd = ["docker", "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid",
               "--user", "%d:%d" % (os.getuid(), os.getgid()), "-v", "%s:/p:ro" % helpers.PROBE_DIR,
               "-v", "%s:/x" % d, "-w", "/x", "-e", "PYTHONPATH=/p", "-e", "HOME=/x/scratch",
               "-e", "REPRO_PROBE_SCRATCH=/x/scratch"] + helpers.docker_env_args()
        cmd += [IMAGE, "python3", "-m", "repro_probe", "train", "--config", "/x/config.json", "--out", "/x/out"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=900)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        out = os.path.join(d, "out")
        run = helpers.load_json(os.path.join(out, "run.json"))
        trace = helpers.load_json(os.path.join(out, "trace.json")) if traced else None
        self.runs[name] = (run, trace)
        return run, trace

    def test_observer_check_traced_vs_untraced(self):
        traced, _ = self.probe("traced", True)
        untraced, _ = self.probe("untraced", False)
        self.assertEqual(traced["status"], "ok")
        self.assertEqual(untraced["status"], "ok")
        self.assertTrue(traced["knobs_effective"]["compile"])
        self.assertEqual(traced["final_params_sha256"], untraced["final_params_sha256"])
        for key in ("train_loss", "val_loss", "val_accuracy"):
            self.assertEqual(traced["final"][key], untraced["final"][key], key)
        print("\n  compiled, traced vs untraced: final parameters sha256 %s… in both; train loss %r in both"
              % (traced["final_params_sha256"][:16], traced["final"]["train_loss"]))

    def test_compiled_trace_holds_the_boundaries_and_eager_replays(self):
        run, trace = self.probe("traced", True)
        self.assertEqual(trace["capture"], "boundaries")
        stored = [s for s in trace["steps"] if s.get("stored") and s["step"] != "init"]
        self.assertTrue(stored)
        params = set(run["model"]["parameters"]) if isinstance(run["model"].get("parameters"), list) else None
        for s in stored:
            names = [e["name"] for e in s["entries"]]
            kinds = set(n.split("/")[0] for n in names)
            # the compiled program's own values: output, loss, gradients, parameters, optimizer state
            self.assertIn("out", names)
            self.assertIn("loss", names)
            self.assertTrue({"grad", "param", "opt"} <= kinds, kinds)
            # no forward hook inside the compiled graph: per-layer values are eager replays
            self.assertNotIn("fwd", kinds)
            self.assertIn("replay", kinds)
            if params is not None:
                self.assertEqual(set(n[len("grad/"):] for n in names if n.startswith("grad/")), params)
        compiled = run["compiled"]
        self.assertGreaterEqual(compiled["graphs"], 1)
        self.assertEqual(compiled["graph_breaks"], 0)
        self.assertTrue(compiled["regions"], "inductor's fused kernels are named")
        self.assertTrue(any(r["modules"] for r in compiled["regions"]), compiled["regions"][:3])
        print("\n  compiled trace, step %d: %s" % (stored[0]["step"], sorted(set(
            n if n in ("out", "loss") else n.split("/")[0] + "/…" for n in (e["name"] for e in stored[0]["entries"])))))
        regions = ["%s: %s" % (r["kernel"], ",".join(r["modules"])) for r in compiled["regions"][:4]]
        print("  fused regions: %s" % regions)

    def test_replay_takes_the_training_forward_path(self):
        """torch 2.6 does not compile nn.LSTM (no graph), so the compiled run's eager replays must
        equal the eager run's forwards bit for bit: a replay under no_grad took another CPU LSTM
        kernel (up to 0.13 apart) and showed a divergence compile did not cause."""
        compiled, ctrace = self.probe("lstm-compiled", True, "lstm", True)
        _, etrace = self.probe("lstm-eager", True, "lstm", False)
        self.assertEqual(compiled["compiled"]["graphs"], 0, compiled["compiled"])

        def entries(trace, prefix):
            return dict((e["name"][len(prefix):], e["sha256"]) for s in trace["steps"] if s["step"] == 0
                        for e in s["entries"] if e["name"].startswith(prefix))
        replays, forwards = entries(ctrace, "replay/fwd/"), entries(etrace, "fwd/")
        self.assertTrue(replays)
        self.assertEqual(replays, dict((k, forwards[k]) for k in replays))


if __name__ == "__main__":
    unittest.main()
