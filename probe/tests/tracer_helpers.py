"""Helpers for the script-mode tests: a config.json that points at a script of tests/scripts, a probe
run in script mode (a subprocess), and the trace read back as (step, name, sha256) digests."""

import json
import os
import shutil
import subprocess
import tempfile

import helpers

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts")


class ScriptRun(object):
    def __init__(self, proc, out):
        self.proc, self.out = proc, out
        self.run = self._load("run.json")
        self.trace = self._load("trace.json")

    def _load(self, name):
        path = os.path.join(self.out, name)
        return helpers.load_json(path) if os.path.exists(path) else None

    @property
    def script(self):
        return self.run["script"]

    def digests(self):
        return [(s["step"], e["name"], e["sha256"]) for s in self.trace["steps"] for e in s["entries"]]

    def names(self, step):
        """Entry names of one step (an integer or 'init')."""
        return [e["name"] for s in self.trace["steps"] if s["step"] == step for e in s["entries"]]


class ScriptCase(object):
    """Mixin for unittest.TestCase: a temp directory per class, probe runs cached by name."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="repro-tracer-test-")
        cls.runs = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def probe(self, name, script_file, args=(), env=None, python=None, **sections):
        """Run `script_file` (a file of tests/scripts, or a path) in script mode; cached by name."""
        if name in self.runs:
            return self.runs[name]
        d = os.path.join(self.dir, name)
        os.makedirs(d)
        config = write_script_config(d, script_file, args, **sections)
        out = os.path.join(d, "out")
        proc = run_script_probe(config, out, env, python)
        self.runs[name] = ScriptRun(proc, out)
        return self.runs[name]

    def assertOk(self, r):
        self.assertEqual(r.proc.returncode, 0, r.proc.stderr[-3000:])
        self.assertEqual(r.run["status"], "ok")


def write_script_config(directory, script_file, args=(), **sections):
    path = script_file if os.path.isabs(script_file) else os.path.join(SCRIPTS, script_file)
    cfg = {"schema": "repro.config/1", "script": {"path": path, "args": list(args)}}
    for key, values in sections.items():
        cfg.setdefault(key, {}).update(values)
    config = os.path.join(directory, "config.json")
    with open(config, "w") as f:
        json.dump(cfg, f)
    return config


def run_script_probe(config, out, env=None, python=None, timeout=600):
    full = dict(os.environ)
    full["PYTHONPATH"] = helpers.PROBE_DIR
    full.update(env or {})
    cmd = [python or helpers.sys.executable, "-m", "repro_probe", "script", "--config", config, "--out", out]
    return subprocess.run(cmd, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          universal_newlines=True)


def first_difference(a, b):
    """The first (step, name) whose digest differs between two digest lists, or None."""
    for x, y in zip(a, b):
        if x != y:
            return x[:2] if x[:2] == y[:2] else (x[:2], y[:2])
    return None if len(a) == len(b) else ("length", len(a), len(b))
