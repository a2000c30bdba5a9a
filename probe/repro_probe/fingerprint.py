"""fingerprint.json: python, OS, torch build and config, CUDA, loaded native libraries, flags,
attention (SDPA) facts, threads, allowlisted environment and installed distributions, as in effect
after the knobs."""

import os
import platform
import re
import sys
import traceback

from . import PROBE_VERSION
from .knobs import read_flags
from .knobtable import ENV_EXACT, ENV_PREFIXES, ENV_SECRET_WORDS as ENV_DENY
from .libraries import loaded_libraries
from .torchconfig import parse_config_show
MAX_DISTRIBUTIONS = 2000


def redact_env(environ):
    """Allowlisted, secret-free environment; values cut at the first newline, capped at 256."""
    out = {}
    for name in sorted(environ):
        upper = name.upper()
        if not (name.startswith(ENV_PREFIXES) or name in ENV_EXACT):
            continue
        if any(word in upper for word in ENV_DENY):
            continue
        out[name] = re.split(r"[\r\n]", str(environ[name]), maxsplit=1)[0][:256]
    return out


def recorded_env(environ):
    """The environment the fingerprint records: what the target set, not the variables the test
    suite's CPU emulation added (repro_probe.__main__.emulate_cpu), which it names instead."""
    environ = dict(environ)
    for name in environ.pop("REPRO_EMULATED_ENV", "").split(","):
        environ.pop(name, None)
    out = redact_env(environ)
    if environ.get("REPRO_EMULATE_CPU"):
        out["REPRO_EMULATE_CPU"] = environ["REPRO_EMULATE_CPU"]
    return out


def _section(fn, *args):
    """Run one section; a failure yields null (with a note on stderr) instead of no fingerprint."""
    try:
        return fn(*args)
    except Exception:
        sys.stderr.write("repro_probe: fingerprint section %s failed:\n%s" % (fn.__name__, traceback.format_exc()))
        return None


def parse_os_release(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r'^([A-Z0-9_]+)=(.*)$', line.strip())
        if m:
            value = m.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[m.group(1)] = value
    return out


def python_info():
    return {"version": platform.python_version(), "implementation": platform.python_implementation(),
            "compiler": platform.python_compiler(), "executable": sys.executable}


def os_info():
    rel = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                rel = parse_os_release(f.read())
            break
        except OSError:
            continue
    glibc = None
    try:
        m = re.match(r"glibc\s+(\S+)", os.confstr("CS_GNU_LIBC_VERSION") or "")
        glibc = m.group(1) if m else None
    except (AttributeError, ValueError, OSError):
        pass
    if glibc is None:
        lib, ver = platform.libc_ver()
        glibc = ver if lib == "glibc" and ver else None
    u = platform.uname()
    return {"system": u.system, "kernel": u.release, "machine": u.machine,
            "distro": rel.get("PRETTY_NAME"), "distro_id": rel.get("ID"),
            "distro_version": rel.get("VERSION_ID"), "glibc": glibc}


def _version_text(v):
    """cuDNN/NCCL versions: tuple -> 'a.b.c'; int -> decoded; None -> None."""
    if v is None:
        return None
    if isinstance(v, (tuple, list)):
        return ".".join(str(x) for x in v)
    v = int(v)
    if v >= 10000:  # cuDNN >= 9 and NCCL >= 2.9: major*10000 + minor*100 + patch
        return "%d.%d.%d" % (v // 10000, (v % 10000) // 100, v % 100)
    return "%d.%d.%d" % (v // 1000, (v % 1000) // 100, v % 100)


def _cudnn_versions(torch):
    """(compile-time, runtime) cuDNN versions as text; (None, None) without cuDNN."""
    cudnn = getattr(torch._C, "_cudnn", None)
    if cudnn is None:
        return None, None
    build = runtime = None
    try:
        build = _version_text(cudnn.getCompileVersion())
    except Exception:
        build = _version_text(torch.backends.cudnn.version())
    try:
        runtime = _version_text(cudnn.getRuntimeVersion())
    except Exception:
        runtime = build
    return build, runtime


def torch_info(torch):
    build, _ = _cudnn_versions(torch)
    return {"version": str(torch.__version__), "git_version": getattr(torch.version, "git_version", None),
            "debug": bool(getattr(torch.version, "debug", False)), "cuda_build": torch.version.cuda,
            "cudnn_build": build, "config": parse_config_show(torch.__config__.show())}


def nvidia_driver():
    try:
        with open("/proc/driver/nvidia/version") as f:
            m = re.search(r"Kernel Module\s+(?:for\s+\S+\s+)?([0-9][0-9.]*)", f.readline())
            return m.group(1) if m else None
    except OSError:
        return None


def cuda_info(torch):
    available = bool(torch.cuda.is_available())
    out = {"available": available, "runtime": torch.version.cuda, "cudnn": None,
           "driver": nvidia_driver(), "nccl": None, "devices": []}
    if not available:
        return out
    out["cudnn"] = _cudnn_versions(torch)[1]
    try:
        out["nccl"] = _version_text(torch.cuda.nccl.version())
    except Exception:
        pass
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out["devices"].append({"index": i, "name": p.name, "capability": "%d.%d" % (p.major, p.minor),
                               "memory_bytes": int(p.total_memory),
                               "multiprocessors": int(p.multi_processor_count)})
    return out


def numpy_info():
    try:
        import numpy
    except Exception:
        return None
    return {"version": numpy.__version__}


def threads_info(torch):
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads(),
            "cpu_count": os.cpu_count(), "affinity": affinity}


def distributions():
    try:
        from importlib import metadata
    except ImportError:
        return []
    seen = {}
    for dist in metadata.distributions():
        try:
            name = dist.metadata["Name"]
        except Exception:
            name = None
        if name and name.lower() not in seen:
            seen[name.lower()] = {"name": name, "version": dist.version}
    return [seen[k] for k in sorted(seen)][:MAX_DISTRIBUTIONS]


SDPA_FLAGS = ("flash_sdp_enabled", "mem_efficient_sdp_enabled", "math_sdp_enabled", "cudnn_sdp_enabled")


def attention_info(torch):
    """Whether F.scaled_dot_product_attention exists (torch >= 2.0) and the CUDA SDPA backend
    switches (torch.backends.cuda.*_sdp_enabled(); null where this torch has no such switch)."""
    cuda = getattr(torch.backends, "cuda", None)
    out = {"sdpa_available": hasattr(torch.nn.functional, "scaled_dot_product_attention")}
    for name in SDPA_FLAGS:
        fn = getattr(cuda, name, None)
        out[name] = None if fn is None else _safe_bool(fn)
    return out


def _safe_bool(fn):
    try:
        return bool(fn())
    except Exception:
        return None


def warm_up(torch, device=None):
    """One tiny training step through the kinds of layers the workloads use, so the libraries that
    load lazily (BLAS; on CUDA cuBLAS/cuBLASLt and cuDNN's op, engine and RNN libraries) are
    mapped before the fingerprint reads /proc/self/maps. Seeded and apart from any training."""
    a = torch.ones(8, 8)
    (a @ a).sum().item()
    if device is None or device.type != "cuda":
        return
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=g).to(device).requires_grad_(True)
    w = torch.randn(4, 3, 3, 3, generator=g).to(device).requires_grad_(True)
    y = torch.nn.functional.conv2d(x, w, padding=1)
    y = torch.nn.functional.batch_norm(y, None, None, training=True)
    seq = torch.randn(2, 5, 4, generator=g).to(device)
    lstm = torch.nn.LSTM(4, 4, batch_first=True).to(device)
    out, _ = lstm(seq)
    lin = torch.randn(4, 4, generator=g).to(device).requires_grad_(True)
    loss = y.sum() + (out @ lin).sum()
    loss.backward()
    torch.cuda.synchronize(device)


def collect(torch):
    """The fingerprint; torch may be None (it failed to import): its sections are then null."""
    def with_torch(fn):
        return None if torch is None else _section(fn, torch)
    return {
        "schema": "repro.fingerprint/1",
        "probe_version": PROBE_VERSION,
        "python": _section(python_info),
        "os": _section(os_info),
        "torch": with_torch(torch_info),
        "numpy": _section(numpy_info),
        "cuda": with_torch(cuda_info),
        "libraries": _section(loaded_libraries) or [],
        "flags": with_torch(read_flags),
        "attention": with_torch(attention_info),
        "threads": with_torch(threads_info),
        "env": _section(recorded_env, os.environ),
        "distributions": _section(distributions) or [],
    }
