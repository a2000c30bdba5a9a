"""safetensors container: round trip of every dtype, float16/bfloat16 widening, empty and scalar
tensors, header padding and gap-free sorted layout, and rejection of malformed files."""

import hashlib
import json
import os
import struct
import tempfile
import unittest

import helpers  # noqa: F401  (puts the probe on sys.path)
import torch

from repro_probe.safetensors import (SafetensorsError, decode_safetensors, parse_header, read_safetensors,
                                     tensor_bytes, tensor_sha256, write_safetensors)


def _raw_file(header, data=b""):
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


class SafetensorsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "t.safetensors")

    def tearDown(self):
        self.dir.cleanup()

    def test_round_trip_all_dtypes(self):
        src = {
            "f64": torch.tensor([[1.5, -2.25], [3.0, 1e300]], dtype=torch.float64),
            "f32": torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7,
            "i64": torch.tensor([-(1 << 62), 0, 7], dtype=torch.int64),
            "i32": torch.tensor([[-5, 6]], dtype=torch.int32),
            "u8": torch.tensor([0, 255, 3], dtype=torch.uint8),
            "bool": torch.tensor([True, False, True]),
            "scalar": torch.tensor(0.1, dtype=torch.float64),
        }
        write_safetensors(self.path, src, {"source": "unit", "n": "7"})
        got, meta = read_safetensors(self.path)
        self.assertEqual(meta, {"source": "unit", "n": "7"})
        self.assertEqual(sorted(got), sorted(src))
        for k, v in src.items():
            self.assertEqual(got[k].dtype, v.dtype, k)
            self.assertEqual(list(got[k].shape), list(v.shape), k)
            self.assertTrue(torch.equal(got[k], v), k)

    def test_half_types_widened_to_f32(self):
        h = torch.tensor([1.0, 0.333, 65504.0, float("inf")], dtype=torch.float16)
        b = torch.tensor([[1.0, -0.1], [3e38, float("nan")]], dtype=torch.bfloat16)
        write_safetensors(self.path, {"h": h, "b": b})
        with open(self.path, "rb") as f:
            entries, _, _ = parse_header(f.read())
        self.assertEqual(entries["h"][0], "F32")
        self.assertEqual(entries["b"][0], "F32")
        got, _ = read_safetensors(self.path)
        self.assertEqual(got["h"].dtype, torch.float32)
        self.assertTrue(torch.equal(got["h"], h.float()))
        self.assertTrue(torch.equal(got["b"][0], b.float()[0]))
        self.assertTrue(torch.isnan(got["b"][1, 1]))

    def test_empty_tensors(self):
        src = {"e": torch.zeros(0, 3), "f": torch.zeros(4, 0, dtype=torch.int64), "x": torch.ones(2)}
        write_safetensors(self.path, src)
        got, _ = read_safetensors(self.path)
        self.assertEqual(list(got["e"].shape), [0, 3])
        self.assertEqual(list(got["f"].shape), [4, 0])
        self.assertEqual(got["f"].dtype, torch.int64)
        self.assertTrue(torch.equal(got["x"], torch.ones(2)))
        self.assertEqual(tensor_bytes(torch.zeros(0)), b"")

    def test_header_padding_and_layout(self):
        src = {"b": torch.ones(3), "a": torch.zeros(5, dtype=torch.float64), "c": torch.ones(1, dtype=torch.uint8)}
        for extra in range(9):  # vary the header length through every residue mod 8
            name = "k" * (extra + 1)
            write_safetensors(self.path, dict(src, **{name: torch.ones(2)}))
            with open(self.path, "rb") as f:
                buf = f.read()
            (n,) = struct.unpack("<Q", buf[:8])
            self.assertEqual(n % 8, 0)
            header = json.loads(buf[8:8 + n].decode())
            offset = 0
            for key in sorted(header):  # sorted key order, no gaps, ends at end of file
                b, e = header[key]["data_offsets"]
                self.assertEqual(b, offset, key)
                offset = e
            self.assertEqual(8 + n + offset, len(buf))
            self.assertTrue(buf[8:8 + n].decode().endswith(("}", " ")))

    def test_bytes_match_tensor_memory(self):
        t = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()  # non-contiguous
        self.assertEqual(tensor_bytes(t), struct.pack("<6f", 0, 3, 1, 4, 2, 5))

    def test_sha256_in_place_equals_sha256_of_bytes(self):
        for t in (torch.arange(6, dtype=torch.float32).reshape(2, 3).t(), torch.zeros(0), torch.tensor(2.5),
                  torch.arange(5, dtype=torch.int64), torch.ones(3, dtype=torch.bfloat16)):
            self.assertEqual(tensor_sha256(t), hashlib.sha256(tensor_bytes(t)).hexdigest())

    def test_rejects_malformed(self):
        bad = [
            b"\x01\x00",
            struct.pack("<Q", 1 << 40) + b"{}",
            _raw_file([1, 2]),
            _raw_file({"x": {"dtype": "F8", "shape": [1], "data_offsets": [0, 1]}}, b"\x00"),
            _raw_file({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\x00" * 8),
            _raw_file({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 4),
            _raw_file({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}),
            _raw_file({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "y": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\x00" * 12),
            _raw_file({"a\nb": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\x00"),
        ]
        for buf in bad:
            with self.assertRaises(SafetensorsError, msg=repr(buf[:60])):
                decode_safetensors(buf)


if __name__ == "__main__":
    unittest.main()
