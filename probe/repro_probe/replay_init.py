"""Replay kind init (issue 27): the model's initialization, alone, in a fresh process. When two targets'
traces first differ at `init` (the parameters as initialized), the initializers ran on the same
generator state in both (the seed is the run's) yet produced different bytes: `replay` rebuilds the
model exactly as training does (seed_everything, then the workload's build_model) and outputs
param/<n> then buffer/<n> in named_parameters() / named_buffers() order, as the trace records `init`.

Config (schema repro.replay/1): {"kind": "init", "train": the run's train config (its data file next to
the config, hash-verified as train mode does), "toggle": null | {"mkldnn": false}}. The result also
carries `rng_before`: the sha256 of torch.get_rng_state() right after seeding, the generator state
every initializer starts from, so the host can check both targets started from the same bytes."""

import sys

KEYS = {"schema", "kind", "train", "toggle"}


def load_init_config(cfg, check_train, check_toggle):
    for key in sorted(set(cfg) - KEYS):
        sys.stderr.write("repro_probe: warning: unknown replay config key %r ignored\n" % key[:80])
    train = check_train(cfg.get("train"))
    return {"kind": "init", "step": None, "train": train, "knobs": train["knobs"],
            "toggle": check_toggle(cfg.get("toggle"))}


def replay_init(torch, cfg, cfg_dir, device):
    """([(name, tensor)], sha256 of the generator state the initializers start from)."""
    from .data import load_data
    from .safetensors import tensor_sha256
    from .train import seed_everything
    from .workloads import WORKLOADS
    train = cfg["train"]
    data = load_data(train, cfg_dir)
    workload = WORKLOADS[train["workload"]]
    seed_everything(torch, train["train"]["seed"])
    rng_before = tensor_sha256(torch.get_rng_state())
    model = workload.build_model(torch, data, train["model"]).to(device)
    out = [("param/" + n, p.detach()) for n, p in model.named_parameters()]
    out += [("buffer/" + n, b.detach()) for n, b in model.named_buffers()]
    return out, rng_before
