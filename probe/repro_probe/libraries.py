"""Native libraries of interest mapped into this process (/proc/self/maps): soname (ELF DT_SONAME),
loader path (dl_iterate_phdr), real path, role and a version parsed from the real file name."""

import ctypes
import os
import re
import struct

# (pattern on the basename, role); first match wins.
_RULES = [
    (r"^libcudnn", "cudnn"),
    (r"^libcublas", "cublas"),  # libcublas and libcublasLt
    (r"^libcudart", "cudart"),
    (r"^libnccl", "nccl"),
    (r"^lib(?:cufft|curand|cusolver|cusparse|nvrtc)", "cuda_other"),
    (r"^libcuda\.so", "cuda_other"),  # the driver library; its real name carries the driver version
    (r"^lib(?:open|flexi|c)?blas", "blas"),
    (r"^liblapack", "lapack"),
    (r"^lib(?:dnnl|mkldnn)(?:[-.]|$)", "onednn"),
    (r"^libmkl", "mkl"),
    (r"^lib(?:gomp|iomp5|omp)(?:[-.]|$)", "openmp"),
    (r"^libtbb", "other"),
    (r"^lib(?:torch_cpu|torch_cuda|c10)(?:[-._]|$)", "torch"),
]
_RULES = [(re.compile(p), r) for p, r in _RULES]


def classify(basename):
    """Role of a library file name, or None when it is not a library of interest."""
    for pattern, role in _RULES:
        if pattern.search(basename):
            return role
    return None


def parse_version(basename):
    """Version from a (real) library file name, else None.

    libcudnn.so.9.1.0 -> 9.1.0, libopenblasp-r0.3.21.so -> 0.3.21, libdw-0.188.so -> 0.188."""
    m = re.search(r"-r([0-9]+(?:\.[0-9]+)+)", basename)
    if m:
        return m.group(1)
    m = re.search(r"\.so\.([0-9]+(?:\.[0-9]+)*)$", basename)
    if m:
        return m.group(1)
    m = re.search(r"-([0-9]+(?:\.[0-9]+)+)\.so$", basename)
    if m:
        return m.group(1)
    return None


def parse_maps(text):
    """Unique mapped file paths (in first-seen order) from /proc/<pid>/maps text."""
    seen, out = set(), []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        path = parts[5].strip()
        if path.endswith(" (deleted)"):
            path = path[:-len(" (deleted)")]
        if not path.startswith("/") or path in seen:
            continue
        seen.add(path)
        out.append(path)
    return out


def elf_soname(path):
    """DT_SONAME of an ELF shared object (via section headers), or None."""
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 52 or ident[:4] != b"\x7fELF":
                return None
            is64, end = ident[4] == 2, "<" if ident[5] == 1 else ">"
            if is64:
                shoff, = struct.unpack(end + "Q", ident[40:48])
                shentsize, shnum = struct.unpack(end + "HH", ident[58:62])
            else:
                shoff, = struct.unpack(end + "I", ident[32:36])
                shentsize, shnum = struct.unpack(end + "HH", ident[46:50])
            if not shoff or not shnum or shnum > 65535:
                return None
            f.seek(shoff)
            raw = f.read(shentsize * shnum)
            sections = []
            for i in range(shnum):
                s = raw[i * shentsize:(i + 1) * shentsize]
                if is64:
                    _, typ, _, _, off, size, link, _, _, entsize = struct.unpack(end + "IIQQQQIIQQ", s[:64])
                else:
                    _, typ, _, _, off, size, link, _, _, entsize = struct.unpack(end + "IIIIIIIIII", s[:40])
                sections.append((typ, off, size, link, entsize))
            for typ, off, size, link, entsize in sections:
                if typ != 6 or link >= len(sections):  # SHT_DYNAMIC
                    continue
                f.seek(off)
                dyn = f.read(size)
                fmt, step = (end + "qQ", 16) if is64 else (end + "iI", 8)
                for j in range(0, len(dyn) - step + 1, step):
                    tag, val = struct.unpack(fmt, dyn[j:j + step])
                    if tag == 0:
                        break
                    if tag == 14:  # DT_SONAME
                        _, stroff, strsize, _, _ = sections[link]
                        f.seek(stroff + val)
                        name = f.read(min(512, max(0, strsize - val))).split(b"\x00", 1)[0]
                        return name.decode("utf-8", "replace") or None
    except (OSError, struct.error, IndexError, ValueError):
        return None
    return None


def loader_names():
    """{real path: name the dynamic loader used} from dl_iterate_phdr (Linux/glibc), or {}."""
    try:
        class Info(ctypes.Structure):
            _fields_ = [("addr", ctypes.c_void_p), ("name", ctypes.c_char_p),
                        ("phdr", ctypes.c_void_p), ("phnum", ctypes.c_uint16)]
        callback_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Info), ctypes.c_size_t, ctypes.c_void_p)
        names = []

        def cb(info, size, data):
            if info.contents.name:
                names.append(info.contents.name.decode("utf-8", "replace"))
            return 0
        libc = ctypes.CDLL(None)
        libc.dl_iterate_phdr(callback_t(cb), None)
        return {os.path.realpath(n): n for n in names if n.startswith("/")}
    except Exception:
        return {}


def openblas_version(real_path):
    """OpenBLAS version from openblas_get_config() of an already-loaded library, or None."""
    try:
        mode = getattr(os, "RTLD_NOLOAD", 4) | getattr(os, "RTLD_LAZY", 1)
        lib = ctypes.CDLL(real_path, mode=mode)
        fn = lib.openblas_get_config
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_char_p
    m = re.search(rb"OpenBLAS\s+([0-9]+(?:\.[0-9]+)+)", fn() or b"")
    return m.group(1).decode() if m else None


def _loaded(real_path):
    """A handle on a library that is already mapped (RTLD_NOLOAD: never loads anything new)."""
    mode = getattr(os, "RTLD_NOLOAD", 4) | getattr(os, "RTLD_LAZY", 1)
    return ctypes.CDLL(real_path, mode=mode)


def _int_out(fn, *args):
    """Call fn(*args, &out) returning a status (0 = success); out, or None."""
    out = ctypes.c_int(0)
    return out.value if fn(*(args + (ctypes.byref(out),))) == 0 else None


def format_cuda_version(v):
    """cudaRuntimeGetVersion's 13000 -> 13.0, 12060 -> 12.6."""
    return "%d.%d" % (v // 1000, (v % 1000) // 10)


def format_cudnn_version(v):
    """cudnnGetVersion's number: 91900 -> 9.19.0 (cuDNN >= 9: major*10000), 8902 -> 8.9.2."""
    if v >= 10000:
        return "%d.%d.%d" % (v // 10000, (v % 10000) // 100, v % 100)
    return "%d.%d.%d" % (v // 1000, (v % 1000) // 100, v % 100)


def format_nccl_version(v):
    """ncclGetVersion's 22809 -> 2.28.9 (>= 2.9: major*10000), 2708 -> 2.7.8."""
    if v >= 10000:
        return "%d.%d.%d" % (v // 10000, (v % 10000) // 100, v % 100)
    return "%d.%d.%d" % (v // 1000, (v % 1000) // 100, v % 100)


def nvidia_version(role, soname, real_path):
    """The exact version an NVIDIA library reports about itself, asked through its own API on the
    copy this process mapped (a wheel's libcublas.so.13 says only 13 in its file name); None when
    the library has no such call or it fails."""
    try:
        lib = _loaded(real_path)
        if role == "cublas" and not soname.startswith("libcublasLt"):
            parts = [_int_out(lib.cublasGetProperty, ctypes.c_int(i)) for i in (0, 1, 2)]  # MAJOR, MINOR, PATCH
            return ".".join(str(p) for p in parts) if None not in parts else None
        if role == "cublas":
            lib.cublasLtGetVersion.restype = ctypes.c_size_t
            v = int(lib.cublasLtGetVersion())
            return "%d.%d.%d" % (v // 10000, (v % 10000) // 100, v % 100) if v else None
        if role == "cudart":
            v = _int_out(lib.cudaRuntimeGetVersion)
            return format_cuda_version(v) if v else None
        if role == "cudnn" and soname.startswith("libcudnn.so"):
            lib.cudnnGetVersion.restype = ctypes.c_size_t
            v = int(lib.cudnnGetVersion())
            return format_cudnn_version(v) if v else None
        if role == "nccl":
            v = _int_out(lib.ncclGetVersion)
            return format_nccl_version(v) if v else None
    except (OSError, AttributeError, ValueError, TypeError):
        return None
    return None


def describe(paths, loader=None):
    """Library entries for mapped paths, sorted by role then soname."""
    loader = loader or {}
    out = []
    for path in paths:
        base = os.path.basename(path)
        role = classify(base)
        if role is None:
            continue
        real = os.path.realpath(path)
        soname = elf_soname(real) or base
        version = openblas_version(real) if role == "blas" else None
        if role in ("cublas", "cudart", "cudnn", "nccl"):
            version = nvidia_version(role, soname, real)
        out.append({
            "soname": soname,
            "path": loader.get(real, path),
            "real_path": real,
            "role": role,
            "version": version or parse_version(os.path.basename(real)),
        })
    out.sort(key=lambda e: (e["role"], e["soname"], e["real_path"]))
    return out


def loaded_libraries():
    try:
        with open("/proc/self/maps") as f:
            paths = parse_maps(f.read())
    except OSError:
        return []
    return describe(paths, loader_names())
