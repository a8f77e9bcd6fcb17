#!/usr/bin/env python3
"""The PyTorch anchor for gpu_bench and train_bench: a nanoGPT-style loop over the same model and shapes.

The model is ours, written in PyTorch: the tiny, XS and L presets (trainer_core/config/presets.cpp),
pre-norm RMSNorm blocks with rotary multi-head attention (F.scaled_dot_product_attention, causal),
a GELU MLP, no biases, embeddings tied to the output head. One training step is a forward and
backward over batch x seq random tokens, gradient clipping to 1 and AdamW (fused where the device
has it): what gpu_bench times for our backend. On CUDA it runs under bf16 autocast, with
torch.compile when that works there (eager otherwise, and the line says which); on the CPU in
fp32, where the figures only prove the script works. MFU uses gpu_bench's formula (docs/science.md:
6 N_active + 6 seq sum over layers of n_head (d_qk + d_v)) and peak.

  python3 bench/torch_reference.py [--device cuda|cpu] [--quick] [--steps N] [--peak-tflops X]
                                   [--case PRESET:SEQ:BATCH ...] [--threads N]

Prints one line per case, "torch PRESET seq S batch B MODE tok/s ... MFU ...", which
scripts/gpu-check.sh puts next to gpu_bench's lines; train_bench runs it one --case at a time
on the CPU (--threads: torch.set_num_threads) to print PyTorch eager beside each of its cases.
"""
import argparse
import math
import sys
import time

import torch
import torch.nn.functional as F

# name: (layers, hidden, heads, ffn, vocab): trainer_core/config/presets.cpp
PRESETS = {"tiny": (2, 128, 4, 512, 256), "XS": (6, 256, 8, 1024, 50257), "L": (12, 768, 12, 3072, 50257)}


class Block(torch.nn.Module):
    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.heads = heads
        self.norm1 = torch.nn.RMSNorm(hidden, eps=1e-5) if hasattr(torch.nn, "RMSNorm") else RmsNorm(hidden)
        self.qkv = torch.nn.Linear(hidden, 3 * hidden, bias=False)
        self.proj = torch.nn.Linear(hidden, hidden, bias=False)
        self.norm2 = torch.nn.RMSNorm(hidden, eps=1e-5) if hasattr(torch.nn, "RMSNorm") else RmsNorm(hidden)
        self.up = torch.nn.Linear(hidden, ffn, bias=False)
        self.down = torch.nn.Linear(ffn, hidden, bias=False)

    def forward(self, x, cos, sin):
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        y = attention(q, k, v)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.down(F.gelu(self.up(self.norm2(x)), approximate="tanh"))


class RmsNorm(torch.nn.Module):  # torch < 2.4 has no torch.nn.RMSNorm
    def __init__(self, hidden):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(hidden))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def attention(q, k, v):
    """Causal attention: PyTorch's fused kernel (torch >= 2.0), else materialised (Debian's 1.13)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1) @ v


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Gpt(torch.nn.Module):
    def __init__(self, layers, hidden, heads, ffn, vocab, seq):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.blocks = torch.nn.ModuleList(Block(hidden, heads, ffn) for _ in range(layers))
        self.norm = torch.nn.RMSNorm(hidden, eps=1e-5) if hasattr(torch.nn, "RMSNorm") else RmsNorm(hidden)
        head_dim = hidden // heads
        inv = 1.0 / (10000.0 ** (torch.arange(0, head_dim // 2).float() / (head_dim // 2)))
        angles = torch.outer(torch.arange(seq).float(), inv)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, tokens, targets):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, self.cos, self.sin)
        logits = self.norm(x) @ self.embed.weight.t()  # tied head
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def flops_per_token(layers, hidden, heads, ffn, vocab, seq):
    active = layers * (4 * hidden * hidden + 2 * hidden * ffn) + vocab * hidden
    return 6.0 * active + 6.0 * seq * layers * heads * (2 * (hidden // heads))


def default_peak(device):
    if device.type != "cuda":
        return 0.0
    name = torch.cuda.get_device_name(device)
    if "H100" in name and "PCIe" in name:
        return 756.0
    return 989.4 if ("H100" in name or "H200" in name) else 0.0


def run_case(preset, seq, batch, device, steps, peak, compile_wanted):
    layers, hidden, heads, ffn, vocab = PRESETS[preset]
    torch.manual_seed(1)
    model = Gpt(layers, hidden, heads, ffn, vocab, seq).to(device)
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, **({"fused": True} if fused else {}))
    step_fn = model
    mode = "eager"
    if compile_wanted:
        try:
            step_fn = torch.compile(model)
            mode = "compiled"
        except Exception as e:  # noqa: BLE001: any failure to compile means eager, said so
            print(f"torch.compile unavailable ({type(e).__name__}: {e}); eager", file=sys.stderr)
    tokens = torch.randint(0, vocab, (batch, seq), device=device)
    targets = torch.randint(0, vocab, (batch, seq), device=device)
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if device.type == "cuda" else None

    def step():
        opt.zero_grad(set_to_none=True)
        if autocast:
            with autocast:
                loss = step_fn(tokens, targets)
        else:
            loss = step_fn(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    try:
        step()  # warm-up: allocations, kernels, compilation
    except Exception as e:  # noqa: BLE001: a compiled graph that fails at run time: eager
        if mode != "compiled":
            raise
        print(f"torch.compile failed at run time ({type(e).__name__}: {e}); eager", file=sys.stderr)
        step_fn, mode = model, "eager"
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        loss = step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / steps
    tok_s = batch * seq / seconds
    tflops = tok_s * flops_per_token(layers, hidden, heads, ffn, vocab, seq) / 1e12
    precision = "bf16" if device.type == "cuda" else "fp32"
    mfu = f"{100 * tflops / peak:5.1f}%" if peak > 0 else "  n/a"
    print(f"torch {preset:<4} seq {seq:<5} batch {batch:<4} {precision:<4} {mode:<8} {tok_s:10.0f} tok/s "
          f"{tflops:7.1f} TFLOP/s  MFU {mfu}  step {1000 * seconds:7.1f} ms  loss {float(loss):.3f}  "
          f"(torch {torch.__version__}, {device.type})", flush=True)
    if not math.isfinite(float(loss)):
        raise RuntimeError(f"{preset}: the loss is not finite")


def main(argv):
    parser = argparse.ArgumentParser(description="PyTorch anchor for gpu_bench")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="XS only, small batches (the CPU test)")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per case (default 10, quick 2)")
    parser.add_argument("--peak-tflops", type=float, default=-1)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--case", action="append", default=[], metavar="PRESET:SEQ:BATCH",
                        help="run these cases instead of the defaults (repeatable)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (CPU)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("torch_reference: no CUDA device for PyTorch here; nothing measured")
        return 1
    peak = args.peak_tflops if args.peak_tflops >= 0 else default_peak(device)
    steps = args.steps or (2 if args.quick else 10)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; MFU against {peak:.1f} TFLOP/s dense bf16 (formula of gpu_bench)")
    # gpu_bench's cases (sequences per step): XS 512 x 64, L 512 x 16, L 1024 x 8.
    cases = [("XS", 128, 2)] if args.quick else [("XS", 512, 64), ("L", 512, 16), ("L", 1024, 8)]
    if args.case:
        cases = [(p, int(s), int(b)) for p, s, b in (c.split(":") for c in args.case)]
    compile_wanted = device.type == "cuda" and not args.no_compile
    for preset, seq, batch in cases:
        run_case(preset, seq, batch, device, steps, peak, compile_wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
