#!/usr/bin/env python3
"""Checks that every repository path cited in the docs and in source comments exists.

  tools/check-doc-paths.py [--root DIR] [-v]

Run from anywhere (the default root is this script's repository). Exit status:
0 when every cited path exists, 1 when one does not (each is listed as
FILE:LINE: 'TOKEN' ...) or none is found at all, 2 on bad usage. ctest runs it
as `docs.paths` (tests/cmake/docs.cmake).

What is read: README.md, every docs/*.md and tests/**/README.md, and the
comments of every source file (C/C++ `//` and `/* */`; `#` in Python, shell
and CMake files). Code and string literals are not read: the compiler and the
tests check those.

What counts as a cited path (a "token" is a run of characters that can form a
path: letters, digits and `_ - . / * < > { } ( ) , |`; spaces, quotes,
backticks, square brackets, the parentheses of the prose around it and
trailing punctuation delimit it):
  1. A repo-relative path: it starts with a top-level directory of the tree
     (engine/ kernels/ loader/ tokenizer/ tools/ tests/ bench/ docs/ include/
     cmake/ .ci/) or is a top-level file (README.md, CMakeLists.txt, ...). It
     must exist; a trailing `/` means a directory.
  2. A file name with a source extension (.cpp .cc .c .h .hpp .py .sh .cmake
     .md .in), alone or after a partial directory (`ref/quant_ref.cpp`,
     `convert/pth_reader.h`): some file of the tree must end with it.
Placeholders and globs are allowed explicitly: `*`, `**` and `?` are globs,
`<word>` (`<dir>/*_test.cpp`, `tests/cmake/<component>.cmake`) and the
upper-case words N, NAME, ISA stand for any name, `{h,cpp}` lists
alternatives and `(f16s_)` marks an optional part (each form must exist). A
glob or placeholder must match at least one file. A repo-relative path without
extension may name a module by its stem (`tools/convert/json_schema` for
json_schema.{h,cpp}). `:LINE` and `#anchor` suffixes are ignored.
In a Markdown file a path starting with ../ is resolved against the file's
directory (a link). Not checked: anything under build*/ (generated), URLs,
paths outside the tree (../shared, the fixtures beside the repository;
`~/...`, `/usr/...`), and the names in EXTERNAL below (other projects' files
that the docs cite by name).
"""

import argparse
import fnmatch
import os
import re
import sys

TOP_DIRS = ("engine", "kernels", "loader", "tokenizer", "tools", "tests", "bench", "docs",
            "include", "cmake", ".ci")
TOP_FILES = ("README.md", "CMakeLists.txt", "CMakePresets.json", ".clang-format", ".gitignore")
SOURCE_EXTS = ("cpp", "cc", "c", "h", "hpp", "py", "sh", "cmake", "md", "in")
# Other projects' files cited by name (the comparison in a comment or doc is
# with them, not with a file of this tree).
EXTERNAL = {
    "llama.cpp", "gemma.cpp", "whisper.cpp", "run.c", "runq.c", "ggml.c", "ggml-quants.c",
    "llama.h", "ggml.h", "sentencepiece.h", "httplib.h", "json.hpp", "arm_neon.h", "arm_sve.h",
    "immintrin.h", "sys/auxv.h", "asm/hwcap.h", "cpuid.h", "unistd.h", "gtest.h",
    "benchmark.h", "export.py", "convert_hf_to_gguf.py", "convert.py", "model.py",
    "generation.py", "tokenizer.py", "configuration_llama.py", "modeling_llama.py",
    "CONTRIBUTING.md", "LICENSE.md", "llama2.c", "convert_llama_weights_to_hf.py",
    "bpe_model.cc", "app.c",
}
SKIP_DIRS = {".git", "build", ".deps", "__pycache__", "node_modules"}
COMMENT_C = (".cpp", ".cc", ".c", ".h", ".hpp", ".in")
COMMENT_HASH = (".py", ".sh", ".cmake")

TOKEN_RE = re.compile(r"[A-Za-z0-9_.*?<>{}(),|/+-]+")
PLACEHOLDER_RE = re.compile(r"<[A-Za-z0-9_|-]+>|\b(?:N|NAME|ISA)\b")


def tree_files(root):
    """Repo-relative paths of every file and directory (no build output)."""
    files, dirs = set(), set()
    for d, subdirs, names in os.walk(root):
        rel = os.path.relpath(d, root)
        subdirs[:] = [s for s in subdirs if s not in SKIP_DIRS and not s.startswith("build")
                      and not os.path.islink(os.path.join(d, s))]
        if rel != ".":
            dirs.add(rel.replace(os.sep, "/"))
        for n in names:
            files.add(os.path.normpath(os.path.join(rel, n)).replace(os.sep, "/"))
    return files, dirs


def c_comments(text):
    """(line, comment text) of every // and /* */ comment, skipping literals."""
    out, i, line, n = [], 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append((line, text[i + 2:j]))
            i = j
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j
            for k, part in enumerate(text[i + 2:j].split("\n")):
                out.append((line + k, part))
            line += text.count("\n", i, j)
            i = j + 2
        elif c == 'R' and text.startswith('R"', i) and (i == 0 or not text[i - 1].isalnum()):
            m = re.match(r'R"([^()\\ ]{0,16})\(', text[i:])
            if not m:
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            end = n if end < 0 else end + len(m.group(1)) + 2
            line += text.count("\n", i, end)
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        else:
            i += 1
    return out


def hash_comments(text):
    """(line, comment text) of every # comment outside a quoted string."""
    out = []
    for ln, s in enumerate(text.split("\n"), 1):
        quote = None
        for k, c in enumerate(s):
            if quote:
                if c == "\\":
                    continue
                if c == quote:
                    quote = None
            elif c in "\"'":
                quote = c
            elif c == "#":
                if not s.startswith("#!") or ln != 1:
                    out.append((ln, s[k + 1:]))
                break
    return out


def expand_braces(tok):
    """The alternatives of `tok`: {a,b} lists them, (x) is an optional part."""
    m = re.search(r"\{([^{}]*)\}", tok)
    if m:
        alts = m.group(1).split(",")
    else:
        m = re.search(r"\(([^()]*)\)", tok)
        if not m:
            return [tok]
        alts = [m.group(1), ""]
    out = []
    for alt in alts:
        out += expand_braces(tok[:m.start()] + alt + tok[m.end():])
    return out


def strip_prose(tok):
    """Drops the punctuation of the sentence around a path: trailing . , ; : -
    and unbalanced or enclosing parentheses ("(see x.h)." or "[x](y.md)")."""
    while True:
        t = tok.rstrip(".,;:-")
        if t.startswith("(") and (t.endswith(")") or t.count("(") > t.count(")")):
            t = t[1:-1] if t.endswith(")") and t.count("(") == t.count(")") else t[1:]
        while t.endswith(")") and t.count(")") > t.count("("):
            t = t[:-1]
        if t == tok:
            return t
        tok = t


def candidates(text):
    """Tokens of `text` that look like cited paths."""
    text = re.sub(r"[a-z][a-z0-9+.-]*://\S+", " ", text)  # URLs
    text = text.replace("\\|", "|")  # Markdown table cells escape |
    for m in TOKEN_RE.finditer(text):
        tok = strip_prose(m.group(0))
        if text[m.start() - 1:m.start()] in ("~", "$", "@", ":") or tok.startswith("/"):
            continue  # ~/x, $VAR/x, @REV, /abs/path
        tok = strip_prose(re.sub(r"(:[0-9]+(-[0-9]+)?)$", "", tok))
        # Balanced braces only (a `{` closed in another token is prose).
        if tok.count("{") != tok.count("}") or tok.count("(") != tok.count(")"):
            continue
        tok = tok.strip(",")
        if re.fullmatch(r"<[^<>]+\.[a-z]+>", tok):
            tok = tok[1:-1]  # #include form: <lamina/lamina.h>
        if not tok or tok.startswith("-"):
            continue
        yield tok


def classify(tok):
    """'path' (repo-relative), 'name' (file name, maybe with partial dirs) or None."""
    if tok.startswith("./"):
        tok = tok[2:]
    first = tok.split("/", 1)[0]
    if first.startswith("build") or first == "..":
        return None  # generated files; ../ is resolved by the caller first
    if "/" in tok and first in TOP_DIRS:
        return "path"
    if tok in TOP_FILES:
        return "path"
    base = tok.rsplit("/", 1)[-1]
    if "." not in base:
        return None
    ext = base.rsplit(".", 1)[1]
    if ext not in SOURCE_EXTS and not re.fullmatch(r"\{[a-z,]+\}", ext):
        return None
    if not re.fullmatch(r"[A-Za-z0-9_*?<>{},|+-][A-Za-z0-9_.*?<>{},|+-]*", base):
        return None
    if base.startswith(".") or tok in EXTERNAL or base in EXTERNAL:
        return None
    return "name"


def to_glob(pattern):
    return PLACEHOLDER_RE.sub("*", pattern)


def exists(tok, kind, files, dirs):
    tok = tok[2:] if tok.startswith("./") else tok
    for alt in expand_braces(tok):
        is_dir = alt.endswith("/")
        alt = alt.rstrip("/")
        pat = to_glob(alt)
        wild = any(c in pat for c in "*?")
        pool = dirs if is_dir else (files | dirs if kind == "path" else files)
        if kind == "path":
            if wild:
                # `**/` matches zero or more directories.
                pats = {pat, pat.replace("**/", "")}
                if not any(fnmatch.fnmatchcase(p, q) for p in pool for q in pats):
                    return False
            elif alt not in pool and not any(p.startswith(alt + ".") and "/" not in p[len(alt):]
                                             for p in files):
                return False  # neither a file nor a stem (tools/common/cli: cli.h)
        else:
            suffix = "/" + pat
            if wild:
                if not any(fnmatch.fnmatchcase("/" + p, "*" + suffix) for p in pool):
                    return False
            elif not any(("/" + p).endswith(suffix) for p in pool):
                return False
    return True


def sources(root, files):
    """(path, [(line, text)]) of every doc and every source file's comments."""
    for f in sorted(files):
        name = f.rsplit("/", 1)[-1]
        if f == "README.md" or (f.startswith("docs/") and f.endswith(".md")) or (
                f.startswith("tests/") and name == "README.md"):
            kind = "md"
        elif f.endswith(COMMENT_C):
            kind = "c"
        elif f.endswith(COMMENT_HASH) or name == "CMakeLists.txt":
            kind = "hash"
        else:
            continue
        try:
            with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        if kind == "md":
            yield f, list(enumerate(text.split("\n"), 1))
        elif kind == "c":
            yield f, c_comments(text)
        else:
            yield f, hash_comments(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("-v", "--verbose", action="store_true", help="list every checked citation")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    if not os.path.isdir(root):
        print(f"check-doc-paths: {root}: not a directory", file=sys.stderr)
        return 2
    files, dirs = tree_files(root)
    missing, checked = [], 0
    for f, lines in sources(root, files):
        for ln, text in lines:
            for tok in candidates(text):
                if tok.startswith("../"):
                    # In a Markdown file: relative to it (a link). Elsewhere,
                    # and ../shared (the fixtures beside the repository)
                    # anywhere: outside the tree, not checked.
                    if not f.endswith(".md") or tok.startswith("../shared"):
                        continue
                    rel = os.path.normpath(os.path.join(os.path.dirname(f), tok))
                    if rel.startswith(".."):
                        continue
                    tok = rel.replace(os.sep, "/") + ("/" if tok.endswith("/") else "")
                kind = classify(tok)
                if not kind:
                    continue
                checked += 1
                ok = exists(tok, kind, files, dirs)
                if args.verbose:
                    print(f"{f}:{ln}: {'ok' if ok else 'MISSING'} {kind} '{tok}'")
                if not ok:
                    missing.append(f"{f}:{ln}: '{tok}' cites no file of the tree")
    for m in missing:
        print(m, file=sys.stderr)
    print(f"check-doc-paths: {checked} cited paths checked, {len(missing)} missing")
    if checked == 0:
        print(f"check-doc-paths: no cited path found under {root} (not a lamina tree?)",
              file=sys.stderr)
        return 1
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
