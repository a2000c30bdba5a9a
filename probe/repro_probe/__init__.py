"""repro probe: runs inside a target environment and writes the artifacts of docs/artifacts.md.

Only the stdlib is imported at package import time; torch is imported lazily after knobs.env is applied.
"""

PROBE_VERSION = "0.1.0"
