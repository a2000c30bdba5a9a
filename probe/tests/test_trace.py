"""TraceRecorder pieces: the non-finite count (fast path through the sum, exact fallback) and the
names of tuple outputs."""

import unittest

import helpers  # noqa: F401
import torch

from repro_probe.trace import TraceRecorder, count_nonfinite

INF, NAN = float("inf"), float("nan")


class CountNonfiniteTest(unittest.TestCase):
    def test_counts(self):
        cases = [
            (torch.tensor([1.0, 2.0]), 0),
            (torch.tensor([INF, -INF, 1.0]), 2),  # the sum is NaN
            (torch.tensor([NAN, 1.0]), 1),
            (torch.tensor([3e38, 3e38]), 0),  # the sum overflows to Inf: exact count
            (torch.tensor([60000.0, 60000.0], dtype=torch.float16), 0),
            (torch.tensor([INF, NAN, 1.0], dtype=torch.bfloat16), 2),
            (torch.tensor(INF, dtype=torch.float64), 1),
            (torch.tensor([1, 2]), 0),
            (torch.zeros(0), 0),
        ]
        for t, want in cases:
            self.assertEqual(count_nonfinite(torch, t), want, t)


class OutputNamesTest(unittest.TestCase):
    def test_nested_tuples_named_by_position(self):
        rec = TraceRecorder(torch, True, set())
        lstm = torch.nn.LSTM(2, 3, batch_first=True)
        rec.attach([("lstm", lstm)])
        rec.begin(0, 0)
        lstm(torch.zeros(1, 4, 2))
        rec.end()
        entries = rec.steps[0]["entries"]
        self.assertEqual([e["name"] for e in entries], ["fwd/lstm.0", "fwd/lstm.1.0", "fwd/lstm.1.1"])
        self.assertEqual([e["shape"] for e in entries], [[1, 4, 3], [1, 1, 3], [1, 1, 3]])


if __name__ == "__main__":
    unittest.main()
