"""A data-parallel training script as torchrun runs it: gloo ranks from torchrun's variables, a
Linear-ReLU-Linear model wrapped in DistributedDataParallel, SGD, each rank its own contiguous slice
of every batch (torch.distributed.get_rank()). Without torchrun's variables it trains alone
(world size 1, the whole batch). --model linear: a bare nn.Linear. --mode picks a launch mistake for
the tests: env (init_process_group with env:// when no launcher set the variables), nccl (the nccl
backend), spawn (training inside torch.multiprocessing.spawn children); or a rank that goes wrong after
training: drift (rank 1 nudges a parameter), raise (rank 1 raises)."""

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=4)
parser.add_argument("--mode", choices=["ddp", "env", "nccl", "spawn", "drift", "raise"], default="ddp")
parser.add_argument("--model", choices=["mlp", "linear"], default="mlp")
args = parser.parse_args()


def train(rank, world_size):
    torch.manual_seed(0)
    model = nn.Linear(6, 1) if args.model == "linear" else nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1))
    if world_size > 1 or args.mode == "nccl":
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 6)
    y = x.sum(dim=1, keepdim=True)
    rows = x.shape[0] // world_size
    mine = slice(rank * rows, (rank + 1) * rows)
    for _ in range(args.steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x[mine]), y[mine])
        loss.backward()
        optimizer.step()
    if rank == 1 and args.mode == "drift":
        with torch.no_grad():
            next(model.parameters()).add_(1e-3)
    if rank == 1 and args.mode == "raise":
        raise ValueError("rank 1 went wrong")


def spawned(rank):
    train(0, 1)


if args.mode == "spawn":
    torch.multiprocessing.spawn(spawned, nprocs=1)
elif args.mode in ("env", "nccl") or "RANK" in os.environ:
    dist.init_process_group("nccl" if args.mode == "nccl" else "gloo")
    train(dist.get_rank(), dist.get_world_size())
    dist.destroy_process_group()
else:
    train(0, 1)
print("ddp_gloo: done")
