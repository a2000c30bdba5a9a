"""One failure (or normal end) per --mode, after one optimizer step unless said otherwise."""

import os
import socket
import sys

import torch
import torch.nn as nn

mode = sys.argv[1]
if mode == "missing_module":
    import repro_definitely_not_installed  # noqa: F401

model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


def step():
    optimizer.zero_grad()
    model(torch.ones(4, 2)).sum().backward()
    optimizer.step()


if mode == "no_step":
    model(torch.ones(4, 2))
    sys.exit(0)
step()
if mode == "raise":
    raise ValueError("first line of the message\nthe last line of the message")
if mode == "resolve":
    socket.create_connection(("repro-probe-test.invalid", 443), timeout=5)
if mode == "urlopen":
    import urllib.request
    urllib.request.urlopen("http://repro-probe-test.invalid/weights.bin", timeout=5)
if mode == "refused":
    socket.create_connection(("127.0.0.1", 9), timeout=5)
if mode == "exit0":
    sys.exit(0)
if mode == "exit2":
    sys.exit(2)
if mode == "os_exit":
    sys.stdout.flush()
    os._exit(0)
if mode == "swallow":  # catches the step limit and keeps training: stopped again at the next step
    try:
        step()
    except BaseException:
        pass
    step()
step()
