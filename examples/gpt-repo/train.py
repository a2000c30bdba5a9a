"""Train a small GPT on a character-level dataset.

    python3 data/tiny/prepare.py
    python3 train.py config/train_tiny.py [--key=value ...]

The defaults below are overridden by the config file and the --key=value arguments
(configurator.py). Paths are relative to the working directory: run from the repo root.
"""

import json
import math
import os
import sys
import time
from array import array

import torch

from model import GPT, GPTConfig

# -----------------------------------------------------------------------------
# defaults
out_dir = "out"
eval_interval = 100
eval_iters = 20
log_interval = 10
eval_only = False
save_checkpoint = False
seed = 1337
# data
dataset = "tiny"
batch_size = 12
block_size = 64
# model
n_layer = 2
n_head = 4
n_embd = 64
dropout = 0.0
bias = True
# optimizer
learning_rate = 1e-3
max_iters = 200
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0
# learning-rate schedule
decay_lr = True
warmup_iters = 20
lr_decay_iters = 200
min_lr = 1e-4
# -----------------------------------------------------------------------------
config_keys = [k for k, v in globals().items() if not k.startswith("_") and isinstance(v, (int, float, bool, str))]
exec(open("configurator.py").read())  # overrides from the command line or a config file
config = {k: globals()[k] for k in config_keys}
# -----------------------------------------------------------------------------

torch.manual_seed(seed)
data_dir = os.path.join("data", dataset)


def load_tokens(split):
    path = os.path.join(data_dir, f"{split}.bin")
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: run python3 {data_dir}/prepare.py first")
    tokens = array("H")  # uint16, as prepare.py wrote them
    with open(path, "rb") as f:
        tokens.frombytes(f.read())
    if sys.byteorder != "little":
        tokens.byteswap()
    return torch.tensor(tokens.tolist(), dtype=torch.long)


train_data = load_tokens("train")
val_data = load_tokens("val")


def get_batch(split):
    data = train_data if split == "train" else val_data
    ix = torch.randint(len(data) - block_size, (batch_size,))
    x = torch.stack([data[i:i + block_size] for i in ix])
    y = torch.stack([data[i + 1:i + 1 + block_size] for i in ix])
    return x, y


meta_path = os.path.join(data_dir, "meta.json")
vocab_size = 256
if os.path.exists(meta_path):
    with open(meta_path) as f:
        vocab_size = json.load(f)["vocab_size"]
    print(f"found vocab_size = {vocab_size} (inside {meta_path})")

model_args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size,
                  bias=bias, vocab_size=vocab_size, dropout=dropout)
model = GPT(GPTConfig(**model_args))
print(f"number of parameters: {model.num_params() / 1e3:.1f}K")
optimizer = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2))


@torch.no_grad()
def estimate_loss():
    out = {}
    model.eval()
    for split in ["train", "val"]:
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            X, Y = get_batch(split)
            _, loss = model(X, Y)
            losses[k] = loss.item()
        out[split] = losses.mean().item()
    model.train()
    return out


def get_lr(it):
    # linear warmup, then cosine decay down to min_lr
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
    return min_lr + coeff * (learning_rate - min_lr)


X, Y = get_batch("train")
t0 = time.time()
iter_num = 0
best_val_loss = 1e9
while True:
    lr = get_lr(iter_num) if decay_lr else learning_rate
    for group in optimizer.param_groups:
        group["lr"] = lr

    if iter_num % eval_interval == 0 or iter_num == max_iters:
        losses = estimate_loss()
        print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        if losses["val"] < best_val_loss:
            best_val_loss = losses["val"]
            if save_checkpoint and iter_num > 0:
                os.makedirs(out_dir, exist_ok=True)
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "model_args": model_args, "iter_num": iter_num,
                            "best_val_loss": best_val_loss, "config": config},
                           os.path.join(out_dir, "ckpt.pt"))
    if iter_num == max_iters or eval_only:
        break

    _, loss = model(X, Y)
    X, Y = get_batch("train")  # next batch while this one's backward runs
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip != 0.0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()

    t1 = time.time()
    dt, t0 = t1 - t0, t1
    if iter_num % log_interval == 0:
        print(f"iter {iter_num}: loss {loss.item():.4f}, time {dt * 1000:.2f}ms")
    iter_num += 1

print(f"best val loss {best_val_loss:.4f}")
