"""JSON output per the contract: allow_nan=False, non-finite floats -> null, strings capped at 4096
characters, written atomically (temp file + rename)."""

import json
import math
import os

STRING_CAP = 4096


def sanitize(value, cap=STRING_CAP):
    """Return a JSON-safe copy: non-finite floats become None, strings are capped."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return value[:cap]
    if isinstance(value, dict):
        return {str(k)[:cap]: sanitize(v, cap) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v, cap) for v in value]
    return str(value)[:cap]


def one_line(text, cap=STRING_CAP):
    """Collapse a message to a single line of at most `cap` characters."""
    return " ".join(str(text).split())[:cap]


def dumps(value, compact=False):
    if compact:
        return json.dumps(sanitize(value), allow_nan=False, separators=(",", ":"))
    return json.dumps(sanitize(value), allow_nan=False, indent=2)


def write_json(path, value, compact=False):
    text = dumps(value, compact=compact)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")
    os.replace(tmp, path)
