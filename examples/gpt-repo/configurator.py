# Overrides the training script's globals from the command line. train.py runs this file with
# exec(), so it sees and rebinds train.py's module globals directly:
#
#   python3 train.py config/train_tiny.py --max_iters=20 --learning_rate=3e-3
#
# An argument without "--" is a config file, itself executed as Python; "--key=value" sets one
# existing global, with the value parsed as a Python literal when it is one (else a string).
import sys
from ast import literal_eval

for arg in sys.argv[1:]:
    if not arg.startswith("--"):
        print(f"config file: {arg}")
        with open(arg) as f:
            exec(f.read())
        continue
    key, sep, value = arg[2:].partition("=")
    if not sep:
        raise SystemExit(f"configurator: expected --key=value, got {arg!r}")
    if key not in globals():
        raise SystemExit(f"configurator: unknown config key {key!r}")
    try:
        parsed = literal_eval(value)
    except (SyntaxError, ValueError):
        parsed = value
    default = globals()[key]
    if isinstance(default, float) and isinstance(parsed, int) and not isinstance(parsed, bool):
        parsed = float(parsed)  # --learning_rate=1 means 1.0
    if not isinstance(parsed, type(default)):
        raise SystemExit(f"configurator: {key} is {type(default).__name__}, got {value!r}")
    print(f"override: {key} = {parsed!r}")
    globals()[key] = parsed
