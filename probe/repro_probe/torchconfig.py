"""Parse the text of torch.__config__.show() into the fingerprint's torch.config block
(compiler, CPU capability, oneDNN, OpenMP, MKL, CUDA runtime/cuDNN, BLAS/LAPACK info, build settings)."""

import re

_COMPILER = re.compile(r"^(?:GCC|gcc|clang|Clang|Apple clang|AppleClang|MSVC|ICC|icc|icx|Intel)\b.*$")
_SETTING_SPLIT = re.compile(r",\s*(?=[A-Za-z0-9_]+=)")


def _bullets(text):
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("- "):
            yield line[2:].strip()


def parse_build_settings(s):
    """'A=1, B=x y, C=' -> {'A': '1', 'B': 'x y', 'C': ''} (values may contain spaces)."""
    out = {}
    for part in _SETTING_SPLIT.split(s.strip()):
        part = part.strip().rstrip(",").strip()
        if "=" not in part:
            continue
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def parse_config_show(text):
    cfg = {"compiler": None, "cpu_capability": None, "onednn": None, "openmp": None, "mkl": None,
           "cuda_runtime": None, "cudnn": None, "blas_info": None, "lapack_info": None,
           "build_settings": {}}
    for item in _bullets(text or ""):
        if cfg["compiler"] is None and _COMPILER.match(item):
            cfg["compiler"] = item
        elif item.startswith("CPU capability usage:"):
            cfg["cpu_capability"] = item.split(":", 1)[1].strip() or None
        elif re.search(r"\b(?:MKL-DNN|oneDNN|DNNL)\b", item):
            m = re.search(r"\b(?:MKL-DNN|oneDNN|DNNL)\s+v?([0-9][0-9A-Za-z.\-]*)", item)
            if m:
                cfg["onednn"] = "v" + m.group(1)
        elif item.startswith("OpenMP"):
            m = re.match(r"OpenMP\s+([0-9]+)", item)
            cfg["openmp"] = m.group(1) if m else None
        elif "Math Kernel Library" in item:
            m = re.search(r"Math Kernel Library Version\s+([0-9][0-9A-Za-z.]*)", item)
            cfg["mkl"] = m.group(1) if m else item
        elif item.startswith("CUDA Runtime"):
            cfg["cuda_runtime"] = item[len("CUDA Runtime"):].strip() or None
        elif item.startswith("CuDNN") or item.startswith("cuDNN"):
            # "CuDNN 91.9  (built against CUDA 13.1)": the CUDA it was built against apart, so a
            # diff of two builds shows each on its own row (torch prints cuDNN 9.19 as "91.9")
            m = re.match(r"^(.*?)\s*\(built against CUDA\s+([0-9.]+)\)\s*$", item[5:].strip())
            cfg["cudnn"] = (m.group(1) if m else item[5:].strip()) or None
            if m:
                cfg["cudnn_built_against_cuda"] = m.group(2)
        elif item.startswith("Build settings:"):
            cfg["build_settings"] = parse_build_settings(item[len("Build settings:"):])
    bs = cfg["build_settings"]
    cfg["blas_info"] = bs.get("BLAS_INFO")
    cfg["lapack_info"] = bs.get("LAPACK_INFO")
    return cfg
