"""Which oneDNN primitives an op replay ran: oneDNN's verbose log (torch.backends.mkldnn.verbose) around
the replayed call, with the process's stdout (file descriptor 1, where oneDNN prints) sent to a
temporary file meanwhile. Each `exec` line gives "<primitive>:<implementation>:<prop_kind>", e.g.
"convolution:jit:avx512_core:forward_training"; the list keeps the first-seen order, each once, at most
MAX_PRIMITIVES. Both log formats parse: oneDNN 2.x `onednn_verbose,exec,cpu,...` and 3.x
`onednn_verbose,v1,primitive,exec,cpu,...`. None when this torch has no oneDNN or no verbose switch:
then nothing was recorded, which is not the same as "ran nothing"."""

import contextlib
import os
import sys
import tempfile

MAX_PRIMITIVES = 64
MAX_LOG = 8 * 1024 * 1024  # bytes of log read back
MAX_FIELD = 60


def parse(text):
    """The primitives of a verbose log's exec lines, first-seen order, each once."""
    out = []
    for line in text.splitlines():
        fields = line.strip().split(",")
        if not fields or not fields[0].endswith("_verbose") or "exec" not in fields[:4]:
            continue
        i = fields.index("exec")
        if len(fields) < i + 5:
            continue
        name = ":".join(f[:MAX_FIELD] for f in fields[i + 2:i + 5])
        if name not in out:
            out.append(name)
            if len(out) >= MAX_PRIMITIVES:
                break
    return out


def _flush_c_stdio():
    """fflush(NULL): what oneDNN printf'd but libc still buffers goes to the log, not the real stdout."""
    try:
        import ctypes
        ctypes.CDLL(None).fflush(None)
    except Exception:
        pass


class Recording(object):
    primitives = None  # the list once the block ends, None when nothing could be recorded


@contextlib.contextmanager
def recording(torch):
    """with recording(torch) as rec: ...; rec.primitives afterwards."""
    rec = Recording()
    mkldnn = getattr(torch.backends, "mkldnn", None)
    verbose = getattr(mkldnn, "verbose", None)
    level = getattr(mkldnn, "VERBOSE_ON", None)
    if verbose is None or level is None or not mkldnn.is_available():
        yield rec
        return
    sys.stdout.flush()
    saved = os.dup(1)
    log = tempfile.TemporaryFile()
    os.dup2(log.fileno(), 1)
    try:
        with verbose(level):
            yield rec
    finally:
        try:
            sys.stdout.flush()
            _flush_c_stdio()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        text = log.read(MAX_LOG).decode("utf-8", "replace")
        log.close()
        rec.primitives = parse(text)
