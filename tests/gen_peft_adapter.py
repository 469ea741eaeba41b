#!/usr/bin/python3
"""Writes a random Hugging Face PEFT LoRA adapter for a checkpoint made by
tests/gen_hf_model.py, and (optionally) the float64 reference of the base
model with the adapter merged, for the LoRA tests (Debian's python3-torch; no
peft / safetensors packages needed).

    /usr/bin/python3 tests/gen_peft_adapter.py HF_DIR OUT_DIR [--seed N] [--r 4]
        [--alpha 8] [--rslora] [--dtype f32|bf16|f16] [--targets q_proj,...]
        [--layers 0,1] [--defect NAME] [--ref PREFIX]

Only HF_DIR/config.json is read unless --ref is given. OUT_DIR gets adapter_config.json and adapter_model.safetensors with PEFT's
names (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, A
[r, in], B [out, r]). With --ref, PREFIX.json / PREFIX.bin hold the merged
model in tests/reference/llama_ref.py's format: every HF weight W (float64)
+ scale * B @ A (scale = alpha / r, or alpha / sqrt(r) with --rslora, B and A
as stored in the adapter's dtype) merged in Hugging Face order, then q/k rows
permuted to the interleaved RoPE order and named as in the lamina file. This
is PEFT's merge_and_unload, computed independently of lamina's converter.

--defect writes a broken adapter for the error tests: unknown_module,
wrong_shape, extra_layer, nan, rank_pattern, half_pair, dora.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_hf_model import TORCH_DTYPE, hf_unpermute, write_safetensors  # noqa: E402

MODULES = {"q_proj": ("self_attn", "attn_q"), "k_proj": ("self_attn", "attn_k"),
           "v_proj": ("self_attn", "attn_v"), "o_proj": ("self_attn", "attn_output"),
           "gate_proj": ("mlp", "ffn_gate"), "up_proj": ("mlp", "ffn_up"),
           "down_proj": ("mlp", "ffn_down")}
ST_TORCH = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    out = {}
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        dt = ST_TORCH[t["dtype"]]
        buf = bytearray(raw[8 + n + b:8 + n + e])
        if dt == torch.float32:
            a = torch.frombuffer(buf, dtype=torch.float32)
        else:
            a = torch.frombuffer(buf, dtype=torch.int16).view(dt)
        out[name] = a.reshape(t["shape"]).clone()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--r", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=8.0)
    ap.add_argument("--rslora", action="store_true")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--targets", default=",".join(MODULES))
    ap.add_argument("--layers", default="")
    ap.add_argument("--b-scale", type=float, default=0.2)
    ap.add_argument("--defect", default="")
    ap.add_argument("--ref", default="")
    a = ap.parse_args()

    with open(os.path.join(a.hf_dir, "config.json")) as f:
        cfg = json.load(f)
    base = {}
    if a.ref:  # the weights are needed only for the merged reference
        for fn in sorted(os.listdir(a.hf_dir)):
            if fn.endswith(".safetensors") and fn != "expected.safetensors":
                base.update(read_safetensors(os.path.join(a.hf_dir, fn)))
    L, H, KV = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    dim, F = cfg["hidden_size"], cfg["intermediate_size"]
    hd = dim // H
    shapes = {"q_proj": (H * hd, dim), "k_proj": (KV * hd, dim), "v_proj": (KV * hd, dim),
              "o_proj": (dim, H * hd), "gate_proj": (F, dim), "up_proj": (F, dim),
              "down_proj": (dim, F)}
    layers = [int(x) for x in a.layers.split(",")] if a.layers else list(range(L))
    targets = a.targets.split(",")
    gen = torch.Generator().manual_seed(a.seed)
    dt = TORCH_DTYPE[a.dtype]
    scale = a.alpha / (math.sqrt(a.r) if a.rslora else a.r)

    tensors, deltas = [], {}
    for l in layers:
        for m in targets:
            sub, _ = MODULES[m]
            hfname = f"model.layers.{l}.{sub}.{m}.weight"
            N, K = shapes[m]
            A = (torch.randn(a.r, K, generator=gen) * K ** -0.5).to(dt)
            B = (torch.randn(N, a.r, generator=gen) * a.b_scale).to(dt)
            key = f"base_model.model.model.layers.{l}.{sub}.{m}"
            tensors += [(key + ".lora_A.weight", A), (key + ".lora_B.weight", B)]
            deltas[hfname] = scale * (B.double() @ A.double())
    conf = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": a.r, "lora_alpha": a.alpha,
            "lora_dropout": 0.0, "target_modules": targets, "bias": "none",
            "use_rslora": a.rslora, "fan_in_fan_out": False, "modules_to_save": None,
            "rank_pattern": {}, "alpha_pattern": {}, "use_dora": False,
            "base_model_name_or_path": os.path.abspath(a.hf_dir)}

    d = a.defect
    if d == "unknown_module":
        conf["target_modules"].append("lm_head")
        tensors.append(("base_model.model.lm_head.lora_A.weight",
                        torch.zeros(a.r, dim, dtype=dt)))
    elif d == "unknown_tensor":
        tensors.append(("base_model.model.lm_head.lora_A.weight",
                        torch.zeros(a.r, dim, dtype=dt)))
    elif d == "wrong_shape":
        n, t = tensors[0]
        tensors[0] = (n, torch.zeros(t.shape[0], t.shape[1] + 1, dtype=dt))
    elif d == "extra_layer":
        tensors += [(f"base_model.model.model.layers.{L}.self_attn.v_proj.lora_A.weight",
                     torch.zeros(a.r, dim, dtype=dt)),
                    (f"base_model.model.model.layers.{L}.self_attn.v_proj.lora_B.weight",
                     torch.zeros(KV * hd, a.r, dtype=dt))]
    elif d == "nan":
        n, t = tensors[5]
        t = t.clone()
        t.view(-1)[3] = float("nan")
        tensors[5] = (n, t)
    elif d == "rank_pattern":
        conf["rank_pattern"] = {"q_proj": 8}
    elif d == "half_pair":
        del tensors[1]
    elif d == "dora":
        conf["use_dora"] = True
    elif d:
        raise SystemExit("unknown defect " + d)

    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "adapter_config.json"), "w") as f:
        json.dump(conf, f, indent=1)
    write_safetensors(os.path.join(a.out_dir, "adapter_model.safetensors"), tensors)

    if a.ref:
        # Merge in float64, Hugging Face order; then lamina names and q/k order.
        w = {}
        for name, t in base.items():
            w[name] = t.double() + deltas.get(name, 0)
        tied = cfg.get("tie_word_embeddings", False)
        emb = w.get("model.embed_tokens.weight", w.get("lm_head.weight"))
        ours = [("tok_embd", emb)]
        for l in range(L):
            p, b = f"model.layers.{l}.", f"blk.{l}."
            ours += [(b + "attn_norm", w[p + "input_layernorm.weight"]),
                     (b + "ffn_norm", w[p + "post_attention_layernorm.weight"]),
                     (b + "attn_q", hf_unpermute(w[p + "self_attn.q_proj.weight"], H, H * hd, dim)),
                     (b + "attn_k",
                      hf_unpermute(w[p + "self_attn.k_proj.weight"], KV, KV * hd, dim)),
                     (b + "attn_v", w[p + "self_attn.v_proj.weight"]),
                     (b + "attn_output", w[p + "self_attn.o_proj.weight"]),
                     (b + "ffn_gate", w[p + "mlp.gate_proj.weight"]),
                     (b + "ffn_up", w[p + "mlp.up_proj.weight"]),
                     (b + "ffn_down", w[p + "mlp.down_proj.weight"])]
        ours.append(("output_norm", w["model.norm.weight"]))
        if not tied:
            ours.append(("output", w["lm_head.weight"]))
        index, off = {}, 0
        with open(a.ref + ".bin", "wb") as f:
            for name, t in ours:
                b = t.to(torch.float32).contiguous().numpy().tobytes()
                f.write(b)
                index[name] = {"offset": off, "shape": list(t.shape)}
                off += len(b)
        rs = cfg.get("rope_scaling") or {}
        ref = {"dim": dim, "n_layers": L, "n_heads": H, "n_kv_heads": KV,
               "ffn": cfg["intermediate_size"], "vocab": cfg["vocab_size"],
               "rope_theta": cfg["rope_theta"], "llama3": 1 if rs else 0,
               "rope_factor": rs.get("factor", 1.0), "rope_low": rs.get("low_freq_factor", 1.0),
               "rope_high": rs.get("high_freq_factor", 4.0),
               "rope_orig": rs.get("original_max_position_embeddings", 8192),
               "norm_eps": cfg["rms_norm_eps"], "tied": 1 if tied else 0, "lora_rank": 0,
               "lora_scale": 0.0, "hadamard": 0, "tensors": index}
        with open(a.ref + ".json", "w") as f:
            json.dump(ref, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
