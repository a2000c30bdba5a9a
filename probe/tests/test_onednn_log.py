"""onednn_log: the oneDNN primitives a replay ran, parsed from both verbose formats, recorded around a
real convolution (and none with oneDNN off), the process's stdout restored after."""

import os
import subprocess
import sys
import unittest

import helpers  # noqa: F401  (puts the probe on sys.path)

from repro_probe.onednn_log import MAX_PRIMITIVES, parse

V2 = """onednn_verbose,info,oneDNN v2.6.3 (commit N/A)
onednn_verbose,exec,cpu,reorder,jit:uni,undef,src_f32::blocked:abcd:f0 dst_f32:p:blocked:Acdb16a:f0,,,4x3x3x3,0.003
onednn_verbose,exec,cpu,convolution,jit:avx512_core,forward_training,src_f32::blocked:abcd:f0,,alg:x,mb2,0.01
onednn_verbose,exec,cpu,reorder,jit:uni,undef,src_f32:p:blocked:aBcd16b:f0,,,2x4x6x6,0
"""
V3 = """onednn_verbose,v1,info,oneDNN v3.7.2 (commit N/A)
onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,prop_kind
onednn_verbose,v1,primitive,exec,cpu,rnn,brgemm:avx512_core,forward_inference,src_layer:f32,,alg:vanilla_lstm,l2,0.1
some other line a program printed
dnnl_verbose,exec,cpu,eltwise,jit:avx2,forward_training,data_f32,,alg:eltwise_gelu,2x3,0.001
"""

SCRIPT = r"""
import sys, torch
from repro_probe.onednn_log import recording
torch.backends.mkldnn.enabled = sys.argv[1] == "on"
conv = torch.nn.Conv2d(3, 4, 3)
x = torch.randn(2, 3, 8, 8, requires_grad=True)
with recording(torch) as rec:
    conv(x).sum().backward()
print("after", rec.primitives)
"""


class ParseTest(unittest.TestCase):
    def test_both_formats(self):
        self.assertEqual(parse(V2), ["reorder:jit:uni:undef", "convolution:jit:avx512_core:forward_training"])
        self.assertEqual(parse(V3), ["rnn:brgemm:avx512_core:forward_inference",
                                     "eltwise:jit:avx2:forward_training"])

    def test_capped_and_hostile(self):
        many = "".join("onednn_verbose,exec,cpu,p%d,impl,fwd,x\n" % i for i in range(500))
        self.assertEqual(len(parse(many)), MAX_PRIMITIVES)
        self.assertEqual(parse("onednn_verbose,exec,cpu\n,,,\n\x00\n"), [])
        long = parse("onednn_verbose,exec,cpu,%s,impl,fwd,x\n" % ("c" * 10000))
        self.assertLessEqual(len(long[0]), 200)


class RecordingTest(unittest.TestCase):
    def run_script(self, mode):
        env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), ".."))
        r = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=300, universal_newlines=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_a_convolution_is_recorded_and_stdout_comes_back(self):
        out = self.run_script("on")
        self.assertNotIn("onednn_verbose", out)  # the log went to the recording, not to stdout
        self.assertRegex(out, r"^after \[.*'convolution:[^']+:forward_training'")

    def test_nothing_with_onednn_off(self):
        self.assertEqual(self.run_script("off").strip(), "after []")


if __name__ == "__main__":
    unittest.main()
