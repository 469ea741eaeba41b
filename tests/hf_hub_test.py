#!/usr/bin/python3
"""End-to-end tests of -hf (tools/hub) against the fake hub of tests/hf_hub_server.py.

    tests/hf_hub_test.py BUILD_DIR WORK_DIR CASE

Runs llama-run / lamina-convert from BUILD_DIR (prefixed with $LAMINA_EMULATOR)
with HF_ENDPOINT at a server on 127.0.0.1 (no other address is contacted:
HOME, the token and the proxies are cleared). WORK_DIR is scratch space of
this case. Repositories are generated here with plain Python (no torch): a
tiny random Llama 3.2-shaped model in Hugging Face layout (f32 safetensors, a
byte-level tokenizer.json), once as one file and once as two shards + index.
Exit status 0 = pass. Cases: see CASES at the end.
"""
import hashlib
import json
import os
import random
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_hub_server import Hub  # noqa: E402

TIMEOUT = 120  # seconds per tool run

# Llama 3's pre-tokenizer split pattern (the tokenizer loader requires it).
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| "
                r"?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|eot_id|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
            "<|reserved_special_token_2|>"]
DIM, LAYERS, HEADS, KV_HEADS, FFN = 64, 2, 4, 2, 96
VOCAB = 256 + len(SPECIALS)


def bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) +
          list(range(ord("\xae"), ord("\xff") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def tokenizer_json():
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    added = [{"id": 256 + i, "content": s, "special": True} for i, s in enumerate(SPECIALS)]
    for a in added:
        vocab[a["content"]] = a["id"]
    return {
        "version": "1.0",
        "added_tokens": added,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "model": {"type": "BPE", "vocab": vocab, "merges": []},
    }


def tensors(seed, ffn=FFN):
    rng = random.Random(seed)

    def mat(rows, cols, scale=0.08):
        return [rows, cols], [rng.gauss(0, scale) for _ in range(rows * cols)]

    def ones(n):
        return [n], [1.0 + rng.gauss(0, 0.05) for _ in range(n)]

    hd = DIM // HEADS
    t = [("model.embed_tokens.weight", mat(VOCAB, DIM, 0.5))]
    for i in range(LAYERS):
        p = "model.layers.%d." % i
        t += [(p + "input_layernorm.weight", ones(DIM)),
              (p + "self_attn.q_proj.weight", mat(HEADS * hd, DIM)),
              (p + "self_attn.k_proj.weight", mat(KV_HEADS * hd, DIM)),
              (p + "self_attn.v_proj.weight", mat(KV_HEADS * hd, DIM)),
              (p + "self_attn.o_proj.weight", mat(DIM, HEADS * hd)),
              (p + "post_attention_layernorm.weight", ones(DIM)),
              (p + "mlp.gate_proj.weight", mat(ffn, DIM)),
              (p + "mlp.up_proj.weight", mat(ffn, DIM)),
              (p + "mlp.down_proj.weight", mat(DIM, ffn))]
    t += [("model.norm.weight", ones(DIM)), ("lm_head.weight", mat(VOCAB, DIM, 0.5))]
    return t


def write_safetensors(path, named):
    header, blobs, off = {}, [], 0
    for name, (shape, vals) in named:
        b = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_repo(d, shards, ffn=FFN):
    os.makedirs(d, exist_ok=True)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": DIM,
           "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
           "num_key_value_heads": KV_HEADS, "intermediate_size": ffn, "vocab_size": VOCAB,
           "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
           "tie_word_embeddings": False, "bos_token_id": 256, "eos_token_id": [257, 260]}
    files = {"config.json": cfg,
             "generation_config.json": {"bos_token_id": 256, "eos_token_id": [257, 260]},
             "tokenizer.json": tokenizer_json(),
             "tokenizer_config.json": {"bos_token": "<|begin_of_text|>",
                                       "eos_token": "<|eot_id|>"}}
    for name, obj in files.items():
        with open(os.path.join(d, name), "w") as f:
            json.dump(obj, f)
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write("a test repo; not downloaded by lamina\n")
    t = tensors(seed=7, ffn=ffn)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), t)
        return
    per = (len(t) + shards - 1) // shards
    wm = {}
    for s in range(shards):
        name = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = t[s * per:(s + 1) * per]
        write_safetensors(os.path.join(d, name), part)
        for n, _ in part:
            wm[n] = name
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f)
    # A stray shard the index does not name: must not be downloaded.
    write_safetensors(os.path.join(d, "model-extra.safetensors"), t[:1])


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, seed):
    """A GGUF v3 file of the same tiny model (f32 tensors, gpt2/llama-bpe vocabulary)."""
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)] + SPECIALS
    kv = []

    def add(key, typ, payload):
        kv.append(gguf_string(key) + struct.pack("<I", typ) + payload)

    u32 = lambda v: struct.pack("<I", v)  # noqa: E731
    f32 = lambda v: struct.pack("<f", v)  # noqa: E731
    add("general.architecture", 8, gguf_string("llama"))
    add("general.alignment", 4, u32(32))
    for k, v in (("context_length", 512), ("embedding_length", DIM), ("block_count", LAYERS),
                 ("feed_forward_length", FFN), ("attention.head_count", HEADS),
                 ("attention.head_count_kv", KV_HEADS), ("vocab_size", VOCAB)):
        add("llama." + k, 4, u32(v))
    add("llama.attention.layer_norm_rms_epsilon", 6, f32(1e-5))
    add("llama.rope.freq_base", 6, f32(500000.0))
    add("tokenizer.ggml.model", 8, gguf_string("gpt2"))
    add("tokenizer.ggml.pre", 8, gguf_string("llama-bpe"))
    add("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, len(tokens)) +
        b"".join(gguf_string(t) for t in tokens))
    add("tokenizer.ggml.token_type", 9, struct.pack("<IQ", 5, len(tokens)) +
        b"".join(struct.pack("<i", 1 if i < 256 else 3) for i in range(len(tokens))))
    add("tokenizer.ggml.merges", 9, struct.pack("<IQ", 8, 0))
    add("tokenizer.ggml.bos_token_id", 4, u32(256))
    add("tokenizer.ggml.eos_token_id", 4, u32(260))
    names = {"model.embed_tokens.weight": "token_embd.weight", "lm_head.weight": "output.weight",
             "model.norm.weight": "output_norm.weight"}
    sub = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
           "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
           "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    infos, blobs, off = [], [], 0
    for name, (shape, vals) in tensors(seed):
        if name not in names:
            i = name.split(".")[2]
            rest = ".".join(name.split(".")[3:-1])
            names[name] = "blk.%s.%s.weight" % (i, sub[rest])
        data = struct.pack("<%df" % len(vals), *vals)
        dims = list(reversed(shape))  # ne[0] is the row length
        infos.append(gguf_string(names[name]) + struct.pack("<I", len(dims)) +
                     b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", 0, off))
        pad = (32 - len(data) % 32) % 32
        blobs.append(data + b"\0" * pad)
        off += len(data) + pad
    head = b"GGUF" + struct.pack("<IQQ", 3, len(infos), len(kv)) + b"".join(kv) + b"".join(infos)
    head += b"\0" * ((32 - len(head) % 32) % 32)
    with open(path, "wb") as f:
        f.write(head + b"".join(blobs))


class Case:
    def __init__(self, build, work):
        self.build, self.work = build, work
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        self.root = os.path.join(work, "hub")
        write_repo(os.path.join(self.root, "test", "tiny"), shards=1)
        write_repo(os.path.join(self.root, "test", "sharded"), shards=2)
        write_repo(os.path.join(self.root, "test", "gated"), shards=1)
        write_repo(os.path.join(self.root, "test", "pow2"), shards=1, ffn=128)
        gguf = os.path.join(self.root, "test", "gguf")
        os.makedirs(gguf)
        write_gguf(os.path.join(gguf, "tiny-F32.gguf"), seed=7)
        write_gguf(os.path.join(gguf, "tiny-other.gguf"), seed=8)
        self.cache = os.path.join(work, "cache")
        self.hub = Hub(self.root).start()
        self.hub.faults["gated"].add("test/gated")
        self.endpoint = "http://127.0.0.1:%d" % self.hub.port

    def env(self, **extra):
        e = {k: v for k, v in os.environ.items()
             if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
        e.update(HF_ENDPOINT=self.endpoint, LAMINA_CACHE=self.cache,
                 HOME=os.path.join(self.work, "home"), LAMINA_HF_RETRY_DELAY_MS="20",
                 no_proxy="*", NO_PROXY="*")
        e.pop("XDG_CACHE_HOME", None)
        e.update(extra)
        return e

    def run(self, tool, args, expect_rc=0, **env):
        cmd = shlex.split(os.environ.get("LAMINA_EMULATOR", "")) + [
            os.path.join(self.build, tool)] + args
        t0 = time.time()
        p = subprocess.run(cmd, env=self.env(**env), capture_output=True, text=True,
                           timeout=TIMEOUT)
        print("$ %s  (rc %d, %.1f s)" % (" ".join(cmd), p.returncode, time.time() - t0))
        print(p.stderr)
        if expect_rc is not None:
            ok = p.returncode == expect_rc if expect_rc == 0 else p.returncode != 0
            check(ok, "%s exited %d, expected %s" % (tool, p.returncode,
                                                      expect_rc if expect_rc == 0 else "!= 0"))
        return p

    def gen(self, repo, **env):
        return self.run("llama-run", ["-hf", repo, "-p", "hi", "-n", "4", "--temp", "0",
                                      "-t", "1"], **env)

    def gets(self, suffix):
        return [r for r in self.hub.requests() if r[0] == "GET" and r[1].endswith(suffix)]

    def cached_files(self):
        out = []
        for base, _, names in os.walk(self.cache):
            out += [os.path.relpath(os.path.join(base, n), self.cache) for n in names]
        return sorted(out)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def case_download_run_cached(c):
    p1 = c.gen("test/tiny")
    check(len(p1.stdout.strip()) > 0, "no text generated")
    reqs = c.hub.requests()
    names = sorted(r[1] for r in reqs if r[0] == "GET")
    print("requests:", names)
    check(any(r[1].startswith("/api/models/test/tiny/revision/main") for r in reqs),
          "no API listing request")
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
              "model.safetensors"):
        check(len(c.gets("/" + f)) == 1, "%s not downloaded exactly once" % f)
    check(not c.gets("/README.md"), "README.md downloaded (not needed)")
    check(any(f.endswith(".lamina") for f in c.cached_files()), "no .lamina in the cache")
    check(not any(f.endswith(".part") for f in c.cached_files()), ".part file left")
    # Second run: no request, no conversion, same greedy text.
    c.hub.clear_log()
    p2 = c.gen("test/tiny")
    check(c.hub.requests() == [], "second run made requests: %s" % c.hub.requests())
    check("cached" in p2.stderr and "converting" not in p2.stderr,
          "second run did not use the cached .lamina")
    check(p1.stdout == p2.stdout, "greedy text differs between runs")
    # Offline (server gone): still runs from the cache.
    c.hub.stop()
    p3 = c.gen("test/tiny")
    check(p3.stdout == p1.stdout, "offline run differs")
    p = c.gen("test/tiny", HF_HUB_OFFLINE="1")
    check(p.stdout == p1.stdout, "HF_HUB_OFFLINE run differs")
    p = c.gen("test/sharded", expect_rc=1, HF_HUB_OFFLINE="1")
    check("test/sharded@main is not in the cache" in p.stderr and "HF_HUB_OFFLINE=1" in p.stderr
          and "cannot reach" not in p.stderr, "HF_HUB_OFFLINE made a request or no clear error")
    # Another conversion of the cached files: converts, no request.
    out = os.path.join(c.work, "tiny-f32.lamina")
    p4 = c.run("lamina-convert", ["-hf", "test/tiny", "--weights", "f32", "-o", out])
    check(os.path.getsize(out) > 0 and p4.stdout.strip() == out, "lamina-convert -hf -o failed")
    check("converting" in p4.stderr, "no conversion for --weights f32")
    p5 = c.run("llama-run", ["-m", out, "-p", "hi", "-n", "4", "--temp", "0", "-t", "1"])
    check(len(p5.stdout.strip()) > 0, "the f32 export does not run")


def case_sharded(c):
    p1 = c.gen("test/tiny")
    p2 = c.gen("test/sharded")
    check(len(c.gets("/model.safetensors.index.json")) == 1, "index not downloaded")
    for s in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        check(len(c.gets("/test/sharded/resolve/%s/%s" % (Hub.commit("test/sharded"), s))) == 1,
              s + " not downloaded once")
    check(not c.gets("/model-extra.safetensors"), "a shard the index does not name was fetched")
    check(p1.stdout == p2.stdout, "sharded and single-file copies of one model generate "
          "different text:\n%r\n%r" % (p1.stdout, p2.stdout))


def case_resume(c):
    c.hub.faults["drop_once"].add("model.safetensors")
    c.hub.faults["fail_api"] = 1
    p = c.gen("test/tiny")
    cdn = c.gets("/cdn/" + hashlib.sha256(open(os.path.join(
        c.root, "test/tiny/model.safetensors"), "rb").read()).hexdigest())
    print("cdn requests:", cdn)
    check(len(cdn) == 2, "expected 2 transfers of model.safetensors, got %d" % len(cdn))
    check(cdn[0][2] is None, "first transfer had a Range header")
    check(cdn[1][2] is not None and cdn[1][2].startswith("bytes=") and
          int(cdn[1][2][6:].rstrip("-")) > 0, "the retry did not resume with a Range: %s" %
          (cdn[1][2],))
    check("resuming" in p.stderr, "no 'resuming' message")
    check("retrying" in p.stderr and "503" in p.stderr, "the 503 of the listing was not retried")


def case_corrupt(c):
    # Once: refused, fetched again, runs.
    c.hub.faults["corrupt"]["model.safetensors"] = 1
    # A listing without size and sha256: X-Linked-Etag still gives the sha256.
    c.hub.faults["bare"].add("tokenizer.json")
    c.hub.faults["corrupt"]["tokenizer.json"] = 1
    p = c.gen("test/tiny")
    for f in ("model.safetensors", "tokenizer.json"):
        check(f + ": downloaded file does not match the repository (sha256 " in p.stderr and
              "downloading it again" in p.stderr,
              "the corrupted %s was not reported and fetched again" % f)
    # Always (a small non-LFS file, checked by its git blob id): refused, reported.
    c.hub.faults["corrupt"]["config.json"] = 100
    p = c.gen("test/sharded", expect_rc=1)
    check("config.json" in p.stderr and "git blob id" in p.stderr and "refusing" in p.stderr,
          "the corrupted config.json was not refused")
    snap = os.path.join(c.cache, "hf", "test--sharded", "snapshots", Hub.commit("test/sharded"))
    check(not os.path.exists(os.path.join(snap, "config.json")) and
          not os.path.exists(os.path.join(snap, "config.json.part")),
          "the corrupted file was kept")


def case_gated(c):
    p = c.gen("test/gated", expect_rc=1)
    for s in ("test/gated", "gated or private", "accept the license", "HF_TOKEN",
              c.endpoint + "/test/gated"):
        check(s in p.stderr, "gated message lacks %r" % s)
    check(p.stderr.count("\n") < 12, "gated message too long")
    p = c.gen("test/gated", expect_rc=1, HF_TOKEN="hf_not_a_real_token")
    check("HTTP 403" in p.stderr and "token from HF_TOKEN was refused" in p.stderr,
          "a refused token is not reported")
    check("hf_not_a_real_token" not in p.stderr, "the token was printed")
    # The token file huggingface-cli writes.
    tok = os.path.join(c.work, "home", ".cache", "huggingface", "token")
    os.makedirs(os.path.dirname(tok))
    with open(tok, "w") as f:
        f.write("hf_from_the_token_file\n")
    p = c.gen("test/gated", expect_rc=1)
    check("token from %s was refused" % tok in p.stderr, "the token file was not used")


def case_missing(c):
    p = c.gen("test/nope", expect_rc=1)
    check("no such repo: test/nope" in p.stderr, "missing repo not reported")
    p = c.gen("test/tiny:nothere.gguf", expect_rc=1)
    check("no such file" in p.stderr and "nothere.gguf" in p.stderr, "missing file not reported")
    p = c.gen("test/tiny@v9", expect_rc=1)
    check("no such revision 'v9'" in p.stderr, "missing revision not reported")
    p = c.gen("not-a-spec", expect_rc=1)
    check("not a model name: expected ORG/REPO" in p.stderr, "malformed spec not reported")
    check(not any(f.endswith(".lamina") for f in c.cached_files()), "a model appeared")


def case_server_down(c):
    c.hub.stop()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens on this port now
    t0 = time.time()
    p = c.gen("test/tiny", expect_rc=1, HF_ENDPOINT="http://127.0.0.1:%d" % port)
    check("cannot reach http://127.0.0.1:%d" % port in p.stderr and "no network" in p.stderr,
          "no clear network error")
    check(time.time() - t0 < 60, "took too long")


def case_gguf(c):
    p = c.gen("test/gguf", expect_rc=1)
    check("several .gguf files" in p.stderr and "tiny-F32.gguf" in p.stderr and
          "tiny-other.gguf" in p.stderr, "several .gguf files: no list to pick from")
    c.hub.clear_log()
    p = c.gen("test/gguf:tiny-F32.gguf")
    check(len(p.stdout.strip()) > 0, "no text generated from the GGUF")
    check(len(c.gets("/tiny-F32.gguf")) == 1 and not c.gets("/tiny-other.gguf"),
          "not exactly the chosen .gguf was downloaded")
    c.hub.clear_log()
    c.gen("test/gguf:tiny-F32.gguf")
    check(c.hub.requests() == [], "second run made requests")


def case_meta(c):
    py = os.environ.get("LAMINA_PYTHON", "/usr/bin/python3")
    if subprocess.run([py, "-c", "import torch"], capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            raise AssertionError("python3-torch missing under CI")
        print("SKIP: python3-torch not installed (tools/setup-deps.sh installs it)")
        sys.exit(77)
    d = os.path.join(c.root, "test", "meta")
    os.makedirs(d)
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write("Meta checkpoint in original/\n")
    subprocess.run([py, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "gen_meta_checkpoint.py"), "--out",
                    os.path.join(d, "original"), "--flavour", "bf16", "--dim", "64",
                    "--no-golden"], check=True, timeout=TIMEOUT)
    args = ["--tokens", "1,2,3", "-n", "4", "--temp", "0", "-t", "1"]
    p1 = c.run("llama-run", ["-hf", "test/meta"] + args)
    check(len(c.gets("/original/consolidated.00.pth")) == 1 and
          len(c.gets("/original/params.json")) == 1, "Meta files not downloaded")
    check("meta layout" in p1.stderr, "not taken as a Meta checkpoint")
    p2 = c.run("llama-run", ["-hf", "test/meta:original"] + args)
    check(p1.stdout == p2.stdout, "test/meta and test/meta:original differ")


def case_disk_full(c):
    c.hub.faults["huge"].add("model.safetensors")
    p = c.gen("test/tiny", expect_rc=1)
    check("not enough disk space" in p.stderr and "LAMINA_CACHE" in p.stderr,
          "no disk-space error")
    check(not c.gets("/model.safetensors") and not c.gets("/config.json"),
          "files were downloaded before the space check")


def case_pipeline(c):
    """A download is converted by lamina-convert's pipeline: the same file as
    lamina-convert on the files, defaults included (float model, ffn_dim 128:
    R4 and --quant auto's self-calibrated GPTQ), and with --quant, --rotate,
    --seed, --calib; other options are another cache entry."""
    local_dir = os.path.join(c.root, "test", "pow2")

    def same(hub_args, local_args, scheme):
        hub_out = os.path.join(c.work, "hub.lamina")
        local = os.path.join(c.work, "local.lamina")
        p = c.run("lamina-convert", ["-hf", "test/pow2", "-o", hub_out] + hub_args)
        check("converting" in p.stderr, "-hf %s reused another conversion" % hub_args)
        c.run("lamina-convert", [local_dir, "-o", local] + local_args)
        with open(hub_out, "rb") as a, open(local, "rb") as b:
            check(a.read() == b.read(), "-hf test/pow2 %s differs from lamina-convert DIR %s" %
                  (hub_args, local_args))
        info = c.run("lamina-convert", ["--info", hub_out]).stdout
        check("scheme '%s'" % scheme in info, "expected scheme %s:\n%s" % (scheme, info))
        return info

    info = same([], [], "q4-self+r4")
    check("R4 (online Hadamard before ffn_down); online Hadamard on %d ffn_down" % LAYERS in info,
          "the default conversion of a power-of-two ffn has no R4")
    # llama-run -hf: the same defaults, so the cached conversion.
    p = c.gen("test/pow2")
    check("cached" in p.stderr and "converting" not in p.stderr,
          "llama-run -hf did not reuse lamina-convert -hf's default conversion")
    same(["--quant", "search", "--rotate", "none"], ["--quant", "search", "--rotate", "none"],
         "q4-search")
    same(["--quant", "self", "--seed", "3"], ["--quant", "self", "--seed", "3"], "q4-self+r4")
    text = os.path.join(c.work, "calib.txt")
    with open(text, "w") as f:
        f.write("The quick brown fox jumps over the lazy dog, again and again. " * 40)
    same(["--calib", text], ["--calib", text], "q4-gptq+r4")
    # An option that changes nothing converts nothing: the default is cached.
    p = c.run("lamina-convert", ["-hf", "test/pow2"])
    check("cached" in p.stderr and "converting" not in p.stderr, "default not cached")


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in CASES:
        print(__doc__ + "\ncases: " + " ".join(CASES), file=sys.stderr)
        return 2
    c = Case(sys.argv[1], sys.argv[2])
    try:
        CASES[sys.argv[3]](c)
    except AssertionError as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        try:
            c.hub.stop()
        except Exception:
            pass
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
