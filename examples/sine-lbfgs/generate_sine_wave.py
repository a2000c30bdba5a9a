"""Write traindata.csv: N sine waves of L samples each, every one shifted by a random phase.
One row per wave, comma-separated. Run once; the CSV is committed."""
import csv
import math
import os
import random

random.seed(2)
T = 20    # period, in samples
L = 100   # samples per wave
N = 20    # waves

rows = []
for _ in range(N):
    shift = random.randint(-4 * T, 4 * T)
    rows.append(["%.8f" % math.sin((i + shift) / T) for i in range(L)])

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "traindata.csv")
with open(out, "w", newline="") as f:
    csv.writer(f).writerows(rows)
print(f"wrote {N} x {L} samples to {out}")
