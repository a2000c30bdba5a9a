"""The mlp workload's trace is bit-for-bit the one recorded before the workloads refactor (same entry
names, same digests, same outcome) wherever a golden exists for this torch version and CPU capability;
its bf16 case per whether oneDNN takes bf16 matmuls on this CPU (golden_mlp.bf16_key)."""

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
                want = golden_mlp.expected(golden, name)
                summary, err = golden_mlp.run_case(directory, name)
                self.assertIsNotNone(summary, err)
                if want is None:
                    # no golden for this CPU (an AVX-512 CPU acting as an AVX2 host): the case's entry
                    # names are the golden's, and a second run gives the same bits
                    ref = next(g[name] for g in golden["cases_bf16"].values() if name in g)
                    self.assertEqual([s["names"] for s in summary["steps"]], [s["names"] for s in ref["steps"]])
                    again, err = golden_mlp.run_case(directory, name, suffix="-again")
                    self.assertEqual(again, summary, err)
                    continue
                self.assertEqual([s["names"] for s in summary["steps"]], [s["names"] for s in want["steps"]])
                for got, exp in zip(summary["steps"], want["steps"]):
                    self.assertEqual(got["digest"], exp["digest"], "step %s differs" % got["step"])
                final = summary["final"]
                self.assertEqual(dict((k, final[k]) for k in want["final"]), want["final"])
                self.assertIsNone(final["val_rmse"])  # a key the refactor added; mlp has no RMSE


if __name__ == "__main__":
    unittest.main()
