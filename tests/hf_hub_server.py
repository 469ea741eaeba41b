#!/usr/bin/python3
"""A fake Hugging Face Hub on 127.0.0.1 for the -hf tests (tests/hf_hub_test.py).

Serves repositories from ROOT/ORG/REPO/<files> the way huggingface.co does:

  GET /api/models/ORG/REPO/revision/REV[?blobs=True]
      {"id", "sha", "siblings": [{"rfilename", "size", "blobId"[, "lfs": {"sha256", "size"}]}]}
      (without blobs=True, as on the real hub, siblings hold only rfilename)
  GET|HEAD /ORG/REPO/resolve/REV/PATH
      small files: 200 with ETag "<git blob sha1>", X-Repo-Commit
      LFS files (*.safetensors, *.gguf, *.pth, tokenizer.json): 302 to /cdn/<sha256> with
      X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit; /cdn serves the bytes
  Content-Length, ETag and single "Range: bytes=N-[M]" requests (206 / 416).
  Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound,
  GatedRepo) and X-Error-Message, as the real hub does.

Fault injection (Hub.faults, set by the test):
  drop_once    {path}: the first full GET of that file sends half its bytes, then
               closes the connection
  corrupt      {path: n}: the next n transfers of that file flip one byte
  fail_api     n: the next n API calls answer 503
  gated        {ORG/REPO}: resolve answers 401 GatedRepo (the listing stays public)
  huge         {path}: the listing claims that file has 2**50 bytes (a disk-space check)
  bare         {path}: the listing gives only the name of that file (no size, hashes)
Every request is appended to Hub.log as (method, path, range header).

Standalone:  tests/hf_hub_server.py ROOT   (serves on a free port, which it prints)
"""
import argparse
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".gguf", ".pth", "tokenizer.json")


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub:
    def __init__(self, root):
        self.root = root
        self.log = []
        self.lock = threading.Lock()
        self.faults = {"drop_once": set(), "corrupt": {}, "fail_api": 0, "gated": set(),
                       "huge": set(), "bare": set()}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def requests(self):
        with self.lock:
            return list(self.log)

    def clear_log(self):
        with self.lock:
            self.log.clear()

    @staticmethod
    def commit(repo):
        return hashlib.sha1(("commit " + repo).encode()).hexdigest()

    def repo_dir(self, repo):
        d = os.path.join(self.root, repo)
        return d if os.path.isdir(d) else None

    def files(self, repo):
        d = self.repo_dir(repo)
        out = []
        for base, _, names in os.walk(d):
            for n in sorted(names):
                out.append(os.path.relpath(os.path.join(base, n), d))
        return sorted(out)

    def _handler(hub):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send_error_code(self, status, code, msg):
                body = json.dumps({"error": msg}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", msg)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                path = unquote(urlsplit(self.path).path)
                with hub.lock:
                    hub.log.append((self.command, path, self.headers.get("Range")))
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) >= 4:
                    query = parse_qs(urlsplit(self.path).query)
                    blobs = query.get("blobs", [""])[0].lower() in ("true", "1")
                    return self.api(parts[2] + "/" + parts[3], parts[4:], blobs)
                if parts[0] == "cdn" and len(parts) == 2:
                    return self.cdn(parts[1])
                if len(parts) >= 5 and parts[2] == "resolve":
                    return self.resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]))
                if path == "/":
                    return self.send_bytes(b"fake hub\n", {})
                self.send_error_code(404, "NotFound", "no route " + path)

            def api(self, repo, rest, blobs):
                with hub.lock:
                    fail = hub.faults["fail_api"] > 0
                    if fail:
                        hub.faults["fail_api"] -= 1
                if fail:
                    return self.send_error_code(503, "ServiceUnavailable", "try again later")
                if not hub.repo_dir(repo):
                    return self.send_error_code(404, "RepoNotFound", "Repository not found")
                rev = rest[1] if len(rest) >= 2 and rest[0] == "revision" else "main"
                if rev not in ("main", Hub.commit(repo)):
                    return self.send_error_code(404, "RevisionNotFound", "Invalid rev id: " + rev)
                sib = []
                for f in hub.files(repo):
                    data = open(os.path.join(hub.repo_dir(repo), f), "rb").read()
                    e = {"rfilename": f, "size": len(data)}
                    if f.endswith(LFS_SUFFIXES):
                        e["blobId"] = git_blob_sha1(b"version https://git-lfs pointer " + f.encode())
                        e["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                    "pointerSize": 134}
                    else:
                        e["blobId"] = git_blob_sha1(data)
                    if f in hub.faults["huge"]:
                        e["size"] = 2 ** 50
                        if "lfs" in e:
                            e["lfs"]["size"] = 2 ** 50
                    bare = not blobs or f in hub.faults["bare"]
                    sib.append({"rfilename": f} if bare else e)
                body = json.dumps({"id": repo, "modelId": repo, "sha": Hub.commit(repo),
                                   "gated": repo in hub.faults["gated"] and "manual",
                                   "siblings": sib}).encode()
                self.send_bytes(body, {"Content-Type": "application/json"})

            def resolve(self, repo, rev, f):
                if not hub.repo_dir(repo):
                    return self.send_error_code(404, "RepoNotFound", "Repository not found")
                if repo in hub.faults["gated"]:
                    auth = self.headers.get("Authorization", "")
                    msg = ("Access to model %s is restricted. You must have access to it and be "
                           "authenticated to access it. Please log in." % repo)
                    if auth:
                        return self.send_error_code(403, "GatedRepo", msg)
                    return self.send_error_code(401, "GatedRepo", msg)
                if rev not in ("main", Hub.commit(repo)):
                    return self.send_error_code(404, "RevisionNotFound", "Invalid rev id: " + rev)
                p = os.path.join(hub.repo_dir(repo), f)
                if ".." in f.split("/") or not os.path.isfile(p):
                    return self.send_error_code(404, "EntryNotFound", "Entry not found")
                data = open(p, "rb").read()
                common = {"X-Repo-Commit": Hub.commit(repo)}
                if f.endswith(LFS_SUFFIXES):
                    sha = hashlib.sha256(data).hexdigest()
                    with hub.lock:
                        hub.cdn_names = getattr(hub, "cdn_names", {})
                        hub.cdn_names[sha] = (p, f)
                    self.send_response(302)
                    self.send_header("Location", "/cdn/" + sha)
                    self.send_header("X-Linked-Etag", '"%s"' % sha)
                    self.send_header("X-Linked-Size", str(len(data)))
                    self.send_header("ETag", 'W/"redirect"')
                    for k, v in common.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                common["ETag"] = '"%s"' % git_blob_sha1(data)
                self.send_file(f, data, common)

            def cdn(self, sha):
                with hub.lock:
                    entry = getattr(hub, "cdn_names", {}).get(sha)
                if not entry:
                    return self.send_error_code(404, "NotFound", "no such object")
                p, f = entry
                self.send_file(f, open(p, "rb").read(), {"ETag": '"%s"' % sha})

            def send_file(self, name, data, headers):
                with hub.lock:
                    corrupt = hub.faults["corrupt"].get(name, 0) > 0
                    if corrupt and self.command == "GET":
                        hub.faults["corrupt"][name] -= 1
                    drop = name in hub.faults["drop_once"] and self.command == "GET"
                    if drop:
                        hub.faults["drop_once"].discard(name)
                if corrupt:
                    mid = len(data) // 2
                    data = data[:mid] + bytes([data[mid] ^ 0x55]) + data[mid + 1:]
                start, end = 0, len(data) - 1
                rng = self.headers.get("Range")
                status = 200
                if rng:
                    if not rng.startswith("bytes=") or "," in rng:
                        return self.send_error_code(400, "BadRange", "bad range " + rng)
                    a, _, b = rng[6:].partition("-")
                    start = int(a)
                    end = int(b) if b else len(data) - 1
                    if start >= len(data) or end < start:
                        self.send_response(416)
                        self.send_header("Content-Range", "bytes */%d" % len(data))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    end = min(end, len(data) - 1)
                    status = 206
                body = data[start:end + 1]
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if drop:
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def send_bytes(self, body, headers):
                self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

        return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    args = ap.parse_args()
    hub = Hub(args.root).start()
    print(hub.port, flush=True)
    try:
        hub.thread.join()
    except KeyboardInterrupt:
        hub.stop()


if __name__ == "__main__":
    sys.exit(main())
