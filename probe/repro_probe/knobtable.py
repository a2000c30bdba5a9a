"""The knob table, as generated from the host's src/core/knobs.ts into knob_table.json (one
table for both languages): knob names, value types and defaults, and which environment
variables are recorded and which of them are knobs."""

import json
import os
import re

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "knob_table.json"), "rb") as _f:
    TABLE = json.loads(_f.read().decode("utf-8"))

KNOBS = TABLE["knobs"]
KNOB_NAMES = tuple(k["name"] for k in KNOBS)
DEFAULT_KNOBS = dict([(k["name"], k["default"]) for k in KNOBS] + [("env", {})])
ENV_NAME = re.compile(TABLE["env_name_pattern"])
ENV_SECRET_WORDS = tuple(TABLE["env_secret_words"])
ENV_PREFIXES = tuple(r["match"] for r in TABLE["env_variables"] if r["how"] == "prefix")
ENV_EXACT = tuple(r["match"] for r in TABLE["env_variables"] if r["how"] == "exact")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_value(knob, value):
    """None when `value` is valid for the table row `knob`, else the reason in words."""
    t = knob["type"]
    if value is None:
        return None if t["nullable"] else "must not be null"
    kind = t["kind"]
    if kind == "bool":
        ok = isinstance(value, bool) or value in t.get("also", [])
    elif kind == "int":
        ok = _is_int(value) and t["min"] <= value <= t["max"]
    elif kind == "number":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and t["min"] <= value <= t["max"])
    elif kind == "enum":
        ok = value in t["choices"]
    else:  # pattern
        ok = isinstance(value, str) and re.match(t["pattern"], value) is not None
    return None if ok else "must be %s" % knob["values"]
