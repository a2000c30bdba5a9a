"""The probe's Python tests for scripts/run-tests.mjs: `python3 scripts/unittest-timed.py
test_x.py` (run from probe/) discovers tests/test_x.py as `python3 -m unittest discover -s tests`
does, prints one line per finished test as it finishes (its failure under it), and at the end one
machine-readable line (`##repro-tests {...}`) with every test's duration and the counts."""

import json
import sys
import time
import traceback
import unittest


class TimedResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.tests = []
        self.counts = {"pass": 0, "fail": 0, "skipped": 0, "todo": 0, "cancelled": 0}
        self._started = {}

    def startTest(self, test):
        super().startTest(test)
        self._started[test.id()] = time.monotonic()

    def _finish(self, test, status, detail=""):
        ms = (time.monotonic() - self._started.pop(test.id(), time.monotonic())) * 1000
        self.counts[status] += 1
        self.tests.append({"name": test.id(), "ms": ms, "status": status})
        mark = {"pass": "\u2714", "fail": "\u2716", "skipped": "\ufe63"}[status]
        line = "%s %s (%.2f s)" % (mark, test.id(), ms / 1000)
        if status == "skipped":
            line += " # SKIP " + detail
        sys.stdout.write(line + "\n")
        if status == "fail" and detail:
            sys.stdout.write("".join("    " + x + "\n" for x in detail.rstrip().split("\n")))
        sys.stdout.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._finish(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._finish(test, "fail", "".join(traceback.format_exception(*err)))

    def addError(self, test, err):
        super().addError(test, err)
        self._finish(test, "fail", "".join(traceback.format_exception(*err)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._finish(test, "skipped", reason)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            sys.stdout.write("\u2716 %s\n%s" % (subtest.id(), "".join(
                "    " + x + "\n" for x in "".join(traceback.format_exception(*err)).rstrip().split("\n"))))
            sys.stdout.flush()

    def stopTest(self, test):
        # a test whose subtests failed reaches here without addFailure: count it failed once
        if test.id() in self._started:
            failed = any(t is test or getattr(t, "test_case", None) is test for t, _ in self.failures + self.errors)
            self._finish(test, "fail" if failed else "pass")
        super().stopTest(test)


def main(argv):
    pattern = argv[1] if len(argv) > 1 else "test*.py"
    suite = unittest.defaultTestLoader.discover("tests", pattern=pattern)
    result = TimedResult()
    suite.run(result)
    sys.stdout.write("##repro-tests %s\n" % json.dumps({"counts": result.counts, "tests": result.tests}))
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
