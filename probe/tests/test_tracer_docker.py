"""Script mode inside the fixture images (skipped without docker or the images): repro-fixture:trixie
(torch 2.6, Python 3.13: global optimizer hooks, torch.compile) and repro-fixture:bookworm
(torch 1.13: per-instance optimizer step wrappers), with the observer check, no network."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import helpers

IMAGES = ("repro-fixture:trixie", "repro-fixture:bookworm")


def _have(image):
    if shutil.which("docker") is None:
        return False
    return subprocess.call(["docker", "image", "inspect", image], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0


AVAILABLE = dict((image, _have(image)) for image in IMAGES)


class DockerScriptTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="repro-tracer-docker-")
        cls.runs = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def probe(self, image, script, args=()):
        key = (image, script, tuple(args))
        if key in self.runs:
            return self.runs[key]
        if not AVAILABLE[image]:
            self.skipTest("%s (or docker) not available" % image)
        d = os.path.join(self.dir, "%d" % len(self.runs))
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump({"schema": "repro.config/1",
                       "script": {"path": "/p/tests/scripts/" + script, "args": list(args), "observer": True}}, f)
        cmd = ["docker", "run", "--rm", "--network", "none", "--user", "%d:%d" % (os.getuid(), os.getgid()),
               "-v", "%s:/p:ro" % helpers.PROBE_DIR, "-v", "%s:/x" % d, "-w", "/x", "-e", "PYTHONPATH=/p"]
        cmd += helpers.docker_env_args()
        cmd += [image, "python3", "-m", "repro_probe", "script", "--config", "/x/config.json", "--out", "/x/out"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        run, trace = (helpers.load_json(os.path.join(d, "out", n)) for n in ("run.json", "trace.json"))
        self.runs[key] = (run, trace)
        return run, trace

    @staticmethod
    def names(trace, step):
        return [e["name"] for s in trace["steps"] if s["step"] == step for e in s["entries"]]

    def check_plain(self, image, hooks):
        run, trace = self.probe(image, "plain.py")
        self.assertEqual(run["status"], "ok")
        self.assertEqual(run["script"]["hooks"]["optimizer"], hooks)
        self.assertEqual(run["steps"], 5)
        self.assertTrue(run["script"]["observer_check"]["equal"], run["script"]["observer_check"])
        self.assertEqual(self.names(trace, 0)[:2],
                         ["fwd/encoder.layers.0.self_attn.0", "fwd/encoder.layers.0.dropout1"])
        return run, trace

    def test_trixie_global_optimizer_hooks(self):
        self.check_plain("repro-fixture:trixie", "global optimizer step hooks")

    def test_bookworm_instance_step_wrappers(self):
        self.check_plain("repro-fixture:bookworm", "optimizer instance step wrappers")

    def test_same_names_across_torch_versions(self):
        _, new = self.check_plain("repro-fixture:trixie", "global optimizer step hooks")
        _, old = self.check_plain("repro-fixture:bookworm", "optimizer instance step wrappers")
        digests = [[(s["step"], e["name"], e["sha256"]) for s in t["steps"] for e in s["entries"]] for t in (new, old)]
        self.assertEqual([d[:2] for d in digests[0]], [d[:2] for d in digests[1]])
        first = next((a[:2] for a, b in zip(*digests) if a != b), None)
        print("\n  torch 2.6 vs 1.13, plain.py: first differing entry %r" % (first,))

    def check_compiled(self, args, output):
        run, trace = self.probe("repro-fixture:trixie", "compiled.py", args)
        self.assertEqual(run["status"], "ok")
        s = run["script"]
        self.assertTrue(s["compiled"])
        self.assertEqual(run["final"]["graph_breaks"], 0)  # no hook forced a graph break
        self.assertEqual(run["final"]["unique_graphs"], 1)
        self.assertTrue(s["observer_check"]["equal"], s["observer_check"])
        params = ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.3.weight", "net.3.bias"]
        self.assertEqual(self.names(trace, 0), output + ["loss"] + ["grad/" + p for p in params]
                         + ["param/" + p for p in params])

    def test_trixie_torch_compile_boundaries_only(self):
        self.check_compiled((), ["out"])

    def test_trixie_module_compile_in_place(self):
        self.check_compiled(("--inplace",), [])  # the whole call is compiled: no output entry


if __name__ == "__main__":
    unittest.main()
