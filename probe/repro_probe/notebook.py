"""Notebooks in script mode: the code cells of an .ipynb run in order in one namespace, unchanged, as
Jupyter's Run All does (the host parsed and validated the file already; it is read again here with
the stdlib only, so the target needs no Jupyter).

IPython syntax: where the target has IPython, each cell goes through IPython's own transformer and a
non-interactive InteractiveShell provides get_ipython(). Otherwise a cell that does not compile as
Python is searched for IPython syntax: line magics (`%matplotlib inline`, `x = %time f()`) are
skipped and listed in run.json; a cell magic (`%%time`), a shell line (`!pip install`) or a help
query (`obj?`) is an error naming the cell."""

import builtins
import json
import linecache
import re
import sys
import types

from .errors import ProbeError

MAX_BYTES = 16 * 1024 * 1024
MAX_LISTED = 200
_LINE_MAGIC = re.compile(r"^(\s*)(?:[A-Za-z_][A-Za-z0-9_]*\s*=\s*)?%(?!%)\S")
_SHELL = re.compile(r"^(\s*)(?:[A-Za-z_][A-Za-z0-9_]*\s*=\s*)?!\S")
_HELP = re.compile(r"^(\s*)[A-Za-z_][\w.]*\?{1,2}\s*$|^(\s*)\?{1,2}[A-Za-z_]")


class CellError(Exception):
    """A cell raised: run.json names it (number and first line)."""

    def __init__(self, cell, exc):
        Exception.__init__(self, "%s raised %s: %s" % (describe(cell), type(exc).__name__, _last_line(exc)))
        self.cell = cell
        self.exc = exc


def _last_line(e):
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def first_line(source):
    for line in source.splitlines():
        if line.strip():
            text = re.sub(r"[\x00-\x1f\x7f]", " ", line.strip())
            return text if len(text) <= 80 else text[:79] + "\u2026"
    return ""


def describe(cell):
    return "cell %d (%s)" % (cell["index"], cell["first_line"]) if cell["first_line"] else "cell %d" % cell["index"]


def load_cells(path):
    """The code cells: [{index (1-based among all cells), source, first_line}]."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise ValueError("larger than %d bytes" % MAX_BYTES)
        nb = json.loads(data.decode("utf-8"))
        cells = nb["cells"]
        if not isinstance(cells, list):
            raise ValueError("cells is not a list")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise ProbeError("script_error", "the notebook %s cannot be read: %s" % (path, _last_line(e)))
    out = []
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            continue
        out.append({"index": i + 1, "source": source, "first_line": first_line(source)})
    return out


def _ipython():
    """(shell, transform) where the target has IPython, else None."""
    try:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        class BatchShell(InteractiveShell):
            def enable_gui(self, gui=None):
                """No GUI event loop in a batch run (the base class raises): `%matplotlib inline`
                selects a backend that needs none, as ipykernel's shell does."""

        config = Config()
        config.HistoryManager.enabled = False  # no sqlite history under $HOME
        shell = BatchShell.instance(config=config)
        return shell, shell.transform_cell
    except Exception:
        return None


def plain_transform(cell, skipped):
    """Source to run without IPython: unchanged when it compiles; else line magics become `pass`
    (listed in `skipped`) and other IPython syntax is an error naming the cell."""
    source = cell["source"]
    try:
        compile(source, "<cell>", "exec", dont_inherit=True)
        return source
    except SyntaxError:
        pass
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        raise ProbeError("notebook_syntax", "%s starts with the cell magic %s, which needs IPython (the target "
                         "has none)" % (describe(cell), lines[0].strip().split()[0][:40]))
    out = []
    for n, line in enumerate(lines, 1):
        if _SHELL.match(line):
            raise ProbeError("notebook_syntax", "%s line %d runs a shell command (%s), which needs IPython (the "
                             "target has none)" % (describe(cell), n, first_line(line)))
        if _HELP.match(line):
            raise ProbeError("notebook_syntax", "%s line %d is a help query (%s), which needs IPython (the target "
                             "has none)" % (describe(cell), n, first_line(line)))
        m = _LINE_MAGIC.match(line)
        if m:
            if len(skipped) < MAX_LISTED:
                skipped.append({"cell": cell["index"], "line": n, "magic": first_line(line)[:80]})
            out.append(m.group(1) + "pass")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def run_cells(path, allow_errors, tracer, result):
    """Run the notebook's code cells in order in one namespace; `result` (run.json script.notebook)
    gets the cells run, the magics skipped and the cells that raised. A cell that raises stops the run
    (CellError) unless allow_errors."""
    cells = load_cells(path)
    module = types.ModuleType("__main__")  # as IPython does: pickle finds what the cells define
    ns = module.__dict__
    ns["__builtins__"] = builtins
    saved_main = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    tracer.namespace = ns
    try:
        _run(cells, ns, allow_errors, tracer, result)
    finally:
        tracer.cell = None
        if saved_main is not None:
            sys.modules["__main__"] = saved_main


def _run(cells, ns, allow_errors, tracer, result):
    ipy = _ipython()
    if ipy is not None:
        shell, transform = ipy
        shell.user_ns = ns
        ns["get_ipython"] = lambda: shell
    result.update({"cells": len(cells), "cells_run": 0, "ipython": ipy is not None, "skipped_magics": [],
                   "errors": [], "allow_errors": allow_errors})
    for cell in cells:
        tracer.cell = cell["index"]
        source = transform(cell["source"]) if ipy is not None else plain_transform(cell, result["skipped_magics"])
        filename = "<cell %d>" % cell["index"]
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            code = compile(source, filename, "exec", dont_inherit=True)
        except SyntaxError as e:
            err = CellError(cell, e)
            if not allow_errors:
                raise err
            _listed(result, cell, e)
            continue
        result["cells_run"] += 1
        try:
            exec(code, ns)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # the tracer's StepLimitReached is a BaseException: it goes through
            if not allow_errors:
                raise CellError(cell, e)
            _listed(result, cell, e)
            sys.stderr.write("repro_probe: %s (going on: --allow-errors)\n" % CellError(cell, e))


def _listed(result, cell, e):
    if len(result["errors"]) < MAX_LISTED:
        result["errors"].append({"cell": cell["index"], "first_line": cell["first_line"],
                                 "error": ("%s: %s" % (type(e).__name__, _last_line(e)))[:300]})
