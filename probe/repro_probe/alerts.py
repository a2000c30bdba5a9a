"""Collect the nondeterministic-op alerts torch raises as Python warnings under
use_deterministic_algorithms(True, warn_only=True) (knob deterministic="warn"): deduplicated,
counted, capped in number and length, for run.json `nondeterministic_alerts`. Every other warning
goes on to the previous handler untouched."""

import re
import warnings

MAX_ALERTS = 20
MAX_MESSAGE = 500
# The two texts torch uses: ops without a deterministic kernel ("put_ does not have a deterministic
# implementation, but you set ..."), and the CUDA flash / memory-efficient attention backward
# ("Flash Attention defaults to a non-deterministic algorithm. ...", warned once per process).
ALERT = re.compile(r"does not have a deterministic implementation|defaults to a non-deterministic algorithm")
OTHER = "(further distinct alerts, not listed)"
# torch appends where in its C++ sources the warning came from; that differs between builds.
_TRIGGERED = re.compile(r"\s*\(Triggered internally at .*$", re.S)


def alert_key(message):
    return " ".join(_TRIGGERED.sub("", str(message)).split())[:MAX_MESSAGE]


class AlertCollector(object):
    """Context manager; `alerts()` lists {"message", "count"} in order of first appearance."""

    def __init__(self):
        self.counts = {}
        self._catch = None
        self._previous = None

    def __enter__(self):
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        # "always": every occurrence reaches showwarning (the default filter shows a location once).
        warnings.filterwarnings("always", message=".*(%s)" % ALERT.pattern)
        self._previous = warnings.showwarning
        warnings.showwarning = self._show
        return self

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        return False

    def _show(self, message, category, filename, lineno, file=None, line=None):
        if not ALERT.search(str(message)):
            return self._previous(message, category, filename, lineno, file, line)
        key = alert_key(message)
        if key not in self.counts and len(self.counts) >= MAX_ALERTS:
            key = OTHER
        self.counts[key] = self.counts.get(key, 0) + 1

    def alerts(self):
        return [{"message": k, "count": n} for k, n in self.counts.items()]
