"""Study: why does the CPU LSTM of the `lstm` workload give other numbers under torch.no_grad()?

Runs INSIDE a target (any python with torch; the probe package is found next to this script, at
../../probe, or on PYTHONPATH). Rerun (docs/studies/lstm-no-grad.md):

    mkdir -p /tmp/lstm-study && node --input-type=module -e "
      import {generateWorkloadData} from './dist/src/core/workloads.js'
      import {encodeWorkloadData} from './dist/src/artifacts/inputs.js'
      import {writeFileSync} from 'node:fs'
      writeFileSync('/tmp/lstm-study/data.safetensors', encodeWorkloadData(generateWorkloadData('lstm')).bytes)"
    for img in trixie bookworm; do
      docker run --rm -v "$PWD":/repo:ro -v /tmp/lstm-study:/data:ro repro-fixture:$img \\
        python3 /repo/scripts/studies/lstm_no_grad.py --data /data/data.safetensors --threads 1
    done

What it does, with the probe's own code (config.merge_defaults/validate, data.load_data,
train.build_model, train.make_optimizer, capture.Capture, train.evaluate):

1. Builds the lstm workload's model as training does (default config: seed 1234, batch 64, adam,
   dropout 0.1; knobs device cpu, threads from --threads), trains it in the training order and,
   at each of --capture-steps (0, 13, 39), captures the `lstm` submodule's call in the training
   forward (its input, its CPU RNG state) with capture.Capture, plus the output that call gave (a
   forward hook).
2. Calls that same module on the captured input with the captured RNG state for each of
   {grad, no_grad} x {train, eval} x {torch.backends.mkldnn.enabled on, off}; for each: max |d| of
   the output (lstm's output 0, all time steps) against the training path (grad, train, mkldnn on),
   against its grad twin (same mode and mkldnn, grad on) and, in eval mode, against a float64 copy
   of the module; and whether output, h_n and c_n are all bitwise the training path's. For scale,
   one more row: the training path again from the RNG state it left (the next dropout mask).
3. The same with model.dropout = 0.0 (the dropout hypothesis tested directly).
4. The validation RMSE, the full pass as train.evaluate does it (model.eval(), chunks of
   EVAL_CHUNK, workload.val_sums/outcome), under no_grad and under grad, mkldnn on and off, at init
   and after some training steps (the steps of train.py's loop, no tracer).

--onednn-calls: only the three calls train+grad, eval+grad, eval+no_grad (mkldnn on), each after
a marker line on stdout; run it with ONEDNN_VERBOSE=1 (oneDNN 3.x) or DNNL_VERBOSE=1 (oneDNN 2.x,
torch 1.13) to see which primitives each call ran."""

import argparse
import copy
import ctypes
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.normpath(os.path.join(HERE, "..", "..", "probe"))
if os.path.isdir(os.path.join(PROBE, "repro_probe")) and PROBE not in sys.path:
    sys.path.insert(0, PROBE)

MODULE = "lstm"


def libc_flush():
    """oneDNN's verbose lines go through C stdio: flush it so they land between our markers."""
    try:
        ctypes.CDLL(None).fflush(None)
    except Exception:
        pass


def say(text=""):
    libc_flush()
    sys.stdout.write(text.rstrip() + "\n")
    sys.stdout.flush()


def make_cfg(data_path, dropout, threads):
    from repro_probe.config import merge_defaults, validate
    with open(data_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    raw = {"workload": "lstm", "data": {"file": os.path.basename(data_path), "sha256": sha},
           "model": {"dropout": dropout}, "knobs": {"device": "cpu", "threads": threads}}
    warnings = []
    cfg = validate(merge_defaults(raw, warnings), "train")
    for w in warnings:
        say("warning: " + w)
    return cfg, sha


class Study(object):
    """One model (one dropout value): built and driven as train.py's loop drives it."""

    def __init__(self, torch, cfg, data_dir):
        from repro_probe.data import load_data
        from repro_probe.train import build_model, make_optimizer
        from repro_probe.workloads import WORKLOADS
        self.torch, self.cfg = torch, cfg
        self.device = torch.device("cpu")
        self.workload = WORKLOADS["lstm"]
        self.data = load_data(cfg, data_dir)
        self.model, _ = build_model(torch, cfg, self.workload, self.data, self.device, {})
        self.optimizer = make_optimizer(torch, cfg["train"], self.model)
        self.criterion = self.workload.criterion(torch)
        t = cfg["train"]
        from repro_probe.train import batches_per_epoch
        self.nb = batches_per_epoch(self.data["train_rows"], t["batch_size"])
        self.gen = torch.Generator().manual_seed(t["seed"])
        self.perm = None
        self.step_no = 0
        self.model.train()

    def rows(self):
        t = self.cfg["train"]
        b = self.step_no % self.nb
        if b == 0:
            self.perm = self.torch.randperm(self.data["train_rows"], generator=self.gen)
        return self.perm[b * t["batch_size"]:(b + 1) * t["batch_size"]]

    def step(self, on_capture=None):
        """One optimizer step as Loop.step takes it. With on_capture, the lstm call of this step's
        forward is captured (capture.Capture: input, CPU RNG state, mode, grad mode; a forward hook:
        its output) and on_capture(record) runs after the forward, before backward and the update:
        on the parameters that forward saw."""
        from repro_probe.capture import Capture
        torch = self.torch
        inputs, y = self.workload.batch(self.data["tensors"], self.rows())
        cap, seen, hook = None, {}, None
        if on_capture is not None:
            cap = Capture(torch, self.model, self.step_no, MODULE)
            cap.arm()

            def keep(module, args, output):
                if "out" not in seen:
                    seen["out"] = (output[0].detach().clone(), output[1][0].detach().clone(),
                                   output[1][1].detach().clone())
                    seen["rng_after"] = torch.get_rng_state().clone()
            hook = cap.module.register_forward_hook(keep)
        self.optimizer.zero_grad(set_to_none=True)
        out = self.model(*inputs)
        loss = self.criterion(out, y)
        if on_capture is not None:
            cap.disarm()
            hook.remove()
            on_capture(dict(cap.record, training_out=seen["out"], training_rng_after=seen["rng_after"]))
        loss.backward()
        self.optimizer.step()
        self.step_no += 1


def call(torch, module, record, training, grad, mkldnn):
    """One call of the module on the captured input with the captured RNG state; ((out, h_n, c_n),
    the CPU RNG state after the call)."""
    tensors = dict(record["tensors"])
    x = tensors["arg/0"].clone()
    prev_mkldnn, prev_training, prev_rng = torch.backends.mkldnn.enabled, module.training, torch.get_rng_state()
    torch.backends.mkldnn.enabled = mkldnn
    module.train(training)
    try:
        torch.set_rng_state(tensors["rng/cpu"])
        with torch.set_grad_enabled(grad):
            out, (h, c) = module(x)
        return (out.detach().clone(), h.detach().clone(), c.detach().clone()), torch.get_rng_state().clone()
    finally:
        torch.backends.mkldnn.enabled = prev_mkldnn
        module.train(prev_training)
        torch.set_rng_state(prev_rng)


def maxdiff(torch, a, b):
    return float((a.double() - b.double()).abs().max())


def bitwise(torch, xs, ys):
    return all(torch.equal(x, y) for x, y in zip(xs, ys))


def fmt(v):
    return "0" if v == 0 else "%.3g" % v


COMBOS = [(g, tr, mk) for tr in (True, False) for g in (True, False) for mk in (True, False)]


def combo_name(grad, training, mkldnn):
    return "%-7s %-5s %-3s" % ("grad" if grad else "no_grad", "train" if training else "eval",
                               "on" if mkldnn else "off")


def step_columns(torch, module, record):
    """{combo: (vs training path, bitwise, vs grad twin, vs fp64)} for one captured call, and notes."""
    ref, ref_rng = call(torch, module, record, True, True, True)
    notes = []
    if not bitwise(torch, ref, record["training_out"]) or not torch.equal(ref_rng, record["training_rng_after"]):
        notes.append("the replayed training call is NOT bitwise the training forward's")
    x = dict(record["tensors"])["arg/0"]
    fp64 = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        exact = fp64(x.double())[0]
    results = dict((key, call(torch, module, record, key[1], key[0], key[2])) for key in COMBOS)
    rng_same = all(torch.equal(results[k][1], ref_rng) for k in COMBOS if k[1])
    notes.append("train-mode calls all draw the same CPU RNG as the training path: %s"
                 % ("yes" if rng_same else "NO"))
    # the scale of a different dropout mask: the training path again, the RNG not put back (the next draw)
    other = call(torch, module, dict(record, tensors=[(n, ref_rng if n == "rng/cpu" else t)
                                                      for n, t in record["tensors"]]), True, True, True)[0]
    cols = {"other mask": ("%s" % fmt(maxdiff(torch, other[0], ref[0])), "-", "-")}
    for key in COMBOS:
        grad, training, mkldnn = key
        got = results[key][0]
        twin = results[(True, training, mkldnn)][0]
        cols[key] = ("%s%s" % (fmt(maxdiff(torch, got[0], ref[0])), " =" if bitwise(torch, got, ref) else ""),
                     "-" if grad else fmt(maxdiff(torch, got[0], twin[0])),
                     "-" if training else fmt(maxdiff(torch, got[0], exact)))
    return cols, notes


def combos_table(torch, p, steps, per_step):
    """Rows: the combinations; per captured step: max |d| vs the training path (" =": output, h_n
    and c_n all bitwise the training path's), vs the grad twin, vs float64 (eval rows)."""
    say()
    say("== model.dropout = %g: the lstm call of step s, replayed on its captured input and RNG state ==" % p)
    say("   columns per step: max|d| of lstm's output vs the training path (grad, train, mkldnn on;")
    say("   ' =' means output, h_n, c_n bitwise equal) | vs its grad twin | vs float64 (eval rows)")
    head = "  %-19s" % "grad    mode  mkl"
    rule = "  " + "-" * 19
    for s in steps:
        head += " | %-30s" % ("step %d: train  twin  fp64" % s)
        rule += "-+-" + "-" * 30
    say(head)
    say(rule)
    for key in COMBOS + ["other mask"]:
        line = "  %-19s" % (combo_name(*key) if key != "other mask" else "grad    train on *")
        for s in steps:
            a, b, c = per_step[s][0][key]
            line += " | %-11s %-9s %-8s" % (a, b, c)
        say(line)
    say("   * the training path again with the RNG state it left (the next dropout mask), for scale")
    for s in steps:
        for n in per_step[s][1]:
            say("   step %d: %s" % (s, n))


def validation(torch, study, grad, mkldnn):
    """train.evaluate's pass (model.eval(), EVAL_CHUNK chunks, val_sums, outcome) with grad mode and
    mkldnn chosen; the model's mode, RNG state and mkldnn flag are put back."""
    workload, model, data = study.workload, study.model, study.data
    start, rows = data["train_rows"], data["rows"]
    prev_mkldnn, rng = torch.backends.mkldnn.enabled, torch.get_rng_state()
    torch.backends.mkldnn.enabled = mkldnn
    loss_sum, metric_sum = 0.0, 0
    model.eval()
    try:
        with torch.set_grad_enabled(grad):
            for b in range(start, rows, workload.EVAL_CHUNK):
                inputs, y = workload.batch(data["tensors"], slice(b, min(rows, b + workload.EVAL_CHUNK)))
                out = model(*inputs)
                loss, metric = workload.val_sums(torch, out.detach().float(), y)
                loss_sum += loss
                metric_sum += metric
    finally:
        model.train()
        torch.backends.mkldnn.enabled = prev_mkldnn
        torch.set_rng_state(rng)
    return workload.outcome(loss_sum, metric_sum, rows - start)["val_rmse"]


def validation_table(torch, study, checkpoints):
    from repro_probe.train import evaluate
    say("  %-6s | %-20s | %-20s | %-9s | %-20s | %-20s | %-9s | %s" % (
        "step", "no_grad mkl on", "grad mkl on", "|d|", "no_grad mkl off", "grad mkl off", "|d|",
        "train.evaluate = no_grad on"))
    for k in checkpoints:
        while study.step_no < k:
            study.step()
        v = dict(((g, m), validation(torch, study, g, m)) for g in (False, True) for m in (True, False))
        rng = torch.get_rng_state()
        probe = evaluate(torch, study.workload, study.model, study.model, study.data,
                         __import__("contextlib").nullcontext)["val_rmse"]
        torch.set_rng_state(rng)
        label = "init" if k == 0 else "%d" % k
        say("  %-6s | %-20.17g | %-20.17g | %-9s | %-20.17g | %-20.17g | %-9s | %s" % (
            label, v[(False, True)], v[(True, True)], fmt(abs(v[(False, True)] - v[(True, True)])),
            v[(False, False)], v[(True, False)], fmt(abs(v[(False, False)] - v[(True, False)])),
            "yes" if probe == v[(False, True)] else "NO (%r)" % probe))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the lstm workload's data.safetensors (the host's default)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (0: the build's default)")
    ap.add_argument("--dropouts", default="0.1,0.0", help="model.dropout values, comma-separated")
    ap.add_argument("--capture-steps", default="0,13,39",
                    help="steps whose lstm call is captured and replayed (13 = epoch 2's first, 39 = after 3 epochs)")
    ap.add_argument("--checkpoints", default="0,5,13,39",
                    help="steps after which the validation RMSE is taken (13 = one epoch of the default data)")
    ap.add_argument("--onednn-calls", action="store_true",
                    help="only the train+grad, eval+grad and eval+no_grad calls of step 0, between markers")
    args = ap.parse_args()

    import torch
    from repro_probe.knobs import apply_knobs
    data_dir = os.path.dirname(os.path.abspath(args.data))
    threads = args.threads if args.threads > 0 else None
    dropouts = [float(d) for d in args.dropouts.split(",")]

    cfg, sha = make_cfg(args.data, dropouts[0], threads)
    apply_knobs(torch, cfg["knobs"])
    say("torch %s, mkldnn available %s, threads %d, data sha256 %s"
        % (torch.__version__, torch.backends.mkldnn.is_available(), torch.get_num_threads(), sha))

    if args.onednn_calls:
        study = Study(torch, cfg, data_dir)

        def verbose_calls(record):
            for name, training, grad in (("train+grad", True, True), ("eval+grad", False, True),
                                         ("eval+no_grad", False, False)):
                say("=== call %s (mkldnn on) ===" % name)
                call(torch, study.model.lstm, record, training, grad, True)
            say("=== end ===")
        say("=== the training forward of step 0 (train, grad) ===")
        study.step(on_capture=verbose_calls)
        return 0

    steps = sorted(set(int(c) for c in args.capture_steps.split(",")))
    for p in dropouts:
        cfg, _ = make_cfg(args.data, p, threads)
        study = Study(torch, cfg, data_dir)
        per_step = {}
        while study.step_no <= steps[-1]:
            k = study.step_no
            if k in steps:
                study.step(on_capture=lambda record: per_step.__setitem__(
                    k, step_columns(torch, study.model.lstm, record)))
            else:
                study.step()
        combos_table(torch, p, steps, per_step)

    cfg, _ = make_cfg(args.data, dropouts[0], threads)
    checkpoints = sorted(set(int(c) for c in args.checkpoints.split(",")))
    say()
    say("== validation RMSE (model.dropout = %g): train.evaluate's pass (eval mode), after n steps ==" % dropouts[0])
    validation_table(torch, Study(torch, cfg, data_dir), checkpoints)
    return 0


if __name__ == "__main__":
    sys.exit(main())
