#!/usr/bin/env python3
"""PyTorch baseline of `prior bench step`: the same GPT-NeoX/Pythia model and
training step, timed on one CUDA GPU with CUDA events after warm-up.

    python3 perf/baselines/gptneox_step.py --model pythia-160m --seq 2048 \
        --batch 8 --steps 20 --warmup 5 --mode eager|compile [--json]

Self-contained (PyTorch only, no transformers). The step: a random token batch
[batch, seq+1] made once on the device; bf16 autocast forward; mean
cross-entropy; backward; grad-norm clip 1.0; fused AdamW (lr 3e-4, betas
0.9/0.95, weight decay 0.1); zero_grad(set_to_none=True).

FLOPs per token (for MFU), the PaLM convention:
    six_n     = 6 * N, N = every parameter except the input embedding
                (embed_in); it includes embed_out (the unembedding) and the
                LayerNorm/bias parameters.
    attention = 12 * n_layer * d_model * seq (QK^T and AV, forward and
                backward, no discount for the causal mask).
    MFU = (six_n + attention) * tokens_per_s / peak bf16 dense FLOP/s.

Exit codes: 0 ok, 2 bad arguments, 3 no CUDA device (or no PyTorch),
4 out of device memory.
"""

import argparse
import json
import math
import sys

PRESETS = {
    # name: (layers, d_model, heads)
    "micro": (1, 32, 2),
    "tiny": (2, 64, 4),
    "pythia-14m": (6, 128, 4),
    "pythia-70m": (6, 512, 8),
    "pythia-160m": (12, 768, 12),
    "pythia-410m": (24, 1024, 16),
    "pythia-1b": (16, 2048, 8),
    "pythia-1.4b": (24, 2048, 16),
    "pythia-2.8b": (32, 2560, 32),
    "pythia-6.9b": (32, 4096, 32),
}
VOCAB_MULTIPLE = 128  # GPT-NeoX pads the (un)embedding rows, as prior does.

# Peak dense bf16 FLOP/s by device-name substring, first match wins.
PEAK_BF16 = [
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM (reports e.g. "NVIDIA H100 80GB HBM3")
    ("A100", 312e12),
]

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # no traceback: a clear one-liner
    print(f"no CUDA device: PyTorch is not importable ({e})", file=sys.stderr)
    sys.exit(3)


class Config:
    def __init__(self, name, vocab):
        self.name = name
        self.n_layer, self.d_model, self.n_head = PRESETS[name]
        self.vocab = -(-vocab // VOCAB_MULTIPLE) * VOCAB_MULTIPLE
        self.head_dim = self.d_model // self.n_head
        r = int(self.head_dim * 0.25)
        self.rotary_dims = r - r % 2
        self.eps = 1e-5


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head, self.head_dim, self.rot = c.n_head, c.head_dim, c.rotary_dims
        # Fused qkv, per-head interleaved: output features are
        # [head0: q k v, head1: q k v, ...], as in GPT-NeoX checkpoints.
        self.query_key_value = nn.Linear(c.d_model, 3 * c.d_model)
        self.dense = nn.Linear(c.d_model, c.d_model)

    def forward(self, x, cos, sin):
        b, t, d = x.shape
        qkv = self.query_key_value(x).view(b, t, self.n_head, 3 * self.head_dim)
        qkv = qkv.permute(0, 2, 1, 3)  # [b, h, t, 3*hd]
        q, k, v = qkv.split(self.head_dim, dim=-1)
        r = self.rot
        if r > 0:
            cos, sin = cos.to(q.dtype), sin.to(q.dtype)
            qr, kr = q[..., :r], k[..., :r]
            q = torch.cat((qr * cos + rotate_half(qr) * sin, q[..., r:]), dim=-1)
            k = torch.cat((kr * cos + rotate_half(kr) * sin, k[..., r:]), dim=-1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.dense(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(c.d_model, 4 * c.d_model)
        self.dense_4h_to_h = nn.Linear(4 * c.d_model, c.d_model)

    def forward(self, x):
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x), approximate="none"))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(c.d_model, eps=c.eps)
        self.post_attention_layernorm = nn.LayerNorm(c.d_model, eps=c.eps)
        self.attention = Attention(c)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin):
        # Parallel residual: x + attn(ln1(x)) + mlp(ln2(x)).
        return (
            x
            + self.attention(self.input_layernorm(x), cos, sin)
            + self.mlp(self.post_attention_layernorm(x))
        )


class GPTNeoX(nn.Module):
    def __init__(self, c, seq):
        super().__init__()
        self.c = c
        self.embed_in = nn.Embedding(c.vocab, c.d_model)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.n_layer))
        self.final_layer_norm = nn.LayerNorm(c.d_model, eps=c.eps)
        self.embed_out = nn.Linear(c.d_model, c.vocab, bias=False)
        # Rotary tables, f32, base 10000, rotate-half layout.
        r = c.rotary_dims
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, r, 2, dtype=torch.float32) / max(r, 1)))
        ang = torch.outer(torch.arange(seq, dtype=torch.float32), inv_freq)
        emb = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        self._init()

    def _init(self):
        out_std = 0.02 / math.sqrt(2 * self.c.n_layer)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.zeros_(p) if name.endswith("bias") else nn.init.ones_(p)
            elif name.endswith("dense.weight") or name.endswith("dense_4h_to_h.weight"):
                nn.init.normal_(p, std=out_std)
            else:
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens):
        t = tokens.shape[1]
        cos, sin = self.cos[:t], self.sin[:t]
        x = self.embed_in(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.embed_out(self.final_layer_norm(x))


class LossModel(nn.Module):
    """Forward + mean cross-entropy, one module so torch.compile sees both."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch):
        inputs, targets = batch[:, :-1], batch[:, 1:]
        logits = self.model(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def flops_per_token(model, seq):
    c = model.c
    n = sum(p.numel() for p in model.parameters()) - model.embed_in.weight.numel()
    six_n = 6.0 * n
    attention = 12.0 * c.n_layer * c.d_model * seq
    return n, {"six_n": six_n, "attention": attention, "total": six_n + attention}


def percentile(xs, q):
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def make_step(loss_model, opt, params, autocast):
    def step(batch):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss = loss_model(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step


def make_optimizer(params, device):
    kw = dict(lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    if device.type == "cuda":
        try:
            return torch.optim.AdamW(params, fused=True, **kw), "fused"
        except (TypeError, RuntimeError):
            pass
    return torch.optim.AdamW(params, **kw), "default"


def cpu_smoke(vocab):
    torch.manual_seed(0)
    dev = torch.device("cpu")
    c = Config("tiny", vocab)
    seq, batch = 32, 2
    model = GPTNeoX(c, seq)
    params = [p for p in model.parameters() if p.requires_grad]
    opt, kind = make_optimizer(params, dev)
    lm = LossModel(model)
    data = torch.randint(0, c.vocab, (batch, seq + 1), device=dev)
    n, fpt = flops_per_token(model, seq)
    print(f"cpu smoke: tiny, seq {seq}, batch {batch}, f32, vocab {c.vocab}, "
          f"N={n}, flops/token {fpt['total']:.4g}, AdamW {kind}")
    for i in range(2):
        loss = lm(data)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        v = loss.item()
        print(f"step {i}: loss {v:.4f} (ln vocab = {math.log(c.vocab):.4f})")
        if not math.isfinite(v):
            print("cpu smoke: non-finite loss", file=sys.stderr)
            return 1
    return 0


def is_oom(e):
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(e, oom):
        return True
    return "out of memory" in str(e).lower()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="pythia-160m", choices=list(PRESETS))
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--mode", default="eager", choices=["eager", "compile"])
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="peak dense bf16 TFLOP/s for MFU (default: by device name)")
    ap.add_argument("--json", action="store_true", help="print one JSON line only")
    ap.add_argument("--cpu-smoke", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.cpu_smoke:
        return cpu_smoke(a.vocab)
    if a.steps < 1 or a.seq < 1 or a.batch < 1 or a.warmup < 0:
        ap.error("--steps, --seq and --batch must be >= 1, --warmup >= 0")

    if not torch.cuda.is_available():
        why = "torch.cuda.is_available() is False"
        if torch.version.cuda is None:
            why += f" (this torch {torch.__version__} is built without CUDA)"
        print(f"no CUDA device: {why}", file=sys.stderr)
        return 3

    def log(msg):
        print(msg, file=sys.stderr if a.json else sys.stdout, flush=True)

    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    torch.manual_seed(0)
    torch.set_float32_matmul_precision("high")
    impl = f"pytorch-{a.mode}"
    c = Config(a.model, a.vocab)
    torch.cuda.reset_peak_memory_stats(dev)
    try:
        model = GPTNeoX(c, a.seq).to(dev)
        params = [p for p in model.parameters() if p.requires_grad]
        opt, opt_kind = make_optimizer(params, dev)
        lm = LossModel(model)
        if a.mode == "compile":
            lm = torch.compile(lm)
        step = make_step(lm, opt, params, autocast=True)
        data = torch.randint(0, c.vocab, (a.batch, a.seq + 1), device=dev)
        n, fpt = flops_per_token(model, a.seq)
        log(f"{impl}: {a.model} (L{c.n_layer} d{c.d_model} h{c.n_head}, vocab {c.vocab}, "
            f"N={n / 1e6:.1f}M non-embedding incl. embed_out), seq {a.seq}, batch {a.batch}, "
            f"{name}, torch {torch.__version__}, AdamW {opt_kind}")

        for _ in range(a.warmup):
            step(data)
        torch.cuda.synchronize(dev)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(a.steps)]
        for s, e in events:
            s.record()
            loss = step(data)
            e.record()
        torch.cuda.synchronize(dev)
        last_loss = loss.item()
    except Exception as e:  # noqa: BLE001 - OOM comes wrapped in several types
        if is_oom(e):
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"out of memory: {a.model} seq {a.seq} batch {a.batch} ({impl}) does not fit "
                  f"on {name}: {first}", file=sys.stderr)
            return 4
        raise

    ms = [s.elapsed_time(e) for s, e in events]
    mean = sum(ms) / len(ms)
    tokens_per_s = a.batch * a.seq / (mean / 1e3)
    peak = a.peak_tflops * 1e12 if a.peak_tflops else next(
        (v for k, v in PEAK_BF16 if k in name), None)
    mfu = fpt["total"] * tokens_per_s / peak if peak else None
    if not math.isfinite(last_loss):
        print(f"warning: non-finite loss {last_loss}", file=sys.stderr)
    r = {
        "impl": impl,
        "model": a.model,
        "seq": a.seq,
        "batch": a.batch,
        "steps": a.steps,
        "warmup": a.warmup,
        "tokens_per_s": tokens_per_s,
        "mfu": mfu,
        "step_ms": {"p50": percentile(ms, 50), "p90": percentile(ms, 90),
                    "p99": percentile(ms, 99), "mean": mean},
        "peak_mem_gib": torch.cuda.max_memory_allocated(dev) / 2**30,
        "device": name,
        "torch": torch.__version__,
        "n_params": n,
        "flops_per_token": fpt,
        "peak_flops": peak,
        "loss": last_loss,
    }
    if a.json:
        print(json.dumps(r))
    else:
        sm = r["step_ms"]
        mfu_s = f"{100 * mfu:.1f}%" if mfu is not None else "n/a (unknown device; --peak-tflops)"
        print(f"tokens/s {tokens_per_s:,.0f}   MFU {mfu_s}   loss {last_loss:.4f}")
        print(f"step ms  p50 {sm['p50']:.2f}  p90 {sm['p90']:.2f}  p99 {sm['p99']:.2f}  "
              f"mean {sm['mean']:.2f}  ({a.steps} steps after {a.warmup} warm-up)")
        print(f"peak memory {r['peak_mem_gib']:.2f} GiB   flops/token {fpt['total']:.4g} "
              f"(6N {fpt['six_n']:.4g} + attention {fpt['attention']:.4g})"
              + (f"   peak {peak / 1e12:.0f} TFLOP/s" if peak else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
