"""Apply the config's knobs (env before torch import; threads, determinism, cuDNN, TF32, matmul
precision after) and read back the values actually in effect (run.json knobs_effective, flags)."""

import os
import re
import sys

from .errors import ProbeError


def apply_env(env):
    """Must run before torch is imported."""
    for name, value in env.items():
        os.environ[name] = value


def resolve_device(torch, device):
    """torch.device for the knob; ProbeError('cuda_unavailable') when CUDA cannot be used."""
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ProbeError("cuda_unavailable", "device %s requested but torch.cuda.is_available() is False "
                         "(torch %s, built with CUDA %s)" % (device, torch.__version__, torch.version.cuda))
    m = re.match(r"^cuda:([0-9]+)$", device)
    index = int(m.group(1)) if m else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise ProbeError("cuda_unavailable", "device %s requested but only %d CUDA device(s) visible"
                         % (device, torch.cuda.device_count()))
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def _warn(msg):
    sys.stderr.write("repro_probe: warning: %s\n" % msg)


def apply_knobs(torch, knobs):
    """Set every torch-side knob explicitly (null = leave the framework default)."""
    if knobs["interop_threads"] is not None:
        try:  # must come before any inter-op parallel work
            torch.set_num_interop_threads(knobs["interop_threads"])
        except RuntimeError as e:
            _warn("set_num_interop_threads(%d) failed: %s" % (knobs["interop_threads"], e))
    if knobs["threads"] is not None:
        torch.set_num_threads(knobs["threads"])
    det = knobs["deterministic"]
    if det == "warn":  # deterministic where possible, a warning (collected in run.json) where not
        try:
            torch.use_deterministic_algorithms(True, warn_only=True)
        except (AttributeError, TypeError):
            raise ProbeError("unsupported_knob", "deterministic=warn needs torch >= 1.11 "
                             "(use_deterministic_algorithms(warn_only=True)); have %s" % torch.__version__)
    elif hasattr(torch, "use_deterministic_algorithms"):
        torch.use_deterministic_algorithms(det)
    elif det:
        raise ProbeError("unsupported_knob", "torch %s has no use_deterministic_algorithms" % torch.__version__)
    torch.backends.cudnn.deterministic = bool(det)
    torch.backends.cudnn.benchmark = knobs["cudnn_benchmark"]
    prec = knobs["float32_matmul_precision"]
    if prec is not None:
        if hasattr(torch, "set_float32_matmul_precision"):
            torch.set_float32_matmul_precision(prec)
        else:
            _warn("float32_matmul_precision=%s ignored: torch %s has no set_float32_matmul_precision"
                  % (prec, torch.__version__))
    if knobs["tf32_matmul"] is not None:  # after the precision: an explicit flag wins
        torch.backends.cuda.matmul.allow_tf32 = knobs["tf32_matmul"]
    if knobs["tf32_cudnn"] is not None:
        torch.backends.cudnn.allow_tf32 = knobs["tf32_cudnn"]


def _safe(fn, default=None):
    try:
        return fn()
    except Exception:
        return default


def read_flags(torch):
    """fingerprint.json `flags`."""
    def det():
        if hasattr(torch, "are_deterministic_algorithms_enabled"):
            return bool(torch.are_deterministic_algorithms_enabled())
        return bool(torch._C._get_deterministic_algorithms())

    def warn_only():
        if hasattr(torch, "is_deterministic_algorithms_warn_only_enabled"):
            return bool(torch.is_deterministic_algorithms_warn_only_enabled())
        return False

    def prec():
        if hasattr(torch, "get_float32_matmul_precision"):
            return torch.get_float32_matmul_precision()
        return None
    return {
        "cudnn_enabled": _safe(lambda: bool(torch.backends.cudnn.enabled)),
        "cudnn_benchmark": _safe(lambda: bool(torch.backends.cudnn.benchmark)),
        "cudnn_deterministic": _safe(lambda: bool(torch.backends.cudnn.deterministic)),
        "cudnn_allow_tf32": _safe(lambda: bool(torch.backends.cudnn.allow_tf32)),
        "matmul_allow_tf32": _safe(lambda: bool(torch.backends.cuda.matmul.allow_tf32)),
        "float32_matmul_precision": _safe(prec),
        "deterministic_algorithms": _safe(det),
        "deterministic_warn_only": _safe(warn_only),
        "mkldnn_enabled": _safe(lambda: bool(torch.backends.mkldnn.enabled)),
    }


def effective_knobs(torch, knobs, device=None):
    """run.json `knobs_effective`: every knob as read back from torch / the process."""
    flags = read_flags(torch)
    return {
        "device": str(device) if device is not None else knobs["device"],
        "threads": _safe(torch.get_num_threads),
        "interop_threads": _safe(torch.get_num_interop_threads),
        "deterministic": flags["deterministic_algorithms"],
        "cudnn_benchmark": flags["cudnn_benchmark"],
        "tf32_matmul": flags["matmul_allow_tf32"],
        "tf32_cudnn": flags["cudnn_allow_tf32"],
        "float32_matmul_precision": flags["float32_matmul_precision"],
        "amp": knobs["amp"],
        "compile": knobs["compile"],
        "world_size": knobs["world_size"],
        "ddp_backend": ddp_backend(knobs, device) if knobs["world_size"] > 1 else None,
        "bucket_cap_mb": _bucket_cap_mb(knobs),
        "sync_batchnorm": knobs["sync_batchnorm"],
        # REPRO_UNSET_ENV's names are echoed instead of it: unset (None), as the rerun asked
        "env": dict((k, os.environ.get(k)) for k in sorted(_echoed_env(knobs["env"]))),
    }


def _bucket_cap_mb(knobs):
    """DistributedDataParallel's bucket size in effect (torch's default 25), None without DDP."""
    if knobs["world_size"] <= 1:
        return None
    return 25 if knobs["bucket_cap_mb"] is None else knobs["bucket_cap_mb"]


def ddp_backend(knobs, device):
    """The backend the ranks use: the knob, else gloo on the CPU and nccl on CUDA."""
    if knobs["ddp_backend"] is not None:
        return knobs["ddp_backend"]
    kind = device.type if device is not None and hasattr(device, "type") else str(knobs["device"])
    return "nccl" if kind.startswith("cuda") else "gloo"


def _echoed_env(requested):
    names = set(requested)
    if "REPRO_UNSET_ENV" in names:
        names.discard("REPRO_UNSET_ENV")
        names.update(n for n in requested["REPRO_UNSET_ENV"].split(",") if n)
    return names
