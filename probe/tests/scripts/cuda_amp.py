"""On CUDA (when there is one): a model under bf16 autocast, and with --fp16 under fp16 autocast
with a GradScaler. Checks device, autocast detection and hashing of CUDA tensors. On the CPU it
runs without autocast (torch 1.13's CPU bf16 autocast fails in this model's backward)."""

import sys

import torch
import torch.nn as nn

device = "cuda" if torch.cuda.is_available() else "cpu"
fp16 = "--fp16" in sys.argv
dtype = torch.float16 if fp16 else torch.bfloat16
model = nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.LayerNorm(256), nn.Linear(256, 8)).to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
scaler = torch.cuda.amp.GradScaler() if fp16 else None
x, y = torch.randn(512, 64, device=device), torch.randint(0, 8, (512,), device=device)
for step in range(5):
    optimizer.zero_grad()
    with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
        loss = nn.functional.cross_entropy(model(x), y)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
