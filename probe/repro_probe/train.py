"""The training loop: seeded init and batch order, optional AMP/compile, per-step trace
(forward outputs, loss, gradients, parameters and buffers) and per-epoch validation."""

import contextlib
import math
import random
import time
import warnings

from .errors import ProbeError
from .model import build_model, leaf_modules

EVAL_CHUNK = 8192


def seed_everything(torch, seed):
    random.seed(seed)
    try:
        import numpy
        numpy.random.seed(seed % (1 << 32))
    except Exception:
        pass
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def autocast_factory(torch, amp, device):
    """A callable returning a fresh autocast context (nullcontext when amp is off)."""
    if amp == "off":
        return contextlib.nullcontext
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    if not hasattr(torch, "autocast"):
        raise ProbeError("unsupported_knob", "amp=%s needs torch.autocast (torch >= 1.10)" % amp)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ctx = torch.autocast(device_type=device.type, dtype=dtype)
        except (RuntimeError, ValueError) as e:
            raise ProbeError("unsupported_knob", "amp=%s on %s: %s" % (amp, device.type, e))
    if getattr(ctx, "_enabled", True) is False or any("not supported" in str(w.message) for w in caught):
        msg = "; ".join(str(w.message) for w in caught) or "autocast disabled itself"
        raise ProbeError("unsupported_knob", "amp=%s on %s (torch %s): %s" % (amp, device.type, torch.__version__, msg))
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def batches_per_epoch(train_rows, batch_size):
    """Batches of each epoch; a trailing batch of one row is dropped (BatchNorm needs two)."""
    n = (train_rows + batch_size - 1) // batch_size
    return n - 1 if train_rows % batch_size == 1 else n


def default_store_steps(epochs, nb):
    return {0, 1} | {(e + 1) * nb - 1 for e in range(epochs)}


def _mean(values):
    return sum(values) / len(values) if values else None


def evaluate(torch, forward, model, data, device, autocast):
    start, rows = data["train_rows"], data["label"].shape[0]
    if rows == start:
        return None, None
    loss_sum, correct = 0.0, 0
    model.eval()
    with torch.no_grad():
        for b in range(start, rows, EVAL_CHUNK):
            e = min(rows, b + EVAL_CHUNK)
            y = data["label"][b:e]
            with autocast():
                out = forward(data["numeric"][b:e], data["categorical"][b:e])
            out = out.float()
            loss_sum += float(torch.nn.functional.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(dim=1) == y).sum())
    model.train()
    n = rows - start
    return loss_sum / n, correct / n


def run_training(torch, cfg, data, device, recorder, result):
    """Train; fills `result` (model, steps, epochs, final, nonfinite) as it goes."""
    m, t, knobs = cfg["model"], cfg["train"], cfg["knobs"]
    autocast = autocast_factory(torch, knobs["amp"], device)
    for key in ("numeric", "categorical", "label"):
        data[key] = data[key].to(device)
    seed_everything(torch, t["seed"])
    model = build_model(torch, data["numeric"].shape[1], data["cardinalities"], data["classes"],
                        m["hidden"], m["embedding_dim"], m["dropout"]).to(device)
    leaves = leaf_modules(model)
    result["model"] = {"parameters": sum(p.numel() for p in model.parameters()),
                       "modules": [n for n, _ in leaves],
                       "module_types": dict((n, type(m).__name__) for n, m in leaves)}
    recorder.attach(leaves)
    forward = model
    if knobs["compile"]:
        if not hasattr(torch, "compile"):
            raise ProbeError("unsupported_knob", "compile=true needs torch >= 2.0 (have %s)" % torch.__version__)
        forward = torch.compile(model)
    if t["optimizer"] == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=t["lr"])
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=t["lr"], momentum=0.9)
    scaler = None
    if knobs["amp"] == "fp16" and device.type == "cuda":
        amp_mod = getattr(torch, "amp", None)
        if amp_mod is not None and hasattr(amp_mod, "GradScaler"):  # torch >= 2.3
            scaler = amp_mod.GradScaler("cuda")
        else:
            scaler = torch.cuda.amp.GradScaler()
    criterion = torch.nn.CrossEntropyLoss()
    nb = batches_per_epoch(data["train_rows"], t["batch_size"])
    if recorder.store_steps is None:
        recorder.store_steps = default_store_steps(t["epochs"], nb)
    recorder.begin("init", None)
    recorder.record_state(model)
    recorder.end()

    gen = torch.Generator().manual_seed(t["seed"])
    step = 0
    model.train()
    for epoch in range(t["epochs"]):
        t0 = time.time()
        perm = torch.randperm(data["train_rows"], generator=gen)
        losses = []
        for b in range(nb):
            idx = perm[b * t["batch_size"]:(b + 1) * t["batch_size"]].to(device)
            y = data["label"][idx]
            recorder.begin(step, epoch)
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                out = forward(data["numeric"][idx], data["categorical"][idx])
                loss = criterion(out, y)
            recorder.record("loss", loss.detach().double())
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            for name, p in model.named_parameters():
                if p.grad is not None:
                    recorder.record("grad/" + name, p.grad)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            recorder.record_state(model)
            recorder.end()
            value = float(loss.detach().double())
            if not math.isfinite(value):
                result["nonfinite"]["loss"] += 1
            losses.append(value)
            step += 1
            result["steps"] = step
        val_loss, val_acc = evaluate(torch, forward, model, data, device, autocast)
        result["epochs"].append({"epoch": epoch, "train_loss": _mean(losses), "val_loss": val_loss,
                                 "val_accuracy": val_acc, "seconds": time.time() - t0,
                                 "last_step": step - 1})
    last = result["epochs"][-1]
    result["final"] = {"val_accuracy": last["val_accuracy"], "val_loss": last["val_loss"],
                       "train_loss": last["train_loss"]}
    result["nonfinite"]["entries"] = recorder.nonfinite_entries
