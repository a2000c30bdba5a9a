"""Prepare the tiny character-level dataset: map each character of input.txt to an integer id,
write the first 90% as train.bin and the rest as val.bin (uint16 ids), and the vocabulary as
meta.json. Run from anywhere: the files go beside this script."""

import json
import os
import sys
from array import array

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "input.txt"), encoding="utf-8") as f:
    text = f.read()
print(f"length of dataset in characters: {len(text):,}")

chars = sorted(set(text))
vocab_size = len(chars)
print(f"vocab size: {vocab_size}")
stoi = {ch: i for i, ch in enumerate(chars)}

n = len(text)
split = int(n * 0.9)
for name, part in (("train", text[:split]), ("val", text[split:])):
    ids = array("H", (stoi[c] for c in part))
    if ids.itemsize != 2:
        raise SystemExit("array('H') is not 16 bits on this platform")
    if sys.byteorder != "little":
        ids.byteswap()  # the .bin files are little-endian uint16, whatever the machine
    with open(os.path.join(here, f"{name}.bin"), "wb") as f:
        ids.tofile(f)
    print(f"{name} has {len(ids):,} tokens")

with open(os.path.join(here, "meta.json"), "w") as f:
    json.dump({"vocab_size": vocab_size, "itos": chars}, f)
