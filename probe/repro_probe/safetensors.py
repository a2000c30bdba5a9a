"""Minimal safetensors reader/writer (no `safetensors` package) plus raw-byte access to tensors.

Layout: u64 LE header length N, N bytes of JSON header (padded with spaces to a multiple of 8),
then the data buffer; tensors are laid out in sorted key order without gaps."""

import ctypes
import hashlib
import json
import os
import struct

MAX_HEADER = 16 * 1024 * 1024
MAX_TENSORS = 100000
MAX_NAME = 512

# safetensors dtype code -> (torch dtype attribute name, itemsize)
ST_DTYPES = {
    "F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2), "BF16": ("bfloat16", 2),
    "I64": ("int64", 8), "I32": ("int32", 4), "U8": ("uint8", 1), "BOOL": ("bool", 1),
}
_NAME_TO_ST = {v[0]: k for k, v in ST_DTYPES.items()}


class SafetensorsError(ValueError):
    pass


def dtype_name(dtype):
    """torch.float32 -> 'float32'."""
    return str(dtype).replace("torch.", "")


def tensor_bytes(t):
    """Raw bytes of a tensor in its own dtype: CPU, C-contiguous, native (little-endian) order."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    n = t.numel() * t.element_size()
    if n == 0:
        return b""
    return ctypes.string_at(t.data_ptr(), n)


def tensor_sha256(t):
    """sha256 (hex) of tensor_bytes(t), hashed in place: no copy of the bytes into a Python object."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    n = t.numel() * t.element_size()
    if n == 0:
        return hashlib.sha256(b"").hexdigest()
    view = (ctypes.c_ubyte * n).from_address(t.data_ptr())  # `t` stays alive until this returns
    return hashlib.sha256(view).hexdigest()


def storable(t):
    """The tensor as it is stored: CPU, contiguous; float16/bfloat16 widened to float32."""
    import torch
    t = t.detach()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if t.device.type != "cpu":
        t = t.cpu()
    return t.contiguous()


def _check_name(name):
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise SafetensorsError("bad tensor name %r" % (name,))
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise SafetensorsError("tensor name with control characters: %r" % (name,))


def write_safetensors(path, tensors, metadata=None, widen=True):
    """Write {name: tensor} (float16/bfloat16 widened to F32 unless widen=False: every tensor in its
    own dtype, exact bytes) and optional {str: str} metadata."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        _check_name(name)
        t = storable(tensors[name]) if widen else tensors[name].detach().cpu().contiguous()
        code = _NAME_TO_ST.get(dtype_name(t.dtype))
        if code is None:
            raise SafetensorsError("unsupported dtype %s for %r" % (t.dtype, name))
        data = tensor_bytes(t)
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


def parse_header(buf):
    """Validate and return (entries {name: (code, shape, begin, end)}, metadata, data_start)."""
    if len(buf) < 8:
        raise SafetensorsError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", bytes(buf[:8]))
    if n > MAX_HEADER or 8 + n > len(buf):
        raise SafetensorsError("header length %d out of range" % n)
    try:
        header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"))
    except ValueError as e:
        raise SafetensorsError("header is not JSON: %s" % e)
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError("__metadata__ must map strings to strings")
    if len(header) > MAX_TENSORS:
        raise SafetensorsError("too many tensors")
    data_len = len(buf) - 8 - n
    entries = {}
    for name, info in header.items():
        _check_name(name)
        if not isinstance(info, dict):
            raise SafetensorsError("bad entry for %r" % name)
        code, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if code not in ST_DTYPES:
            raise SafetensorsError("unknown dtype %r for %r" % (code, name))
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise SafetensorsError("bad shape for %r" % name)
        if not (isinstance(offs, list) and len(offs) == 2 and all(type(o) is int for o in offs)):
            raise SafetensorsError("bad data_offsets for %r" % name)
        begin, end = offs
        count = 1
        for d in shape:
            count *= d
        if not 0 <= begin <= end <= data_len or end - begin != count * ST_DTYPES[code][1]:
            raise SafetensorsError("data_offsets of %r inconsistent with shape/dtype/file" % name)
        entries[name] = (code, shape, begin, end)
    spans = sorted((b, e, k) for k, (_, _, b, e) in entries.items() if e > b)
    for (b1, e1, k1), (b2, e2, k2) in zip(spans, spans[1:]):
        if b2 < e1:
            raise SafetensorsError("tensors %r and %r overlap" % (k1, k2))
    return entries, metadata, 8 + n


def read_safetensors(path):
    """Read a file into ({name: torch tensor (own memory)}, metadata)."""
    with open(path, "rb") as f:
        buf = f.read()
    return decode_safetensors(buf)


def decode_safetensors(buf):
    import torch
    entries, metadata, start = parse_header(buf)
    out = {}
    for name, (code, shape, begin, end) in entries.items():
        dtype = getattr(torch, ST_DTYPES[code][0])
        if end == begin:
            out[name] = torch.empty(shape, dtype=dtype)
        else:
            chunk = bytearray(buf[start + begin:start + end])
            out[name] = torch.frombuffer(chunk, dtype=dtype).reshape(shape)
    return out, metadata
