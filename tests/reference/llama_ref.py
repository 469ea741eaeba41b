#!/usr/bin/python3
"""PyTorch reference of lamina's Llama 3.2 graph (tests/reference).

Reads the float weights a test wrote with tests/engine_test_models.h
(<prefix>.json: hyperparameters + tensor index; <prefix>.bin: raw f32, names
and shapes as in the lamina file: PyTorch [out, in] order, q/k rows in Meta's
interleaved-RoPE order) and writes golden logits, raw little-endian f32
[n_tokens x vocab], for

  --out-float FILE  the float model, computed in float64 (the ground truth);
  --out-q4 FILE     lamina's RTN q4 scheme simulated exactly ("8da4w"):
                    every block linear int4 group-32 symmetric weights
                    (scale = the smallest f16 >= max(amax/7.5, eps), as lamina-convert
                    --quant rtn; q = clamp(round_half_even(w/scale), -8, 7)),
                    embedding and output int8 per-row symmetric
                    (scale = max(amax/127, eps), q = clamp(round_half_even(w/scale), -127, 127)),
                    and before every quantized linear the input quantized per token,
                    asymmetric int8, exactly as kernels/ref/quant_acts_ref.cpp (torchao's
                    choose_qparams_per_token_asymmetric + quantize_per_token) in float32.
                    Integer dot products are exact (float64); everything else float32.
                    LoRA (y += scale * B(A x), float, unquantized x) and the SpinQuant
                    Hadamard on the ffn_down input are applied in both modes.

Usage: llama_ref.py --weights PREFIX --tokens 1,2,3 [--out-float F] [--out-q4 F]
       llama_ref.py --job PREFIX [--job PREFIX ...] --tokens 1,2,3
         (writes PREFIX.golden_float.f32 and PREFIX.golden_q4.f32 for each: one
         interpreter start for several models)
"""
import argparse
import json
import math
import sys

import numpy as np
import torch

EPS32 = torch.finfo(torch.float32).eps


def load(prefix):
    with open(prefix + ".json") as f:
        cfg = json.load(f)
    raw = open(prefix + ".bin", "rb").read()
    w = {}
    for name, t in cfg["tensors"].items():
        n = 1
        for d in t["shape"]:
            n *= d
        a = torch.frombuffer(bytearray(raw[t["offset"]:t["offset"] + 4 * n]), dtype=torch.float32)
        w[name] = a.reshape(t["shape"]).clone()
    return cfg, w


def rope_freqs(cfg, head_dim):
    """llama3-scaled inverse frequencies, float64 (as lamina's engine/rope.cpp)."""
    out = []
    for j in range(head_dim // 2):
        freq = 1.0 / (cfg["rope_theta"] ** ((2 * j) / head_dim))
        if cfg["llama3"]:
            orig, factor = cfg["rope_orig"], cfg["rope_factor"]
            low, high = cfg["rope_low"], cfg["rope_high"]
            wavelen = 2 * math.pi / freq
            if wavelen < orig / high:
                pass
            elif wavelen > orig / low:
                freq = freq / factor
            else:
                smooth = (orig / wavelen - low) / (high - low)
                freq = (1 - smooth) * freq / factor + smooth * freq
        out.append(freq)
    return torch.tensor(out, dtype=torch.float64)


def hadamard(x):
    """Orthonormal fast Walsh-Hadamard transform over the last dim (natural order)."""
    n = x.shape[-1]
    h = 1
    y = x.clone()
    while h < n:
        y = y.reshape(*x.shape[:-1], n // (2 * h), 2, h)
        a, b = y[..., 0, :], y[..., 1, :]
        y = torch.stack((a + b, a - b), dim=-2).reshape(*x.shape[:-1], n)
        h *= 2
    return y * (1.0 / math.sqrt(n))


# ---------------------------------------------------------------- quantization
def quant_q4(w):
    """int4 group-32 symmetric (torchao get_group_qparams_symmetric): values, scales."""
    n, k = w.shape
    kp = (k + 31) // 32 * 32
    wp = torch.zeros(n, kp, dtype=torch.float32)
    wp[:, :k] = w
    g = wp.reshape(n, kp // 32, 32)
    amax = g.abs().amax(dim=-1, keepdim=True)
    scale = torch.clamp(amax / 7.5, min=EPS32)
    # lamina-convert --quant rtn stores f16 scales: the smallest f16 >= scale.
    sn = scale.numpy()
    h = sn.astype(np.float16)
    h = np.where(h.astype(np.float32) < sn, np.nextafter(h, np.float16(np.inf)), h)
    scale = torch.from_numpy(h.astype(np.float32))
    q = torch.clamp(torch.round(g / scale), -8, 7)
    return q, scale  # [n, G, 32], [n, G, 1]


def quant_q8(w):
    amax = w.abs().amax(dim=-1, keepdim=True)
    scale = torch.clamp(amax / 127.0, min=EPS32)
    q = torch.clamp(torch.round(w / scale), -127, 127)
    return q, scale  # [n, k], [n, 1]


def quant_acts(x):
    """Per-token asymmetric int8, float32, exactly kernels/ref (returns q, scale, zp)."""
    x = x.to(torch.float32)
    zero = torch.zeros((), dtype=torch.float32)
    mn = torch.minimum(x.amin(dim=-1, keepdim=True), zero)
    mx = torch.maximum(x.amax(dim=-1, keepdim=True), zero)
    scale = (mx - mn) / torch.tensor(255.0, dtype=torch.float32)
    scale = torch.where(scale >= EPS32, scale, torch.full_like(scale, EPS32))
    dmin = mn / scale
    dmax = mx / scale
    zp = torch.where((-128.0 + dmin) + (127.0 + dmax) > 0, -128.0 - dmin, 127.0 - dmax)
    zp = torch.round(torch.clamp(zp, -128.0, 127.0))
    inv = torch.tensor(1.0, dtype=torch.float32) / scale
    q = torch.clamp(torch.round(x * inv + zp), -128.0, 127.0)
    return q, scale, zp


class Linear:
    def __init__(self, w, mode, kind, lora=None, lora_scale=0.0, hadamard_input=False):
        self.mode, self.kind = mode, kind  # kind: "q4" | "q8"
        self.lora, self.lora_scale, self.had = lora, lora_scale, hadamard_input
        self.k = w.shape[1]
        if mode == "float":
            self.w = w.to(torch.float64)
        elif kind == "q4":
            q, s = quant_q4(w)
            self.q = q.to(torch.float64)   # [n, G, 32]
            self.s = s.to(torch.float64)   # [n, G, 1]
        else:
            q, s = quant_q8(w)
            self.q, self.s = q.to(torch.float64), s.to(torch.float64)

    def __call__(self, x):
        if self.had:
            x = hadamard(x)
        if self.mode == "float":
            y = x.to(torch.float64) @ self.w.T
        else:
            q, sa, zp = quant_acts(x)
            xq = (q - zp).to(torch.float64)  # exact integers
            if self.kind == "q4":
                n, G, _ = self.q.shape
                kp = G * 32
                xp = torch.zeros(xq.shape[0], kp, dtype=torch.float64)
                xp[:, : self.k] = xq
                xg = xp.reshape(-1, G, 32)
                # per-group integer dots, scaled by the group scale, summed
                y = torch.einsum("mgk,ngk->mng", xg, self.q)
                y = (y * self.s[:, :, 0].unsqueeze(0)).sum(-1)
            else:
                y = (xq @ self.q.T) * self.s[:, 0].unsqueeze(0)
            y = (y * sa.to(torch.float64)).to(torch.float32)
        if self.lora is not None:
            a, b = self.lora
            t = x.to(torch.float64) @ a.to(torch.float64).T
            u = t @ b.to(torch.float64).T
            y = y.to(torch.float64) + self.lora_scale * u
        return y.to(torch.float64 if self.mode == "float" else torch.float32)


def forward(cfg, w, tokens, mode):
    dt = torch.float64 if mode == "float" else torch.float32
    dim, nh, nkv = cfg["dim"], cfg["n_heads"], cfg["n_kv_heads"]
    hd = dim // nh
    eps = cfg["norm_eps"]
    T = len(tokens)

    def lin(name, kind="q4"):
        lora = None
        if cfg["lora_rank"] > 0 and name + ".lora_a" in w:
            lora = (w[name + ".lora_a"], w[name + ".lora_b"])
        had = bool(cfg["hadamard"]) and name.endswith("ffn_down")
        return Linear(w[name], mode, kind, lora, cfg["lora_scale"], had)

    def rmsnorm(x, g):
        # as kernels/ref: inv = 1 / sqrt(sum(x^2) / n + eps); (x * inv) * g
        # (the sum of squares in float64, rounded: within an ulp of lamina's)
        x = x.to(dt)
        ss = (x.to(torch.float64) ** 2).sum(-1, keepdim=True).to(dt)
        inv = 1.0 / torch.sqrt(ss / x.shape[-1] + eps)
        return (x * inv) * g.to(dt)

    emb = w["tok_embd"]
    if mode == "float":
        x = emb[tokens].to(dt)
    else:
        q, s = quant_q8(emb)
        x = (q * s)[tokens].to(dt)  # Q8C lookup: w * scale in f32
    freqs = rope_freqs(cfg, hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freqs[None, :]
    cos, sin = torch.cos(ang).to(dt), torch.sin(ang).to(dt)

    def rope(v, n):  # v [T, n*hd], interleaved pairs
        v = v.to(dt).reshape(T, n, hd // 2, 2)
        a, b = v[..., 0], v[..., 1]
        c, s = cos[:, None, :], sin[:, None, :]
        return torch.stack((a * c - b * s, a * s + b * c), dim=-1).reshape(T, n * hd)

    mask = torch.full((T, T), float("-inf"), dtype=dt).triu(1)
    for l in range(cfg["n_layers"]):
        p = f"blk.{l}."
        h = rmsnorm(x, w[p + "attn_norm"])
        q = rope(lin(p + "attn_q")(h), nh).reshape(T, nh, hd).transpose(0, 1)
        k = rope(lin(p + "attn_k")(h), nkv).reshape(T, nkv, hd).transpose(0, 1)
        v = lin(p + "attn_v")(h).to(dt).reshape(T, nkv, hd).transpose(0, 1)
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        att = (q @ k.transpose(1, 2)) / math.sqrt(hd) + mask
        o = (torch.softmax(att, dim=-1) @ v).transpose(0, 1).reshape(T, dim)
        x = x + lin(p + "attn_output")(o).to(dt)
        h = rmsnorm(x, w[p + "ffn_norm"])
        g = lin(p + "ffn_gate")(h).to(dt)
        u = lin(p + "ffn_up")(h).to(dt)
        # silu as kernels/ref computes it: (g / (1 + exp(-g))) * u
        x = x + lin(p + "ffn_down")((g / (1 + torch.exp(-g))) * u).to(dt)
    x = rmsnorm(x, w["output_norm"])
    out_w = w["tok_embd"] if cfg["tied"] else w["output"]
    return Linear(out_w, mode, "q8")(x).to(torch.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights")
    ap.add_argument("--job", action="append", default=[])
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out-float")
    ap.add_argument("--out-q4")
    a = ap.parse_args()
    tokens = [int(t) for t in a.tokens.split(",")]
    jobs = [(p, p + ".golden_float.f32", p + ".golden_q4.f32") for p in a.job]
    if a.weights:
        jobs.append((a.weights, a.out_float, a.out_q4))
    if not jobs:
        ap.error("give --weights or --job")
    for prefix, out_float, out_q4 in jobs:
        cfg, w = load(prefix)
        for mode, path in (("float", out_float), ("q4", out_q4)):
            if path:
                with torch.no_grad():
                    logits = forward(cfg, w, tokens, mode)
                with open(path, "wb") as f:
                    f.write(logits.contiguous().numpy().astype("<f4").tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
