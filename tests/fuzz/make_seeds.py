#!/usr/bin/python3
"""Writes the seed corpora of the libFuzzer harnesses (tests/fuzz/*.cpp) at
test time, from small synthetic models (nothing binary is committed).

    make_seeds.py OUTDIR LAMINA_CONVERT [SOURCE_DIR]

OUTDIR/<harness>/ gets the seeds of each harness: lamina (models converted by
lamina-convert --synthetic), gguf, meta (tests/gen_meta_checkpoint.py, needs
python3-torch; skipped without it), hf, llama2c, tokenizer, chat, grammar. Multi-file
inputs use the harnesses' part layout: u32 little-endian length + bytes, the
last part being the rest (tests/fuzz/fuzz_util.h).
"""
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

M = "\u2581"


def parts(*ps):
    out = b""
    for p in ps[:-1]:
        out += struct.pack("<I", len(p)) + p
    return out + ps[-1]


def put(outdir, harness, name, data):
    d = os.path.join(outdir, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def floats(rng, n, scale=0.1):
    return struct.pack(f"<{n}f", *[rng.uniform(-scale, scale) for _ in range(n)])


def f16(x):
    return struct.pack("<e", x)


# ------------------------------------------------------------------- GGUF
def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(rng, dim=32, heads=2, kv=1, ffn=64, vocab=40, layers=1, version=3):
    kv_items = []

    def kv_u32(k, v):
        kv_items.append(gguf_str(k) + struct.pack("<II", 4, v))

    def kv_f32(k, v):
        kv_items.append(gguf_str(k) + struct.pack("<If", 6, v))

    def kv_s(k, v):
        kv_items.append(gguf_str(k) + struct.pack("<I", 8) + gguf_str(v))

    def kv_arr(k, etype, vals, pack):
        kv_items.append(gguf_str(k) + struct.pack("<IIQ", 9, etype, len(vals)) +
                        b"".join(pack(v) for v in vals))

    kv_s("general.architecture", "llama")
    kv_u32("llama.embedding_length", dim)
    kv_u32("llama.block_count", layers)
    kv_u32("llama.feed_forward_length", ffn)
    kv_u32("llama.attention.head_count", heads)
    kv_u32("llama.attention.head_count_kv", kv)
    kv_u32("llama.context_length", 256)
    kv_u32("llama.rope.dimension_count", dim // heads)
    kv_f32("llama.rope.freq_base", 10000.0)
    kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(8)]
    toks += [M, "a", "b", "e", "h", "t", M + "t", "he", M + "the"]
    toks += [f"x{i}" for i in range(vocab - len(toks))]
    kv_s("tokenizer.ggml.model", "llama")
    kv_arr("tokenizer.ggml.tokens", 8, toks, gguf_str)
    kv_arr("tokenizer.ggml.scores", 6, [-float(i) for i in range(vocab)],
           lambda v: struct.pack("<f", v))
    types = [2, 3, 3] + [6] * 8 + [1] * (vocab - 11)
    kv_arr("tokenizer.ggml.token_type", 5, types, lambda v: struct.pack("<i", v))
    kv_u32("tokenizer.ggml.bos_token_id", 1)
    kv_u32("tokenizer.ggml.eos_token_id", 2)

    tensors = []  # (name, dims in ggml order, type, data)

    def q8_0(n, k):
        out = b""
        for _ in range(n * k // 32):
            out += f16(0.01) + bytes(rng.randrange(256) for _ in range(32))
        return out

    def q4_0(n, k):
        out = b""
        for _ in range(n * k // 32):
            out += f16(0.02) + bytes(rng.randrange(256) for _ in range(16))
        return out

    def mat(name, n, k, kind):
        if kind == "f32":
            tensors.append((name, [k, n], 0, floats(rng, n * k)))
        elif kind == "f16":
            tensors.append((name, [k, n], 1, b"".join(f16(rng.uniform(-.1, .1))
                                                     for _ in range(n * k))))
        elif kind == "q8_0":
            tensors.append((name, [k, n], 8, q8_0(n, k)))
        else:
            tensors.append((name, [k, n], 2, q4_0(n, k)))

    def norm(name):
        tensors.append((name, [dim], 0, struct.pack(f"<{dim}f", *([1.0] * dim))))

    hd = dim // heads
    mat("token_embd.weight", vocab, dim, "q8_0")
    norm("output_norm.weight")
    mat("output.weight", vocab, dim, "f16")
    for l in range(layers):
        b = f"blk.{l}."
        norm(b + "attn_norm.weight")
        norm(b + "ffn_norm.weight")
        mat(b + "attn_q.weight", heads * hd, dim, "q4_0")
        mat(b + "attn_k.weight", kv * hd, dim, "f32")
        mat(b + "attn_v.weight", kv * hd, dim, "f16")
        mat(b + "attn_output.weight", dim, heads * hd, "q8_0")
        mat(b + "ffn_gate.weight", ffn, dim, "q4_0")
        mat(b + "ffn_up.weight", ffn, dim, "q4_0")
        mat(b + "ffn_down.weight", dim, ffn, "q4_0")
    info, data = b"", b""
    for name, dims, typ, d in tensors:
        while len(data) % 32:
            data += b"\0"
        info += gguf_str(name) + struct.pack("<I", len(dims))
        info += b"".join(struct.pack("<Q", x) for x in dims)
        info += struct.pack("<IQ", typ, len(data))
        data += d
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv_items))
    out += b"".join(kv_items) + info
    while len(out) % 32:
        out += b"\0"
    return out + data


# ---------------------------------------------------------------- llama2.c
def llama2c(rng, dim=16, hidden=32, layers=1, heads=2, kv=2, vocab=32, seq=16, shared=True):
    hd = dim // heads
    hdr = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab if shared else -vocab, seq)
    w = floats(rng, vocab * dim) + struct.pack(f"<{layers * dim}f", *([1.0] * layers * dim))
    w += floats(rng, layers * dim * dim) + floats(rng, layers * dim * kv * hd) * 2
    w += floats(rng, layers * dim * dim)
    w += struct.pack(f"<{layers * dim}f", *([1.0] * layers * dim))
    w += floats(rng, layers * hidden * dim) * 3
    w += struct.pack(f"<{dim}f", *([1.0] * dim))
    w += floats(rng, seq * hd // 2) * 2
    if not shared:
        w += floats(rng, vocab * dim)
    return hdr + w


def tokenizer_bin(vocab=32):
    toks = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [bytes([b]) for b in b" abehinostuw.,"]
    toks += [b" t", b"he", b" the", b"in", b" a", b"on", b"st"]
    while len(toks) < vocab:
        toks.append(b"<0x%02X>" % len(toks))
    out = struct.pack("<i", max(len(t) for t in toks))
    for i, t in enumerate(toks[:vocab]):
        out += struct.pack("<fi", -float(i), len(t)) + t
    return out


# ---------------------------------------------------------------------- HF
def safetensors(tensors):
    header, blobs, off = {}, [], 0
    for name, shape, dtype, b in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def spm_tokenizer_json(vocab_pieces, merges):
    return json.dumps({
        "version": "1.0",
        "added_tokens": [{"id": i, "content": c, "special": True, "normalized": False}
                         for i, c in enumerate(["<unk>", "<s>", "</s>"])],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": M},
            {"type": "Replace", "pattern": {"String": " "}, "content": M}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": [
            {"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": M}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "fuse_unk": True,
                  "byte_fallback": True, "vocab": {p: i for i, p in enumerate(vocab_pieces)},
                  "merges": [f"{a} {b}" for a, b in merges]},
    }, ensure_ascii=False).encode()


def hf(rng, dim=32, heads=2, kv=1, ffn=64, layers=1, tied=True, dtype="F32"):
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    pieces += [M, "a", "b", "e", "h", "t", M + "t", "he", M + "the"]
    vocab = len(pieces)
    hd = dim // heads

    def t(name, shape):
        n = 1
        for s in shape:
            n *= s
        if dtype == "F32":
            return (name, shape, "F32", floats(rng, n))
        return (name, shape, "BF16", b"".join(struct.pack("<f", rng.uniform(-.1, .1))[2:]
                                              for _ in range(n)))

    ts = [t("lm_head.weight" if tied else "model.embed_tokens.weight", [vocab, dim])]
    for l in range(layers):
        p = f"model.layers.{l}."
        ts += [t(p + "input_layernorm.weight", [dim]), t(p + "self_attn.q_proj.weight", [dim, dim]),
               t(p + "self_attn.k_proj.weight", [kv * hd, dim]),
               t(p + "self_attn.v_proj.weight", [kv * hd, dim]),
               t(p + "self_attn.o_proj.weight", [dim, dim]),
               t(p + "post_attention_layernorm.weight", [dim]),
               t(p + "mlp.gate_proj.weight", [ffn, dim]), t(p + "mlp.up_proj.weight", [ffn, dim]),
               t(p + "mlp.down_proj.weight", [dim, ffn])]
    ts.append(t("model.norm.weight", [dim]))
    if not tied:
        ts.append(t("lm_head.weight", [vocab, dim]))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
           "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
           "head_dim": hd, "intermediate_size": ffn, "vocab_size": vocab,
           "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": tied, "bos_token_id": 1, "eos_token_id": 2}
    tok = spm_tokenizer_json(pieces, [(M, "t"), ("h", "e"), (M + "t", "he")])
    return parts(json.dumps(cfg).encode(), safetensors(ts), tok)


def main():
    out, convert = sys.argv[1], sys.argv[2]
    src = sys.argv[3] if len(sys.argv) > 3 else os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))
    rng = random.Random(1)
    # .lamina: synthetic models as lamina-convert writes them.
    with tempfile.TemporaryDirectory() as tmp:
        for preset, weights in [("tiny", "q4"), ("tiny-tied", "q8"), ("tiny", "f32")]:
            p = os.path.join(tmp, "m.lamina")
            subprocess.run([convert, "--synthetic", preset, "--seed", "3", "--weights", weights,
                            "-o", p, "--quiet"], check=True, stdout=subprocess.DEVNULL)
            with open(p, "rb") as f:
                put(out, "lamina", f"{preset}_{weights}.lamina", f.read())
    put(out, "gguf", "tiny_v3.gguf", gguf(rng))
    put(out, "gguf", "tiny_v2_2layers.gguf", gguf(rng, layers=2, version=2, vocab=48))
    put(out, "llama2c", "shared.bin", parts(llama2c(rng), tokenizer_bin()))
    put(out, "llama2c", "untied.bin", parts(llama2c(rng, shared=False, kv=1), tokenizer_bin()))
    put(out, "hf", "tied_f32", hf(rng))
    put(out, "hf", "untied_bf16", hf(rng, tied=False, dtype="BF16", kv=2))
    for i, s in enumerate(["Hello world", " the  theatre\n\n", "\u00e9t\u00e9 \U0001F999 <s>x</s>",
                           "<|begin_of_text|><|eot_id|> ab\tab", ""]):
        put(out, "tokenizer", f"t{i}", s.encode())
    for i, s in enumerate(["system\0Be terse.\0user\0Hi!\0", "user\0  <|eot_id|> x \0assistant",
                           "ipython\0\u00e9\0"]):
        put(out, "chat", f"c{i}", s.encode())
    # grammar: GBNF text, or (leading "{") a JSON Schema.
    for i, s in enumerate(["root ::= (\"yes\" | \"no\") [.!]?\n",
                           "root ::= \"[\" item (\",\" item){0,3} \"]\"\nitem ::= [0-9]+ | [^\\x00-\\x1F\\]]\n",
                           "root ::= x* # c\nx ::= \"\\u00e9\" | .\n",
                           '{"type":"object","properties":{"a":{"type":"integer"},'
                           '"b":{"enum":["x",1,null]}},"required":["a"]}',
                           '{"type":"array","items":{"type":"string","maxLength":3},"maxItems":2}']):
        put(out, "grammar", f"g{i}", s.encode())
    # Meta .pth: tests/gen_meta_checkpoint.py (PyTorch); skipped without it.
    gen = os.path.join(src, "tests", "gen_meta_checkpoint.py")
    with tempfile.TemporaryDirectory() as tmp:
        for flavour in ["qat_lora", "bf16"]:
            d = os.path.join(tmp, flavour)
            r = subprocess.run(["/usr/bin/python3", gen, "--out", d, "--flavour", flavour,
                                "--dim", "64", "--layers", "1", "--heads", "2", "--kv-heads", "1",
                                "--vocab", "40", "--no-golden"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode != 0:
                print(f"make_seeds: no Meta seeds ({flavour}: gen_meta_checkpoint.py failed; "
                      "python3-torch missing?)")
                continue
            with open(os.path.join(d, "params.json"), "rb") as f:
                params = f.read()
            with open(os.path.join(d, "consolidated.00.pth"), "rb") as f:
                pth = f.read()
            put(out, "meta", flavour, parts(params, pth))
    os.makedirs(os.path.join(out, "meta"), exist_ok=True)
    print(f"make_seeds: seeds in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
