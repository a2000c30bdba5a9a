"""attention: a one-block transformer encoder over token sequences. Exercises scaled-dot-product
attention (`F.scaled_dot_product_attention` and its backends where torch has it, torch >= 2.0; else
the explicit softmax(q k^T / sqrt(d)) v), LayerNorm, GELU, and an EmbeddingBag whose backward is an
index-add (atomic adds on CUDA).

Fixed sizes: model width 16, 2 heads of 8, feed-forward 32, no dropout (the explicit and the SDPA
paths then compute the same function). tok = Embedding(vocab, 16) plus learned positions `pos`;
x + attn(norm1(x)); x + ffn(norm2(x)); norm; mean over positions, plus bag = EmbeddingBag(vocab, 16,
mean) of the tokens; head = Linear(16, classes)."""

import math

from .. import data as checks
from . import common

NAME = "attention"
SUMMARY = "transformer encoder block: Embedding, self-attention (SDPA or explicit), LayerNorm, GELU, EmbeddingBag"
OUTCOME_METRIC = "val_accuracy"
EVAL_CHUNK = 2048
DIM, HEADS, FFN = 16, 2, 32


def sdpa_available(torch):
    return hasattr(torch.nn.functional, "scaled_dot_product_attention")


def validate_data(torch, tensors, meta):
    tokens = checks.require(tensors, "tokens", torch.int64, 2)
    label = checks.require(tensors, "label", torch.int64, 1)
    per_row = {"tokens": tokens, "label": label}
    checks.same_rows(per_row)
    seq_len = checks.dim_in(tokens, "tokens", 1, 1, 1024)
    vocab = checks.meta_int(meta, "vocab", 2, 1 << 20)
    classes = checks.meta_int(meta, "classes", 2, 1000)
    checks.values_below(tokens, "tokens", vocab)
    checks.values_below(label, "label", classes)
    return {"tensors": per_row, "vocab": vocab, "classes": classes,
            "info": {"seq_len": seq_len, "vocab": vocab, "classes": classes}}


def attention_modules(torch, use_sdpa):
    """(ScaledDotProductAttention, SelfAttention) classes; use_sdpa picks the path once, at build."""
    nn = torch.nn

    class ScaledDotProductAttention(nn.Module):
        """A leaf of its own, so the trace records the attention output itself."""
        def __init__(self):
            super(ScaledDotProductAttention, self).__init__()
            self.attention_path = "sdpa" if use_sdpa else "explicit"

        def forward(self, q, k, v):
            if use_sdpa:
                return torch.nn.functional.scaled_dot_product_attention(q, k, v)
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            return torch.matmul(torch.softmax(scores, dim=-1), v)

    class SelfAttention(nn.Module):
        def __init__(self, dim, heads):
            super(SelfAttention, self).__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.core = ScaledDotProductAttention()
            self.out = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, d = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            return self.out(self.core(q, k, v).transpose(1, 2).reshape(b, n, d))

    return ScaledDotProductAttention, SelfAttention


def build_model(torch, data, model_cfg, use_sdpa=None):
    nn = torch.nn
    seq_len = int(data["tensors"]["tokens"].shape[1])
    _, SelfAttention = attention_modules(torch, sdpa_available(torch) if use_sdpa is None else use_sdpa)

    class TinyEncoder(nn.Module):
        def __init__(self):
            super(TinyEncoder, self).__init__()
            self.tok = nn.Embedding(data["vocab"], DIM)
            self.pos = nn.Embedding(seq_len, DIM)
            self.norm1 = nn.LayerNorm(DIM)
            self.attn = SelfAttention(DIM, HEADS)
            self.norm2 = nn.LayerNorm(DIM)
            self.ffn = nn.Sequential(nn.Linear(DIM, FFN), nn.GELU(), nn.Linear(FFN, DIM))
            self.norm = nn.LayerNorm(DIM)
            self.bag = nn.EmbeddingBag(data["vocab"], DIM, mode="mean")
            self.head = nn.Linear(DIM, data["classes"])

        def forward(self, tokens):
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            x = self.tok(tokens) + self.pos(positions)
            x = x + self.attn(self.norm1(x))
            x = x + self.ffn(self.norm2(x))
            return self.head(self.norm(x).mean(dim=1) + self.bag(tokens))

    return TinyEncoder()


def batch(tensors, rows):
    return (tensors["tokens"][rows],), tensors["label"][rows]


def criterion(torch):
    return torch.nn.CrossEntropyLoss()


val_sums = common.classification_sums
outcome = common.classification_outcome
