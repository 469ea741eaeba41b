#!/usr/bin/env python3
"""NumPy reference of lamina-perplexity's figures (tests/perplexity_test.cpp).

Reads the logits `llama-run --tokens ... --dump-logits` wrote for each window
(raw little-endian f32 [ctx x vocab] per window, windows concatenated) and the
windows' token ids, and prints the JSON object lamina-perplexity --json
prints: llama.cpp's convention, the second half of each window scored
(logits at p = ctx//2 .. ctx-2 predict token p+1).

usage: perplexity_ref.py --ctx C --vocab V --tokens IDS.txt --logits M.f32
                         [--base-logits B.f32]
"""
import argparse
import json

import numpy as np


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--logits", required=True)
    ap.add_argument("--base-logits")
    a = ap.parse_args()
    ids = np.array([int(t) for t in open(a.tokens).read().split(",") if t.strip()])
    C, V = a.ctx, a.vocab
    W = len(ids) // C
    assert W * C == len(ids)
    ids = ids.reshape(W, C)
    lm = np.fromfile(a.logits, dtype="<f4").reshape(W, C, V)
    first = C // 2
    pos = np.arange(first, C - 1)
    tgt = ids[:, pos + 1]                     # [W, S]
    lpm = log_softmax(lm[:, pos, :])          # [W, S, V]
    nll = -np.take_along_axis(lpm, tgt[..., None], axis=-1)[..., 0].reshape(-1)
    n = nll.size
    ppl = float(np.exp(nll.mean()))
    var = (nll * nll).mean() - nll.mean() ** 2
    out = {"n_tokens": n, "ppl": ppl,
           "ppl_stderr": float(ppl * np.sqrt(var / (n - 1))) if n > 1 and var > 0 else 0.0}
    if a.base_logits:
        lb = np.fromfile(a.base_logits, dtype="<f4").reshape(W, C, V)[:, pos, :]
        lpb = log_softmax(lb)
        kl = (np.exp(lpb) * (lpb - lpm)).sum(axis=-1).reshape(-1)
        bnll = -np.take_along_axis(lpb, tgt[..., None], axis=-1)[..., 0].reshape(-1)
        out["kl"] = float(kl.mean())
        out["kl_p99"] = float(np.percentile(kl, 99))
        out["top1"] = float((lb.argmax(-1) == lm[:, pos, :].argmax(-1)).mean())
        out["ppl_ratio"] = ppl / float(np.exp(bnll.mean()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
