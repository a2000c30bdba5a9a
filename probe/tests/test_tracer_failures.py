"""Script mode failure modes, each a run.json error with a type and a one-line message (exit code
3), and the ends that are not failures (SystemExit(0), the step limit caught by the script)."""

import json
import os
import unittest

import helpers
from tracer_helpers import ScriptCase, run_script_probe, write_script_config


class ScriptFailureTest(ScriptCase, unittest.TestCase):
    def failure(self, mode, **sections):
        return self.probe(mode, "failures.py", [mode], **sections)

    def assertError(self, r, type_, steps=None):
        self.assertEqual(r.proc.returncode, 3, r.proc.stderr[-3000:])
        self.assertEqual(r.run["status"], "error")
        self.assertEqual(r.run["error"]["type"], type_)
        self.assertNotIn("\n", r.run["error"]["message"])
        self.assertTrue(os.path.exists(os.path.join(r.out, "fingerprint.json")))
        if steps is not None:
            self.assertEqual(r.run["steps"], steps)
        return r.run["error"]["message"]

    def test_script_not_found(self):
        r = self.probe("missing-file", "/nonexistent/train.py")
        self.assertIn("/nonexistent/train.py does not exist", self.assertError(r, "script_not_found"))
        self.assertEqual(r.script["path"], "/nonexistent/train.py")
        r = self.probe("a-directory", os.path.dirname(os.path.abspath(__file__)))
        self.assertIn("is not a file", self.assertError(r, "script_not_found"))

    def test_script_raises(self):
        r = self.failure("raise")
        msg = self.assertError(r, "script_error", steps=1)
        self.assertEqual(msg, "ValueError: the last line of the message")
        self.assertIn('failures.py", line', r.proc.stderr)  # the traceback, from the script's frame on
        self.assertNotIn("runpy.py", r.proc.stderr)
        self.assertEqual([s["step"] for s in r.trace["steps"]], ["init", 0])  # the partial trace is kept

    def test_no_optimizer_step(self):
        message = self.assertError(self.failure("no_step"), "no_optimizer_step", 0)
        self.assertIn("without a training step (no optimizer step, no backward())", message)

    def test_missing_module(self):
        msg = self.assertError(self.failure("missing_module"), "missing_module", steps=0)
        self.assertIn("'repro_definitely_not_installed'", msg)

    def test_network_name_resolution(self):
        msg = self.assertError(self.failure("resolve"), "network_blocked", steps=1)
        self.assertIn("(host repro-probe-test.invalid)", msg)
        self.assertIn("gaierror", msg)

    def test_network_through_urllib(self):
        msg = self.assertError(self.failure("urlopen"), "network_blocked")  # URLError(reason=gaierror)
        self.assertIn("(host repro-probe-test.invalid)", msg)

    def test_network_connection_refused(self):
        msg = self.assertError(self.failure("refused"), "network_blocked")
        self.assertIn("(host 127.0.0.1)", msg)
        self.assertIn("ConnectionRefusedError", msg)

    def test_system_exit_zero_is_a_normal_end(self):
        r = self.failure("exit0")
        self.assertOk(r)
        self.assertEqual((r.run["steps"], r.script["end"], r.script["truncated"]), (1, "exit", False))

    def test_system_exit_nonzero(self):
        self.assertEqual(self.assertError(self.failure("exit2"), "script_error", steps=1), "SystemExit: 2")

    def test_os_exit_leaves_an_error_run(self):
        msg = self.assertError(self.failure("os_exit"), "script_error")
        self.assertIn("before the probe wrote its artifacts", msg)

    def test_stale_run_json_does_not_hide_a_crash(self):
        d = os.path.join(self.dir, "stale")
        os.makedirs(os.path.join(d, "out"))
        with open(os.path.join(d, "out", "run.json"), "w") as f:
            json.dump({"schema": "repro.run/1", "status": "ok", "error": None}, f)
        proc = run_script_probe(write_script_config(d, "failures.py", ["os_exit"]), os.path.join(d, "out"))
        self.assertEqual(proc.returncode, 3, proc.stderr[-3000:])
        self.assertEqual(helpers.load_json(os.path.join(d, "out", "run.json"))["error"]["type"], "script_error")

    def test_step_limit_caught_by_the_script(self):
        r = self.failure("swallow", script={"max_steps": 2})
        self.assertOk(r)
        self.assertEqual((r.run["steps"], r.script["end"], r.script["truncated"]), (2, "truncated", True))
        self.assertEqual([s["step"] for s in r.trace["steps"]], ["init", 0, 1])

    def test_invalid_script_config(self):
        r = self.probe("bad-max-steps", "plain.py", script={"max_steps": 0})
        self.assertIn("script.max_steps", self.assertError(r, "invalid_config"))
        self.assertIsNone(r.run["knobs_requested"])


if __name__ == "__main__":
    unittest.main()
