#!/usr/bin/python3
"""Writes small random Llama 3.2-shaped Hugging Face checkpoints for the
converter round-trip tests (Debian's python3-torch; no safetensors package).

    /usr/bin/python3 tests/gen_hf_model.py OUTROOT [--seed N] [--variants a,b]

Every variant is a directory OUTROOT/<name> with config.json,
generation_config.json and model.safetensors (or shards + index), plus
expected.safetensors: every tensor under its lamina name, as f32, in the
engine's order (q/k rows permuted from HF rotate-half to Meta's interleaved
RoPE pairing with the inverse of HF's convert_llama_weights_to_hf permute).
Before writing, the script checks with PyTorch that this permutation turns
HF's rotate-half RoPE into the interleaved RoPE the engine uses.
"""
import argparse
import json
import os
import struct
import sys

import torch

VARIANTS = {
    # GQA, llama3 rope scaling, theta 500000, tied, bf16, K of ffn_down = 176
    # (not a multiple of 32), one file.
    "tied_bf16": dict(dim=64, layers=2, heads=4, kv_heads=2, ffn=176, vocab=300, tied=True,
                      dtype="bf16", shards=1),
    # Untied, f32, dim 80 (no linear has K % 32 == 0), kv_heads 1, three shards.
    "untied_f32_sharded": dict(dim=80, layers=2, heads=5, kv_heads=1, ffn=96, vocab=260,
                               tied=False, dtype="f32", shards=3),
    # Untied f16, MHA (kv_heads == heads), two shards and NO index file (the
    # converter then finds model-*-of-*.safetensors by name).
    "untied_f16": dict(dim=64, layers=1, heads=2, kv_heads=2, ffn=128, vocab=256, tied=False,
                       dtype="f16", shards=2, no_index=True),
    # Tied, but saved with shared-tensor deduplication as lm_head.weight only
    # (no model.embed_tokens.weight): the converter uses it for both.
    "tied_lm_head_only": dict(dim=64, layers=1, heads=4, kv_heads=2, ffn=96, vocab=270,
                              tied=True, dtype="bf16", shards=1, tied_name="lm_head.weight"),
    # Llama 2 / Mistral vocabulary size (32000): for a SentencePiece-style
    # tokenizer.json (the test copies Mistral's beside it).
    "spm_vocab32000": dict(dim=64, layers=1, heads=2, kv_heads=1, ffn=64, vocab=32000, tied=True,
                           dtype="bf16", shards=1, no_expected=True),
    # A small Llama 2-style model with its own SentencePiece-style tokenizer.json
    # (written below), plain RoPE (theta 10000), and the same weights as a GGUF
    # file OUTROOT/spm_small.gguf (F32, llama.cpp's tensor names and q/k order,
    # a "llama" vocabulary): both conversions must greedy-decode the same text.
    "spm_small": dict(dim=64, layers=2, heads=4, kv_heads=2, ffn=128, vocab=None, tied=False,
                      dtype="bf16", shards=1, spm_tokenizer=True, plain_rope=True),
}
# Full-size shapes, only on request (--variants llama32_1b): for measuring the
# converter's time and peak RSS. No expected.safetensors (it would be 5 GB).
BIG_VARIANTS = {
    "llama32_1b": dict(dim=2048, layers=16, heads=32, kv_heads=8, ffn=8192, vocab=128256,
                       tied=True, dtype="bf16", shards=2, no_expected=True),
}

ST_DTYPE = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}
TORCH_DTYPE = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.float32:
        return t.numpy().tobytes()
    return t.view(torch.int16).numpy().tobytes()


def write_safetensors(path, tensors):
    """tensors: list of (name, tensor). 8-byte LE header length, JSON, data."""
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        b = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def hf_permute(w, n_heads, dim1, dim2):
    # transformers/models/llama/convert_llama_weights_to_hf.py (Meta -> HF).
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def hf_unpermute(w, n_heads, dim1, dim2):
    # Inverse (HF -> Meta interleaved order).
    return w.view(n_heads, 2, dim1 // n_heads // 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def rope_rotate_half(x, pos, theta):
    # HF LlamaRotaryEmbedding + apply_rotary_pos_emb on one head [hd].
    hd = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = pos * inv
    cos = torch.cat([ang.cos(), ang.cos()])
    sin = torch.cat([ang.sin(), ang.sin()])
    rot = torch.cat([-x[hd // 2:], x[:hd // 2]])
    return x * cos + rot * sin


def rope_interleaved(x, pos, theta):
    # Meta / llama2.c / lamina: pairs (2j, 2j+1) rotated by angle pos*inv[j].
    hd = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = pos * inv
    xr, xi = x[0::2], x[1::2]
    out = torch.empty_like(x)
    out[0::2] = xr * ang.cos() - xi * ang.sin()
    out[1::2] = xr * ang.sin() + xi * ang.cos()
    return out


def check_permutation(gen):
    """q_hf . rope_rotate_half == unpermute(q) . rope_interleaved, per head
    (the attention scores are what must agree; the element order differs)."""
    n_heads, hd, dim = 3, 16, 24
    w_hf = torch.randn(n_heads * hd, dim, generator=gen, dtype=torch.float64)
    w_meta = hf_unpermute(w_hf, n_heads, n_heads * hd, dim)
    assert torch.equal(hf_permute(w_meta, n_heads, n_heads * hd, dim), w_hf)
    x, y = torch.randn(dim, generator=gen, dtype=torch.float64), torch.randn(
        dim, generator=gen, dtype=torch.float64)
    for h in range(n_heads):
        sl = slice(h * hd, (h + 1) * hd)
        qa = rope_rotate_half(w_hf[sl] @ x, 7, 500000.0)
        ka = rope_rotate_half(w_hf[sl] @ y, 3, 500000.0)
        qb = rope_interleaved(w_meta[sl] @ x, 7, 500000.0)
        kb = rope_interleaved(w_meta[sl] @ y, 3, 500000.0)
        assert abs(float(qa @ ka) - float(qb @ kb)) < 1e-9, "permutation check failed"


M = "\u2581"


def spm_vocab():
    """A SentencePiece-style BPE vocabulary: <unk> <s> </s>, the 256 byte
    pieces, then normal pieces in priority order (score = -id), each either a
    character or the concatenation of two earlier pieces. Merges list every
    split of a piece into two pieces, ordered by the piece's score then by the
    halves' ids (Hugging Face's LlamaConverter)."""
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    chars = [M] + list("etaoinshrdlucmfwypvbgkjqxzTOW.,!'")
    words = ["th", "he", "in", "er", "an", M + "t", M + "a", M + "s", M + "w", "on", "at", "en",
             "nd", "ou", "ed", "is", M + "the", M + "o", "it", "ing", M + "th", M + "and",
             "re", M + "c", "ar", "or", M + "b", M + "f", "ll", "es", "as", M + "h", "st",
             M + "to", M + "in", "ent", M + "m", M + "p", "ve", "ly", M + "Once", "up",
             M + "up", M + "upon", "im", "ime", M + "time", "ow", M + "d", M + "l"]
    normal = []
    for c in chars:
        normal.append(c)
    for w in words:
        if w not in normal:
            normal.append(w)
    pieces += normal
    ids = {p: i for i, p in enumerate(pieces)}
    merges = []
    for p in normal:
        local = []
        for k in range(1, len(p)):
            a, b = p[:k], p[k:]
            if a in ids and b in ids and ids[a] >= 259 and ids[b] >= 259:
                local.append((ids[a], ids[b], a, b))
        local.sort()
        merges += [(a, b) for _, _, a, b in local]
    return pieces, merges


def spm_tokenizer_json(pieces, merges):
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for i, c in enumerate(["<unk>", "<s>", "</s>"])],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": M},
            {"type": "Replace", "pattern": {"String": " "}, "content": M}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": [
            {"SpecialToken": {"id": "<s>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}}]},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": M}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True,
                  "vocab": {p: i for i, p in enumerate(pieces)},
                  "merges": [f"{a} {b}" for a, b in merges]},
    }


def write_gguf(path, cfg, tensors, pieces):
    """GGUF v3: llama metadata, a "llama" vocabulary (scores -id, SentencePiece
    token types) and F32 tensors under llama.cpp's names (q/k rows already in
    Meta's interleaved order, as convert_hf_to_gguf.py permutes them)."""
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kv = [s("general.architecture") + struct.pack("<I", 8) + s("llama")]

    def u32(k, v):
        kv.append(s(k) + struct.pack("<II", 4, v))

    def f32(k, v):
        kv.append(s(k) + struct.pack("<If", 6, v))
    u32("llama.embedding_length", cfg["hidden_size"])
    u32("llama.block_count", cfg["num_hidden_layers"])
    u32("llama.feed_forward_length", cfg["intermediate_size"])
    u32("llama.attention.head_count", cfg["num_attention_heads"])
    u32("llama.attention.head_count_kv", cfg["num_key_value_heads"])
    u32("llama.context_length", cfg["max_position_embeddings"])
    u32("llama.rope.dimension_count", cfg["head_dim"])
    f32("llama.rope.freq_base", cfg["rope_theta"])
    f32("llama.attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"])
    kv.append(s("tokenizer.ggml.model") + struct.pack("<I", 8) + s("llama"))
    kv.append(s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, len(pieces)) +
              b"".join(s(p) for p in pieces))
    kv.append(s("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, len(pieces)) +
              b"".join(struct.pack("<f", -float(i) if i >= 259 else 0.0)
                       for i in range(len(pieces))))
    types = [2, 3, 3] + [6] * 256 + [1] * (len(pieces) - 259)
    kv.append(s("tokenizer.ggml.token_type") + struct.pack("<IIQ", 9, 5, len(pieces)) +
              b"".join(struct.pack("<i", t) for t in types))
    u32("tokenizer.ggml.bos_token_id", 1)
    u32("tokenizer.ggml.eos_token_id", 2)
    u32("tokenizer.ggml.unknown_token_id", 0)
    gg = {"tok_embd": "token_embd.weight", "output_norm": "output_norm.weight",
          "output": "output.weight"}
    info, data = b"", b""
    for name, t in tensors:
        gname = gg.get(name, name + ".weight")
        b = t.to(torch.float32).contiguous().numpy().tobytes()
        while len(data) % 32:
            data += b"\0"
        dims = list(reversed(t.shape))
        info += s(gname) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d)
                                                                    for d in dims)
        info += struct.pack("<IQ", 0, len(data))
        data += b
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv) + info
    while len(out) % 32:
        out += b"\0"
    with open(path, "wb") as f:
        f.write(out + data)


def make_variant(root, name, v, gen):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    if v.get("spm_tokenizer"):
        pieces, merges = spm_vocab()
        v = {**v, "vocab": len(pieces)}
    dim, L, H, KV, F, V = v["dim"], v["layers"], v["heads"], v["kv_heads"], v["ffn"], v["vocab"]
    hd = dim // H
    dt = TORCH_DTYPE[v["dtype"]]

    def rnd(*shape, scale=None):
        s = scale if scale is not None else shape[-1] ** -0.5
        return (torch.randn(*shape, generator=gen) * s).to(dt)

    hf, exp = [], []
    emb = rnd(V, dim, scale=1.0)
    hf.append((v.get("tied_name", "model.embed_tokens.weight"), emb))
    exp.append(("tok_embd", emb))
    for l in range(L):
        p, b = f"model.layers.{l}.", f"blk.{l}."
        an = (1.0 + 0.1 * torch.randn(dim, generator=gen)).to(dt)
        fn = (1.0 + 0.1 * torch.randn(dim, generator=gen)).to(dt)
        q, k, vv, o = rnd(H * hd, dim), rnd(KV * hd, dim), rnd(KV * hd, dim), rnd(dim, H * hd)
        g, u, dn = rnd(F, dim), rnd(F, dim), rnd(dim, F)
        hf += [(p + "input_layernorm.weight", an), (p + "self_attn.q_proj.weight", q),
               (p + "self_attn.k_proj.weight", k), (p + "self_attn.v_proj.weight", vv),
               (p + "self_attn.o_proj.weight", o), (p + "post_attention_layernorm.weight", fn),
               (p + "mlp.gate_proj.weight", g), (p + "mlp.up_proj.weight", u),
               (p + "mlp.down_proj.weight", dn)]
        exp += [(b + "attn_norm", an), (b + "attn_q", hf_unpermute(q, H, H * hd, dim)),
                (b + "attn_k", hf_unpermute(k, KV, KV * hd, dim)), (b + "attn_v", vv),
                (b + "attn_output", o), (b + "ffn_norm", fn), (b + "ffn_gate", g),
                (b + "ffn_up", u), (b + "ffn_down", dn)]
    nrm = (1.0 + 0.1 * torch.randn(dim, generator=gen)).to(dt)
    hf.append(("model.norm.weight", nrm))
    exp.append(("output_norm", nrm))
    if not v["tied"]:
        out = rnd(V, dim)
        hf.append(("lm_head.weight", out))
        exp.append(("output", out))

    n = v["shards"]
    if n == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), hf)
    else:
        per = (len(hf) + n - 1) // n
        weight_map = {}
        for i in range(n):
            fname = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            part = hf[i * per:(i + 1) * per]
            write_safetensors(os.path.join(d, fname), part)
            for nm, _ in part:
                weight_map[nm] = fname
        if not v.get("no_index"):
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)
    if not v.get("no_expected"):
        write_safetensors(os.path.join(d, "expected.safetensors"),
                          [(nm, t.to(torch.float32)) for nm, t in exp])
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": dim, "num_hidden_layers": L, "num_attention_heads": H,
        "num_key_value_heads": KV, "head_dim": hd, "intermediate_size": F, "vocab_size": V,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "tie_word_embeddings": v["tied"], "torch_dtype": {"f32": "float32", "bf16": "bfloat16",
                                                          "f16": "float16"}[v["dtype"]],
        "bos_token_id": 1, "eos_token_id": 2,
    }
    if v.get("plain_rope"):
        del cfg["rope_scaling"]
        cfg["rope_theta"] = 10000.0
        cfg["max_position_embeddings"] = 2048
    if v.get("spm_tokenizer"):
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            json.dump(spm_tokenizer_json(pieces, merges), f, ensure_ascii=False, indent=1)
        write_gguf(os.path.join(root, name + ".gguf"), cfg, exp, pieces)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(d, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": [2, 3, 4]}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    a = ap.parse_args()
    gen = torch.Generator().manual_seed(a.seed)
    check_permutation(gen)
    for name in a.variants.split(","):
        make_variant(a.root, name, {**VARIANTS, **BIG_VARIANTS}[name], gen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
