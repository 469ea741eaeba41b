#!/usr/bin/python3
"""Writes small Meta-layout quantized Llama 3.2 checkpoints and golden logits.

Run with Debian's python3 (it has torch): /usr/bin/python3 tests/gen_meta_checkpoint.py ...

Output directory (checkpoint as Meta's llama-models / ExecuTorch read it):
  consolidated.00.pth   torch.save of the state dict (Meta's key names)
  params.json           dim, n_layers, ..., quantization_args, lora_args (QAT+LoRA)
  tokens.txt            the prompt ids used for the golden logits (comma separated)
  golden_logits.f32     [n_tokens x vocab] little-endian f32, PyTorch reference
  greedy.txt            ids of the reference's greedy continuation (comma separated)

Flavours, as Meta released Llama 3.2 1B/3B Instruct (issue 6):
  qat_lora   int4 values in int8 tensors + f32 scales [out, in/32]; bf16 LoRA
             adaptors A [16, in], B [out, 16] on every block linear, scale 2.0;
             state dict is an OrderedDict with _metadata (torch's BUILD opcode).
  spinquant  same int4 layout with scales [out, in/32, 1]; no adaptors; R4: an
             online fast Walsh-Hadamard transform before w2's activation
             quantization; quantization_args.spinquant = true; plain dict.
  bf16       an unquantized Meta checkpoint (as in Hugging Face's original/
             folder): every weight bf16, no quantization_args (float reference).
Quantized flavours: tok_embeddings / output int8 with per-row f32 scales
(separate, not tied).

The reference implements ExecuTorch's math for these checkpoints
(--preq_mode 8da4w_output_8da8w, --preq_embedding_quantize 8,0):
  - activations of every linear (block linears AND the output layer) are
    quantized per token, asymmetric int8, exactly as lamina's
    kernels/ref/quant_acts_ref.cpp (torchao choose_qparams_per_token_asymmetric,
    f32 arithmetic, round half to even, q = clamp(round(x * (1/s) + zp))),
    then dequantized; weights are dequantized (int * scale); the matmul is
    accumulated in float64 and rounded to f32;
  - LoRA: y += scale * B(A(x)) in float on the unquantized x;
  - SpinQuant R4: natural-order FWHT x 1/sqrt(n) on the FFN hidden before w2;
  - embedding = int8 row * f32 row scale; RMSNorm, interleaved-pair RoPE with
    llama3 scaling (factor 32, low 1, high 4, original 8192), GQA attention.
"""
import argparse
import collections
import json
import math
import os
import struct

import torch


def ffn_hidden(dim, multiple_of, mult):
    h = int(2 * (4 * dim) / 3)
    if mult is not None:
        h = int(mult * h)
    return multiple_of * ((h + multiple_of - 1) // multiple_of)


def quant_int4_groups(w, group=32, f16_scales=False):
    """Symmetric int4 RTN per group of 32 (torchao style); returns int8 values, f32 scales
    (with f16_scales, each scale rounded to an f16 value first: f32 tensors whose every
    scale is exactly an f16, which lamina stores as f16)."""
    out_f, in_f = w.shape
    g = w.reshape(out_f, in_f // group, group)
    amax = g.abs().amax(dim=-1)
    scale = torch.clamp(amax / 7.5, min=torch.finfo(torch.float32).eps).float()
    if f16_scales:
        scale = scale.half().float()
    q = torch.clamp(torch.round(g / scale[..., None]), -8, 7).to(torch.int8)
    return q.reshape(out_f, in_f), scale


def quant_int8_rows(w):
    amax = w.abs().amax(dim=-1)
    scale = torch.clamp(amax / 127.0, min=torch.finfo(torch.float32).eps).float()
    q = torch.clamp(torch.round(w / scale[:, None]), -127, 127).to(torch.int8)
    return q, scale


def quant_acts(x):
    """Per-token asymmetric int8, bit-exact with kernels/ref/quant_acts_ref.cpp (f32)."""
    x = x.float()
    zero = torch.zeros((), dtype=torch.float32)
    mn = torch.minimum(x.amin(dim=-1), zero)
    mx = torch.maximum(x.amax(dim=-1), zero)
    s = (mx - mn) / torch.tensor(255.0, dtype=torch.float32)
    eps = torch.tensor(torch.finfo(torch.float32).eps, dtype=torch.float32)
    s = torch.where(s >= eps, s, eps)
    dmin = mn / s
    dmax = mx / s
    z = torch.where((-128.0 + dmin) + (127.0 + dmax) > 0, -128.0 - dmin, 127.0 - dmax)
    z = torch.round(torch.clamp(z, -128.0, 127.0))  # torch.round: half to even
    inv = torch.tensor(1.0, dtype=torch.float32) / s
    q = torch.clamp(torch.round(x * inv[:, None] + z[:, None]), -128.0, 127.0)
    return q, s, z


def qlinear(x, w_int, w_scale_full):
    """8-bit dynamic activations x dequantized weights; float64 accumulation."""
    q, s, z = quant_acts(x)
    a = (q - z[:, None]).double()
    w = w_int.double() * w_scale_full.double()
    return ((a @ w.T) * s.double()[:, None]).float()


def hadamard(x):
    n = x.shape[-1]
    y = x.clone()
    h = 1
    while h < n:
        y = y.reshape(*x.shape[:-1], n // (2 * h), 2, h)
        a, b = y[..., 0, :], y[..., 1, :]
        y = torch.stack((a + b, a - b), dim=-2).reshape(*x.shape[:-1], n)
        h *= 2
    return y * torch.tensor(1.0 / math.sqrt(n), dtype=torch.float32)


def rope_freqs(head_dim, theta, scaled):
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    if not scaled:
        return freqs
    factor, low, high, old = 32.0, 1.0, 4.0, 8192.0
    low_wl, high_wl = old / low, old / high
    out = []
    for f in freqs.tolist():
        wl = 2 * math.pi / f
        if wl < high_wl:
            out.append(f)
        elif wl > low_wl:
            out.append(f / factor)
        else:
            sm = (old / wl - low) / (high - low)
            out.append((1 - sm) * f / factor + sm * f)
    return torch.tensor(out, dtype=torch.float64)


def apply_rope(x, pos, freqs):
    # x [T, H, hd]; interleaved pairs (2j, 2j+1)
    ang = pos[:, None].double() * freqs[None, :]
    cos = torch.cos(ang).float()[:, None, :]
    sin = torch.sin(ang).float()[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def rmsnorm(x, w, eps):
    ms = (x.double() ** 2).mean(dim=-1, keepdim=True)
    return (x * torch.rsqrt(ms + eps).float()) * w.float()


class Ref:
    def __init__(self, sd, p, flavour):
        self.sd, self.p, self.flavour = sd, p, flavour
        self.dim = p["dim"]
        self.nh, self.nkv = p["n_heads"], p["n_kv_heads"]
        self.hd = self.dim // self.nh
        self.eps = p["norm_eps"]
        self.freqs = rope_freqs(self.hd, p["rope_theta"], p["use_scaled_rope"])
        self.lora_scale = p.get("lora_args", {}).get("scale", 0.0)

    def lin(self, name, x):
        w = self.sd[name + ".weight"]
        if w.is_floating_point():  # unquantized (bf16) Meta checkpoint: float matmul
            return (x.double() @ w.double().T).float()
        s = self.sd[name + ".scales"].reshape(w.shape[0], -1)
        full = s.repeat_interleave(32, dim=1)
        y = qlinear(x, w, full)
        a = name + ".adaptor.A.weight"
        if a in self.sd:
            A = self.sd[a].float()
            B = self.sd[name + ".adaptor.B.weight"].float()
            y = y + self.lora_scale * ((x @ A.T) @ B.T)
        return y

    def forward(self, tokens):
        sd, T = self.sd, len(tokens)
        ids = torch.tensor(tokens)
        x = sd["tok_embeddings.weight"][ids].float()
        if "tok_embeddings.scales" in sd:
            x = x * sd["tok_embeddings.scales"].reshape(-1)[ids][:, None]
        pos = torch.arange(T)
        mask = torch.full((T, T), float("-inf")).triu(1)
        for i in range(self.p["n_layers"]):
            L = "layers.%d." % i
            h = rmsnorm(x, sd[L + "attention_norm.weight"], self.eps)
            q = self.lin(L + "attention.wq", h).reshape(T, self.nh, self.hd)
            k = self.lin(L + "attention.wk", h).reshape(T, self.nkv, self.hd)
            v = self.lin(L + "attention.wv", h).reshape(T, self.nkv, self.hd)
            q, k = apply_rope(q, pos, self.freqs), apply_rope(k, pos, self.freqs)
            rep = self.nh // self.nkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            att = torch.einsum("thd,shd->hts", q.double(), k.double()) / math.sqrt(self.hd)
            att = torch.softmax(att + mask.double(), dim=-1)
            o = torch.einsum("hts,shd->thd", att, v.double()).float().reshape(T, self.dim)
            x = x + self.lin(L + "attention.wo", o)
            h = rmsnorm(x, sd[L + "ffn_norm.weight"], self.eps)
            g = self.lin(L + "feed_forward.w1", h)
            u = self.lin(L + "feed_forward.w3", h)
            f = (g / (1.0 + torch.exp(-g))) * u
            if self.flavour == "spinquant":
                f = hadamard(f)
            x = x + self.lin(L + "feed_forward.w2", f)
        h = rmsnorm(x, sd["norm.weight"], self.eps)
        ow = sd["output.weight"]
        if ow.is_floating_point():
            return (h.double() @ ow.double().T).float()
        os_ = sd["output.scales"].reshape(-1, 1).expand(ow.shape)
        return qlinear(h, ow, os_)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--flavour", choices=["qat_lora", "spinquant", "bf16"], required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=302)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--tokens", default="300,17,42,99,7,256,3,150")
    ap.add_argument("--greedy", type=int, default=8)
    ap.add_argument("--scales-3d", type=int, default=-1,
                    help="1: scales [out, in/32, 1]; 0: [out, in/32]; default by flavour")
    ap.add_argument("--no-golden", action="store_true", help="checkpoint only (large shapes)")
    ap.add_argument("--f16-scales", action="store_true",
                    help="int4 group scales rounded to f16 values (still stored as f32)")
    ap.add_argument("--no-spinquant-flag", action="store_true",
                    help="spinquant: omit quantization_args.spinquant (converter infers it)")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    dim, nh, nkv = a.dim, a.heads, a.kv_heads
    hd = dim // nh
    multiple_of, mult = 256, 1.5
    hidden = ffn_hidden(dim, multiple_of, mult)
    scales_3d = (a.flavour == "spinquant") if a.scales_3d < 0 else bool(a.scales_3d)
    params = {
        "dim": dim, "n_layers": a.layers, "n_heads": nh, "n_kv_heads": nkv,
        "vocab_size": a.vocab, "ffn_dim_multiplier": mult, "multiple_of": multiple_of,
        "norm_eps": 1e-05, "rope_theta": 500000.0, "use_scaled_rope": True,
    }
    if a.flavour != "bf16":
        params["quantization_args"] = {"group_size": 32}
    if a.flavour == "qat_lora":
        params["lora_args"] = {"rank": a.rank, "scale": 2.0}
    elif a.flavour == "spinquant" and not a.no_spinquant_flag:
        params["quantization_args"]["spinquant"] = True

    sd = collections.OrderedDict() if a.flavour == "qat_lora" else {}
    norm_dtype = torch.float32 if a.flavour == "spinquant" else torch.bfloat16

    def rows_q8(name, n, k):
        if a.flavour == "bf16":
            sd[name + ".weight"] = torch.randn(n, k).to(torch.bfloat16)
            return
        q, s = quant_int8_rows(torch.randn(n, k))
        sd[name + ".weight"] = q
        sd[name + ".scales"] = s

    rows_q8("tok_embeddings", a.vocab, dim)
    sd["norm.weight"] = (1.0 + 0.1 * torch.randn(dim)).to(norm_dtype)
    for i in range(a.layers):
        L = "layers.%d." % i
        sd[L + "attention_norm.weight"] = (1.0 + 0.1 * torch.randn(dim)).to(norm_dtype)
        sd[L + "ffn_norm.weight"] = (1.0 + 0.1 * torch.randn(dim)).to(norm_dtype)
        for name, n, k in (("attention.wq", nh * hd, dim), ("attention.wk", nkv * hd, dim),
                           ("attention.wv", nkv * hd, dim), ("attention.wo", dim, nh * hd),
                           ("feed_forward.w1", hidden, dim), ("feed_forward.w2", dim, hidden),
                           ("feed_forward.w3", hidden, dim)):
            if a.flavour == "bf16":
                sd[L + name + ".weight"] = (torch.randn(n, k) / math.sqrt(k)).to(torch.bfloat16)
                continue
            q, s = quant_int4_groups(torch.randn(n, k) / math.sqrt(k), f16_scales=a.f16_scales)
            sd[L + name + ".weight"] = q
            sd[L + name + ".scales"] = s.unsqueeze(-1) if scales_3d else s
            if a.flavour == "qat_lora":
                sd[L + name + ".adaptor.A.weight"] = (torch.randn(a.rank, k) / math.sqrt(k)).to(torch.bfloat16)
                sd[L + name + ".adaptor.B.weight"] = (0.05 * torch.randn(n, a.rank)).to(torch.bfloat16)
    rows_q8("output", a.vocab, dim)
    if isinstance(sd, collections.OrderedDict):
        sd._metadata = collections.OrderedDict([("", {"version": 1})])

    os.makedirs(a.out, exist_ok=True)
    torch.save(sd, os.path.join(a.out, "consolidated.00.pth"))
    with open(os.path.join(a.out, "params.json"), "w") as f:
        json.dump(params, f, indent=2)

    if a.no_golden:
        return
    ref = Ref(sd, params, a.flavour)
    tokens = [int(t) for t in a.tokens.split(",")]
    with torch.no_grad():
        logits = ref.forward(tokens)
        seq = list(tokens)
        greedy = []
        for _ in range(a.greedy):
            nxt = int(ref.forward(seq)[-1].argmax())
            greedy.append(nxt)
            seq.append(nxt)
    with open(os.path.join(a.out, "golden_logits.f32"), "wb") as f:
        f.write(struct.pack("<%df" % logits.numel(), *logits.reshape(-1).tolist()))
    with open(os.path.join(a.out, "tokens.txt"), "w") as f:
        f.write(",".join(map(str, tokens)))
    with open(os.path.join(a.out, "greedy.txt"), "w") as f:
        f.write(",".join(map(str, greedy)))


if __name__ == "__main__":
    main()
