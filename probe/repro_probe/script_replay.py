"""Op replay for script mode (issue 27 on the user's own training script), run by scriptrun.py.

trace.capture = {"step": s, "module": name}: at the first traced call of the module the trace names
fwd/<name> in step s, capture.Capture copies its positional arguments, state_dict, mode, grad mode and
CPU RNG state (as in train mode) into capture.safetensors / capture.json in the out dir; the script
stops after step s (the trace of steps <= s is the one a plain run records) and run.json `capture` is
{"step", "module", "captured"}.

trace.replay = {"step": s, "module": name, "capture": {"file", "sha256", "meta"}, "toggle": null |
{"mkldnn": false}}: the model is the user's class, so the script itself runs up to that module's first
traced call in step s (with the trace off); there the module gets the captured state (strict, dtypes
and shapes checked), mode, grad mode and CPU RNG state and is called once on the captured arguments
with every tracer hook off, in place of the real call, under the script's own autocast state. Its
outputs go to replay.json (repro.replay-result/1, kind forward, "script": true) and replay.safetensors
as the `replay` command's kind forward writes them (replay.py: the same checks and the same call), and
the script stops. Errors are the run's error (run.json) and replay.json's."""

import os
import sys
import time

from .errors import ProbeError
from .tracer import Watch


class _NoAutocast(object):
    """call_captured's autocast: the script's own autocast state is in effect at the call."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _no_autocast():
    return _NoAutocast()


def call_kwargs(module):
    """The keyword arguments of the running call of `module` (read from nn.Module._call_impl's frame:
    forward pre-hooks get the positional ones only); None if that frame is not found."""
    frame = sys._getframe(1)
    for _ in range(16):
        if frame is None:
            return None
        code = frame.f_code.co_name
        if code in ("_call_impl", "inner", "_wrapped_call_impl"):
            local = frame.f_locals
            if local.get("self") is module and isinstance(local.get("kwargs"), dict):
                return local["kwargs"]
        frame = frame.f_back
    return None


def _check_positional(module, name, what):
    kwargs = call_kwargs(module)
    if kwargs:
        raise ProbeError("capture_unsupported", "%s: module %r is called with keyword arguments (%s): only "
                         "positional arguments are captured" % (what, name[:80], ", ".join(sorted(kwargs))[:200]))


def _device(torch, module, args):
    """Where the call runs: its first tensor argument's device, else the module's, else the CPU."""
    for a in args:
        for t in (a if isinstance(a, (tuple, list)) else (a,)):
            if isinstance(t, torch.Tensor):
                return t.device
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


class ScriptCapture(object):
    what = "trace.capture"
    files = ("capture.json", "capture.safetensors")  # what the run writes in its out dir
    ends_early = False  # the script stops after step s: at least one step is done

    def __init__(self, spec, max_steps):
        self.step, self.name = spec["step"], spec["module"]
        self.limit = min(max_steps, self.step + 1)  # the script stops after step s
        self.torch = self.capture = None

    def prepare(self, torch, cfg_dir, result):
        self.torch = torch
        result["capture"] = {"step": self.step, "module": self.name, "captured": False}

    def watch(self):
        return Watch(self.step, self.name, self._at_call, self.what)

    def _at_call(self, module, args):
        from .capture import Capture
        _check_positional(module, self.name, self.what)
        capture = Capture(self.torch, None, self.step, self.name, module=module)
        capture._hook(module, args)  # copies only: the real call goes on unchanged
        self.capture = capture
        return False

    def finish(self, tracer, out_dir, result):
        """After the script: the files (nothing if the module never ran in the step, as in train mode)."""
        if self.capture is not None:
            result["capture"]["captured"] = self.capture.write(out_dir) is not None

    def write_outputs(self, out_dir, torch, error, t_start):
        return error


class ScriptReplay(object):
    what = "trace.replay"
    files = ("replay.json", "replay.safetensors")
    ends_early = True  # at step s's call: possibly before any step is done

    def __init__(self, spec, max_steps):
        self.spec = spec
        self.step, self.name = spec["step"], spec["module"]
        self.limit = min(max_steps, self.step + 1)
        self.torch = self.cfg = self.tensors = self.result = None
        self.outputs = None
        self.onednn = None  # the oneDNN primitives the replayed call ran (onednn_log)

    def prepare(self, torch, cfg_dir, result):
        """Validate the capture exactly as `replay` kind forward does (replay.check_capture_section,
        read_capture): invalid_replay / data_hash_mismatch before the script runs."""
        from .replay import _check_toggle, check_capture_section, read_capture
        self.torch, self.result = torch, result
        result["script"]["replay"] = {"step": self.step, "module": self.name, "replayed": False}
        cfg = check_capture_section(self.spec["capture"], self.step, self.name)
        cfg.update(kind="forward", step=self.step, module=self.name, toggle=_check_toggle(self.spec.get("toggle")))
        self.cfg = cfg
        self.tensors = read_capture(cfg, cfg_dir)

    def watch(self):
        return Watch(self.step, self.name, self._at_call, self.what)

    def _at_call(self, module, args):
        from .replay import call_captured, load_captured
        torch, cfg = self.torch, self.cfg
        device = _device(torch, module, args)
        captured_args = load_captured(torch, module, cfg, self.tensors, device)
        mkldnn = torch.backends.mkldnn.enabled
        if cfg["toggle"] is not None and "mkldnn" in cfg["toggle"]:
            torch.backends.mkldnn.enabled = cfg["toggle"]["mkldnn"]
        from .onednn_log import recording
        try:
            with recording(torch) as rec:
                self.outputs = call_captured(torch, module, cfg, self.tensors, captured_args, _no_autocast)
            self.onednn = rec.primitives
        finally:
            torch.backends.mkldnn.enabled = mkldnn
        self.result["script"]["replay"]["replayed"] = True
        return True  # the real call does not run: the script stops here

    def finish(self, tracer, out_dir, result):
        if self.outputs is None:
            raise ProbeError("invalid_replay", "module %r was not called in a traced (training) forward of step %d: "
                             "the script ran %d step(s) and ended %s (is the name as the trace's fwd/<name>?)"
                             % (self.name[:80], self.step, tracer.steps_done,
                                "at the step limit" if tracer.stopped else "by itself"))

    def write_outputs(self, out_dir, torch, error, t_start):
        """replay.safetensors (outputs widened as the trace stores them) and replay.json; returns the
        error (a failure to write replay.safetensors is one)."""
        from .jsonio import one_line, write_json
        from .replay import _result
        from .safetensors import dtype_name, storable, tensor_sha256, write_safetensors
        from .trace import count_nonfinite
        entries = []
        if error is None:
            try:
                stored = {}
                for name, t in self.outputs:
                    entries.append({"name": name, "dtype": dtype_name(t.dtype), "shape": list(t.shape),
                                    "sha256": tensor_sha256(t), "nonfinite": count_nonfinite(torch, t)})
                    stored[name] = storable(t)
                write_safetensors(os.path.join(out_dir, "replay.safetensors"), stored)
            except Exception as e:
                import traceback
                traceback.print_exc()
                error = {"type": "exception", "message": one_line("replay.safetensors: %s: %s" % (type(e).__name__, e))}
        if error is not None:
            entries = []
            stale = os.path.join(out_dir, "replay.safetensors")
            if os.path.exists(stale):
                os.remove(stale)
        cfg = self.cfg or {"kind": "forward", "step": self.step, "module": self.name, "toggle": None}
        extra = {"onednn": self.onednn} if self.onednn is not None else None
        out = _result(torch, cfg, error, entries, time.time() - t_start, extra)
        out["script"] = True
        write_json(os.path.join(out_dir, "replay.json"), out)
        return error


def from_config(cfg):
    """ScriptCapture, ScriptReplay or None for a script-mode config (config.py checked the shape)."""
    trace, max_steps = cfg["trace"], cfg["script"]["max_steps"]
    if trace.get("replay") is not None:
        return ScriptReplay(trace["replay"], max_steps)
    if trace.get("capture") is not None:
        return ScriptCapture(trace["capture"], max_steps)
    return None
