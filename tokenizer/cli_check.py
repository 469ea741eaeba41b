#!/usr/bin/env python3
"""End-to-end check of lamina-tokenize (registered by tests/cmake/tokenizer.cmake).

usage: cli_check.py VECTORS_JSON TOKENIZER -- CMD...   (CMD = [emulator] lamina-tokenize)

Feeds every vectors.json text to `CMD --tokenizer TOKENIZER --jsonl` and
requires the exact ids back; then checks -p / --decode round trips.
"""
import json
import subprocess
import sys


def main():
    if "--" not in sys.argv or len(sys.argv) < 5:
        print(__doc__)
        return 2
    sep = sys.argv.index("--")
    vectors_path, tok = sys.argv[1], sys.argv[2]
    cmd = [c for c in sys.argv[sep + 1:] if c]
    vectors = json.load(open(vectors_path, encoding="utf-8"))
    stdin = "".join(json.dumps(v["text"]) + "\n" for v in vectors)
    r = subprocess.run(cmd + ["--tokenizer", tok, "--jsonl"], input=stdin.encode("utf-8"),
                       capture_output=True, check=False)
    if r.returncode != 0:
        print("--jsonl failed:", r.stderr.decode(errors="replace"))
        return 1
    lines = r.stdout.decode().splitlines()
    if len(lines) != len(vectors):
        print("expected %d lines, got %d" % (len(vectors), len(lines)))
        return 1
    bad = 0
    for v, line in zip(vectors, lines):
        if json.loads(line) != v["ids"]:
            bad += 1
            if bad <= 5:
                print("mismatch:", repr(v["text"][:80]), line[:200])
    print("--jsonl: %d / %d vectors match" % (len(vectors) - bad, len(vectors)))
    if bad:
        return 1
    text = "Hello world<|eot_id|> é🦙"
    r = subprocess.run(cmd + ["--tokenizer", tok, "-p", text, "--bos"], capture_output=True,
                       check=True)
    ids = r.stdout.decode().strip()
    if not ids.startswith("128000,") or "128009" not in ids.split(","):
        print("-p --bos gave", ids)
        return 1
    r = subprocess.run(cmd + ["--tokenizer", tok, "--decode", ids], capture_output=True,
                       check=True)
    if r.stdout.decode("utf-8") != "<|begin_of_text|>" + text + "\n":
        print("--decode gave", repr(r.stdout))
        return 1
    # Invalid UTF-8 on a --jsonl line (a lone surrogate escape): clean error, exit 1.
    r = subprocess.run(cmd + ["--tokenizer", tok, "--jsonl"], input=b'"ok"\n[1]\n',
                       capture_output=True, check=False)
    if r.returncode != 1 or b"line 2" not in r.stderr:
        print("bad --jsonl input: rc", r.returncode, r.stderr)
        return 1
    print("lamina-tokenize CLI OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
