"""trace.capture's backward forms and `replay` kind backward, as subprocesses (real torch):
{"step": s, "backward": "order"} records every leaf's full backward hook firing in execution order
(head first, the stem conv last), the same in two runs, and leaves the trace of steps <= s bitwise
as an un-hooked run writes it; {"step": s, "module": path, "backward": true} adds the call's
grad_output, and replaying that call's backward in a fresh process gives the trace's own grad/<param>
digests and the hook's grad_input; hostile backward configs are refused in one line. The hook
objects themselves (nested outputs, a module called twice, in-place outputs) are tested in-process."""

import copy
import os
import unittest

import torch

import helpers  # noqa: F401 (puts the probe on sys.path)
from test_capture_replay import Runs

from repro_probe.capture import Capture, OrderCapture, hook_failure, write_exact
from repro_probe.errors import ProbeError
from repro_probe.safetensors import read_safetensors, tensor_sha256

RUNS = None


def setUpModule():
    global RUNS
    RUNS = Runs()


def tearDownModule():
    RUNS.close()


def step_entries(trace, step, prefix=""):
    return [(e["name"], e["dtype"], e["shape"], e["sha256"]) for s in trace["steps"] if s["step"] == step
            for e in s["entries"] if e["name"].startswith(prefix)]


def leaves(run_json):
    return run_json["model"]["modules"]


class CaptureConfigTest(unittest.TestCase):
    def validate(self, capture):
        from repro_probe.config import DEFAULTS, validate
        cfg = copy.deepcopy(DEFAULTS)
        cfg["trace"]["capture"] = capture
        return validate(cfg, "fingerprint")

    def test_forms(self):
        for good in ({"step": 0, "backward": "order"}, {"step": 3, "module": "a.b", "backward": True},
                     {"step": 0, "module": "a", "backward": False}, {"step": 0, "module": "a"}):
            self.assertEqual(self.validate(good)["trace"]["capture"], good)
        for bad in ({"step": 0, "backward": "order", "module": "a"}, {"step": 0, "backward": True},
                    {"step": 0, "module": "a", "backward": "yes"}, {"step": 0, "module": "a", "backward": None},
                    {"step": 0, "module": "a", "backward": 1}, {"step": -1, "backward": "order"},
                    {"backward": "order"}, {"step": 0, "backward": "order", "x": 1}):
            with self.subTest(capture=bad):
                with self.assertRaises(ProbeError) as ctx:
                    self.validate(bad)
                self.assertEqual(ctx.exception.type, "invalid_config")
                self.assertNotIn("\n", ctx.exception.message)


class OrderCaptureTest(unittest.TestCase):
    def test_cnn_execution_order_and_stable(self):
        r, got, out, _ = RUNS.train("cnn", {"step": 0, "backward": "order"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(got["run"]["capture"], {"step": 0, "backward": "order", "captured": True})
        self.assertEqual(got["run"]["steps"], 1)
        meta = got["capture"]
        self.assertEqual(sorted(meta), ["backward", "backward_order", "entries", "loss_scale", "schema", "step"])
        self.assertEqual((meta["schema"], meta["step"], meta["backward"], meta["entries"], meta["loss_scale"]),
                         ("repro.capture/1", 0, "order", [], None))
        self.assertFalse(os.path.exists(os.path.join(out, "capture.safetensors")))
        # the loss fires first, as "(loss)": its incoming gradient is 1, its outgoing one the head's
        loss, calls = meta["backward_order"][0], meta["backward_order"][1:]
        self.assertEqual((loss["module"], loss["type"]), ("(loss)", "CrossEntropyLoss"))
        self.assertEqual(loss["grad_input"][0], calls[0]["grad_output"][0])
        order = [c["module"] for c in calls]
        # every leaf fires once, the head first (nearest the loss), the stem conv last; the residual
        # block's second conv before its first, and the block before the stem
        self.assertEqual(sorted(order), sorted(leaves(got["run"])))
        self.assertEqual((order[0], order[-1]), ("head", "stem.conv"))
        for before, after in (("head", "flatten"), ("flatten", "pool"), ("block.conv2", "block.conv1"),
                              ("block.conv1", "stem.pool"), ("stem.bn", "stem.conv")):
            self.assertLess(order.index(before), order.index(after), (before, after))
        types = got["run"]["model"]["module_types"]
        for c in calls:
            self.assertEqual(sorted(c), ["grad_input", "grad_output", "module", "type"])
            self.assertEqual(c["type"], types[c["module"]])
            self.assertEqual(len(c["grad_output"]), 1)
            self.assertTrue(all(h is None or len(h) == 64 for h in c["grad_output"] + c["grad_input"]))
        stem = calls[-1]
        self.assertEqual(stem["grad_input"], [None])  # the images need no gradient
        self.assertIsNotNone(stem["grad_output"][0])
        # the gradient flowing between consecutive modules: flatten's grad_input is head's, and so on
        by = dict((c["module"], c) for c in calls)
        self.assertEqual(by["head"]["grad_input"], by["flatten"]["grad_output"])
        self.assertEqual(by["stem.bn"]["grad_input"], by["stem.conv"]["grad_output"])
        # a second, independent run (one epoch: another process, the same step 0) gives the same list
        r2, got2, _, _ = RUNS.train("cnn", {"step": 0, "backward": "order"}, epochs=1)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertEqual(got2["capture"]["backward_order"], [loss] + calls)
        self.assertEqual(loss["grad_input"][1], None)  # the class indices: no gradient

    def test_observer_order_capture(self):
        """The hooks only read: every trace entry of steps <= s (forward outputs, loss, gradients,
        optimizer state, parameters) is the un-hooked run's, bit for bit."""
        for workload, step in (("cnn", 0), ("mlp", 0), ("mlp", 1)):
            with self.subTest(workload=workload, step=step):
                r0, plain, _, _ = RUNS.train(workload)
                self.assertEqual(r0.returncode, 0, r0.stderr)
                r, got, _, _ = RUNS.train(workload, {"step": step, "backward": "order"})
                self.assertEqual(r.returncode, 0, r.stderr)
                grads = step_entries(got["trace"], step, "grad/")
                self.assertEqual(len(grads), len(step_entries(plain["trace"], step, "param/")))
                self.assertEqual(grads, step_entries(plain["trace"], step, "grad/"))
                self.assertEqual(got["trace"]["steps"], plain["trace"]["steps"][:step + 2])
                # every leaf fired (the embeddings too: integer inputs, but their output has a gradient)
                modules = [c["module"] for c in got["capture"]["backward_order"] if c["module"] != "(loss)"]
                self.assertEqual(sorted(modules), sorted(leaves(got["run"])))


class BackwardCaptureTest(unittest.TestCase):
    def test_capture_keeps_the_trace(self):
        r0, plain, _, _ = RUNS.train("cnn")
        for module in ("stem.conv", "block.conv1"):
            with self.subTest(module=module):
                r, got, out, _ = RUNS.train("cnn", {"step": 0, "module": module, "backward": True})
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(got["run"]["capture"], {"step": 0, "module": module, "backward": True,
                                                         "captured": True})
                self.assertEqual(got["trace"]["steps"], plain["trace"]["steps"][:2])
                meta = got["capture"]
                self.assertEqual((meta["backward"], meta["grad_output"], meta["loss_scale"]), (True, ["T"], None))
                names = [e["name"] for e in meta["entries"]]
                self.assertEqual((names[0], names[-2:]), ("arg/0", ["rng/cpu", "gout/0"]))
                stored, _ = read_safetensors(os.path.join(out, "capture.safetensors"))
                self.assertEqual(sorted(stored), sorted(names))
                gout = stored["gout/0"]
                self.assertEqual(meta["grad_output_strides"], {"gout/0": list(gout.stride())})
                self.assertEqual([e["sha256"] for e in meta["entries"] if e["name"] == "gout/0"], [tensor_sha256(gout)])
                # the order capture saw the same gradients at that module
                order = RUNS.train("cnn", {"step": 0, "backward": "order"})[1]["capture"]["backward_order"]
                call = [c for c in order if c["module"] == module][0]
                self.assertEqual(call["grad_output"], [tensor_sha256(gout)])
                self.assertEqual(call["grad_input"], meta["grad_input"])
        self.assertEqual(RUNS.train("cnn", {"step": 0, "module": "stem.conv", "backward": True})[1]["capture"]
                         ["grad_input"], [None])


class BackwardReplayTest(unittest.TestCase):
    def check(self, workload, module, step):
        r, got, out, cfg = RUNS.train(workload, {"step": step, "module": module, "backward": True})
        self.assertEqual(r.returncode, 0, r.stderr)
        meta = got["capture"]
        res, run, rr, rout = RUNS.replay(workload, cfg, out, kind="backward")
        self.assertEqual(rr.returncode, 0, rr.stderr)
        self.assertIsNone(run)
        self.assertEqual((res["status"], res["error"], res["kind"], res["module"], res["toggle"], res["step"]),
                         ("ok", None, "backward", module, None, step))
        # the trace of the same run: its recorded gradients of the module's parameters, in order
        want = step_entries(got["trace"], step, "grad/%s." % module)
        grads = [(e["name"], e["dtype"], e["shape"], e["sha256"]) for e in res["entries"]
                 if e["name"].startswith("grad/")]
        self.assertEqual(grads, want)
        gins = [e for e in res["entries"] if e["name"].startswith("gin/")]
        self.assertEqual(len(grads) + len(gins), len(res["entries"]))
        self.assertEqual([e["name"] for e in gins],
                         ["gin/%s/%d" % (module, i) for i, h in enumerate(meta["grad_input"]) if h is not None])
        for e in gins:
            self.assertEqual(e["sha256"], meta["grad_input"][int(e["name"].rsplit("/", 1)[1])], e["name"])
        stored, _ = read_safetensors(os.path.join(rout, "replay.safetensors"))
        self.assertEqual(sorted(stored), sorted(e["name"] for e in res["entries"]))
        return res, meta

    def test_cnn_stem_and_middle_conv(self):
        res, meta = self.check("cnn", "stem.conv", 0)
        self.assertEqual([e["name"] for e in res["entries"]], ["grad/stem.conv.weight"])
        self.assertEqual(meta["grad_input"], [None])
        res, _ = self.check("cnn", "block.conv1", 0)
        self.assertEqual([e["name"] for e in res["entries"]], ["grad/block.conv1.weight", "gin/block.conv1/0"])

    def test_other_modules(self):
        # a later step, a BatchNorm, a Linear behind embeddings, the LSTM (its unused (h_n, c_n): grad_output
        # ["T", null]), and a module without parameters of three strided arguments (gin only)
        for workload, module, step in (("cnn", "head", 1), ("cnn", "block.bn2", 0), ("mlp", "mlp.0", 1),
                                       ("lstm", "lstm", 0), ("attention", "attn.core", 0)):
            with self.subTest(workload=workload, module=module, step=step):
                res, meta = self.check(workload, module, step)
                self.assertTrue(res["entries"])
                if workload == "lstm":
                    self.assertEqual(meta["grad_output"], ["T", None])
                if module == "attn.core":
                    self.assertEqual([e["name"] for e in res["entries"]],
                                     ["gin/attn.core/0", "gin/attn.core/1", "gin/attn.core/2"])

    def test_the_loss(self):
        # the loss is captured and replayed as the module "(loss)": its gradient with respect to the
        # model's output is the order capture's (the head's incoming gradient), bit for bit
        res, meta = self.check("cnn", "(loss)", 0)
        self.assertEqual(meta["type"], "CrossEntropyLoss")
        self.assertEqual([e["name"] for e in res["entries"]], ["gin/(loss)/0"])
        _, order, _, _ = RUNS.train("cnn", {"step": 0, "backward": "order"})
        self.assertEqual(res["entries"][0]["sha256"], order["capture"]["backward_order"][1]["grad_output"][0])

    def test_forward_replay_of_a_backward_capture(self):
        _, got, out, cfg = RUNS.train("cnn", {"step": 0, "module": "block.conv1", "backward": True})
        res, run, r, _ = RUNS.replay("cnn", cfg, out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(res["kind"], "forward")
        self.assertEqual([(e["name"], e["dtype"], e["shape"], e["sha256"]) for e in res["entries"]],
                         step_entries(got["trace"], 0, "fwd/block.conv1"))

    def test_toggle_mkldnn_off(self):
        _, _, out, cfg = RUNS.train("cnn", {"step": 0, "module": "stem.conv", "backward": True})
        res, run, r, _ = RUNS.replay("cnn", cfg, out, kind="backward", toggle={"mkldnn": False})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((res["status"], res["toggle"]), ("ok", {"mkldnn": False}))
        self.assertEqual([e["name"] for e in res["entries"]], ["grad/stem.conv.weight"])


class BackwardHostileTest(unittest.TestCase):
    CAPTURE = {"step": 0, "module": "block.conv1", "backward": True}

    def refused(self, error_type="invalid_replay", **kwargs):
        _, _, out, cfg = RUNS.train("cnn", self.CAPTURE)
        res, run, r, rout = RUNS.replay("cnn", cfg, out, **dict({"kind": "backward"}, **kwargs))
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(sorted(run), ["error", "schema", "status"])
        self.assertEqual(run["error"]["type"], error_type, run["error"]["message"])
        self.assertNotIn("\n", run["error"]["message"])
        self.assertNotIn("Traceback", r.stderr)
        self.assertEqual((res["status"], res["error"], res["entries"]), ("error", run["error"], []))
        self.assertFalse(os.path.exists(os.path.join(rout, "replay.safetensors")))
        return run["error"]["message"]

    def meta(self):
        return copy.deepcopy(RUNS.train("cnn", self.CAPTURE)[1]["capture"])

    def test_a_forward_capture(self):
        _, _, out, cfg = RUNS.train("cnn", {"step": 0, "module": "block.conv1"})
        res, run, r, _ = RUNS.replay("cnn", cfg, out, kind="backward")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(run["error"]["type"], "invalid_replay")
        self.assertIn("backward", run["error"]["message"])

    def test_bad_meta(self):
        for key, value in (("backward", "order"), ("grad_output", []), ("grad_output", [None]),
                           ("grad_output", ["T", "T"]), ("grad_output", "T"), ("grad_output", [["T"]]),
                           ("grad_output_strides", {"gout/0": [1, 1, 1, 1]}), ("grad_output_strides", {"gout/1": []}),
                           ("grad_input", ["x"]), ("grad_input", None), ("loss_scale", "big"),
                           ("grad_enabled", False)):
            with self.subTest(key=key, value=value):
                meta = self.meta()
                meta[key] = value
                self.refused(meta=meta)
        meta = self.meta()
        del meta["grad_output"]
        self.refused(meta=meta)

    def test_gout_missing_or_of_the_wrong_shape(self):
        meta = self.meta()
        meta["entries"] = [e for e in meta["entries"] if e["name"] != "gout/0"]
        self.assertIn("gout/0", self.refused(meta=meta))  # grad_output names a tensor the entries do not hold
        _, _, out, _ = RUNS.train("cnn", self.CAPTURE)
        stored, _ = read_safetensors(os.path.join(out, "capture.safetensors"))
        name = "gout/0"
        for bad in (torch.zeros(3), torch.zeros(stored[name].shape, dtype=torch.int64), stored[name].double()):
            with self.subTest(dtype=str(bad.dtype), shape=list(bad.shape)):
                tensors = dict(stored, **{name: bad})
                path = os.path.join(RUNS.dir, "bad-gout.safetensors")
                write_exact(path, list(tensors.items()))
                meta = self.meta()
                for e in meta["entries"]:
                    if e["name"] == name:
                        e.update(shape=list(bad.shape), dtype=str(bad.dtype).replace("torch.", ""),
                                 sha256=tensor_sha256(bad))
                meta["grad_output_strides"] = {}
                self.assertIn("gout/0", self.refused(meta=meta, capture_file=path))

    def test_bad_config(self):
        self.refused(module="block.conv2")
        self.refused(step=1)
        self.refused(toggle={"mkldnn": 0})
        self.refused("data_hash_mismatch", sha="0" * 64)


class HookUnitTest(unittest.TestCase):
    """The hook objects on small models, in-process."""

    def test_grad_output_belongs_to_the_first_call(self):
        torch.manual_seed(0)
        lin = torch.nn.Linear(4, 4)
        model = torch.nn.Sequential(lin)
        cap = Capture(torch, model, 0, "0", backward=True)
        x = torch.randn(3, 4)
        cap.arm()
        mid = lin(x)
        mid.retain_grad()
        y = lin(torch.tanh(mid))  # the second call: no hook
        cap.after_forward()
        (y ** 2).sum().backward()
        cap.after_backward()
        self.assertTrue(torch.equal(cap.record["tensors"][0][1], x))
        self.assertEqual(cap.grad["grad_output"], ["T"])
        self.assertTrue(torch.equal(cap.grad["tensors"][0][1], mid.grad))
        self.assertEqual(cap.grad["grad_input"], [None])
        self.assertEqual((len(lin._backward_hooks), len(lin._forward_hooks), len(lin._forward_pre_hooks)), (0, 0, 0))

    def test_nested_output_with_a_gradient_is_unsupported(self):
        lstm = torch.nn.LSTM(3, 5, batch_first=True)
        cap = Capture(torch, torch.nn.Sequential(lstm), 0, "0", backward=True)
        cap.arm()
        out, (h, c) = lstm(torch.randn(2, 4, 3))
        cap.after_forward()
        (out.sum() + h.sum()).backward()
        with self.assertRaises(ProbeError) as ctx:
            cap.after_backward()
        self.assertEqual(ctx.exception.type, "capture_unsupported")
        self.assertIn("1.0", ctx.exception.message)  # h_n: element 0 of output element 1

    def test_no_gradient_reached_the_module(self):
        lin = torch.nn.Linear(4, 4)
        cap = Capture(torch, torch.nn.Sequential(lin), 0, "0", backward=True)
        cap.arm()
        w = torch.ones(4, requires_grad=True)
        y = lin(torch.randn(2, 4)).detach() * w
        cap.after_forward()
        y.sum().backward()
        with self.assertRaises(ProbeError) as ctx:
            cap.after_backward()
        self.assertEqual(ctx.exception.type, "capture_unsupported")
        self.assertIn("did not fire", ctx.exception.message)

    def test_in_place_output_is_unsupported(self):
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(inplace=True))
        from repro_probe.trace import leaf_modules
        cap = OrderCapture(torch, leaf_modules(model), 0)
        cap.arm()
        with self.assertRaises(RuntimeError) as ctx:
            model(torch.randn(2, 4)).sum().backward()
        cap.disarm()
        failure = hook_failure(ctx.exception)
        self.assertEqual(failure.type, "capture_unsupported")
        self.assertNotIn("\n", failure.message)
        self.assertIsNone(hook_failure(RuntimeError("out of memory")))

    def test_order_capture_reads_only(self):
        """Gradients of an order-captured backward equal an un-hooked one's, bitwise (a second model
        with the same initial state)."""
        def make():
            torch.manual_seed(3)
            return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                       torch.nn.Linear(8, 3))
        from repro_probe.trace import leaf_modules
        x = torch.randn(5, 6, requires_grad=True)
        grads = []
        for hooked in (False, True):
            model = make()
            cap = OrderCapture(torch, leaf_modules(model), 0)
            if hooked:
                cap.arm()
            torch.manual_seed(9)
            x.grad = None
            model(x).pow(2).sum().backward()
            cap.after_backward()
            grads.append([tensor_sha256(p.grad) for p in model.parameters()] + [tensor_sha256(x.grad)])
            if hooked:
                self.assertEqual([c["module"] for c in cap.calls], ["3", "2", "1", "0"])
                self.assertEqual(cap.calls[-1]["grad_input"], [grads[-1][-1]])
        self.assertEqual(grads[0], grads[1])


if __name__ == "__main__":
    unittest.main()
