"""The mlp workload's trace is bit-for-bit the one recorded before the workloads refactor (same entry
names, same digests, same outcome) wherever a golden exists for this torch version and CPU capability."""

import os
import shutil
import tempfile
import unittest

import golden_mlp
import helpers


class MlpGoldenTest(unittest.TestCase):
    def test_trace_matches_golden(self):
        path = golden_mlp.golden_path()
        if not os.path.exists(path):
            self.skipTest("no golden mlp trace for %s (recorded: %s)"
                          % (golden_mlp.environment_key(), ", ".join(sorted(os.listdir(golden_mlp.GOLDEN_DIR)))))
        golden = helpers.load_json(path)
        directory = tempfile.mkdtemp(prefix="repro-golden-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        for name in sorted(golden_mlp.CASES):
            with self.subTest(case=name):
                summary, err = golden_mlp.run_case(directory, name)
                self.assertIsNotNone(summary, err)
                want = golden["cases"][name]
                self.assertEqual([s["names"] for s in summary["steps"]], [s["names"] for s in want["steps"]])
                for got, exp in zip(summary["steps"], want["steps"]):
                    self.assertEqual(got["digest"], exp["digest"], "step %s differs" % got["step"])
                final = summary["final"]
                self.assertEqual(dict((k, final[k]) for k in want["final"]), want["final"])
                self.assertIsNone(final["val_rmse"])  # a key the refactor added; mlp has no RMSE


if __name__ == "__main__":
    unittest.main()
