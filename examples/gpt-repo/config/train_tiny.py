# A tiny character-level model on data/tiny: small enough to train on a laptop CPU in seconds.
dataset = "tiny"
out_dir = "out-tiny"
eval_interval = 20
eval_iters = 4
log_interval = 5

batch_size = 8
block_size = 32
n_layer = 2
n_head = 2
n_embd = 32
dropout = 0.1

learning_rate = 3e-3
max_iters = 40
lr_decay_iters = 40
min_lr = 3e-4
warmup_iters = 5
beta2 = 0.99
