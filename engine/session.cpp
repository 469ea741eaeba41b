#include "engine/session.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace lamina::engine {
namespace {

// Checksum: FNV-1a style over 64-bit words (8x fewer multiplies than per byte:
// a session of a 1B model at 8k tokens is ~256 MiB), section by section, so the
// writer can stream sections and the reader hash the same boundaries.
uint64_t MixSection(uint64_t h, const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, b + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
  }
  for (; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return (h ^ n) * 0x100000001b3ull;
}
constexpr uint64_t kChecksumSeed = 0xcbf29ce484222325ull;

struct Section {
  const uint8_t* p;
  size_t n;
};

// The sections after the header, in file order.
std::vector<Section> Sections(const uint8_t* tokens, const uint8_t* logits, size_t logits_bytes,
                              const Context& c, int n_tokens, const uint8_t* kv_base,
                              bool from_context) {
  std::vector<Section> s;
  s.push_back({tokens, sizeof(int32_t) * static_cast<size_t>(n_tokens)});
  if (logits) s.push_back({logits, logits_bytes});
  const size_t rows = static_cast<size_t>(n_tokens) * c.kv_row_bytes();
  for (int l = 0; l < c.model().config().n_layers; ++l)
    for (int w = 0; w < 2; ++w)
      s.push_back(
          {from_context ? c.kv_rows(l, w) : kv_base + static_cast<size_t>(2 * l + w) * rows, rows});
  return s;
}

bool WriteAll(int fd, const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    b += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, void* p, size_t n) {
  uint8_t* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    const ssize_t r = ::read(fd, b, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

}  // namespace

bool SaveSession(const Context& c, const Pcg32* rng, const std::string& path, std::string* err) {
  const Config& cfg = c.model().config();
  SessionHeader h;
  std::memset(&h, 0, sizeof(h));
  std::memcpy(h.magic, kSessionMagic, sizeof(h.magic));
  h.version = kSessionVersion;
  h.kv_type = c.kv_type() == kern::KvType::kF32 ? 1 : 0;
  h.model_fingerprint = c.model().fingerprint();
  h.n_layers = static_cast<uint32_t>(cfg.n_layers);
  h.kv_dim = static_cast<uint32_t>(cfg.kv_dim);
  h.vocab = static_cast<uint32_t>(cfg.vocab);
  h.n_tokens = static_cast<uint32_t>(c.n_past());
  const float* logits = c.n_past() > 0 ? c.logits() : nullptr;
  h.has_logits = logits ? 1 : 0;
  h.has_rng = rng ? 1 : 0;
  h.rng_state = rng ? rng->state() : 0;
  const std::vector<Section> secs =
      Sections(reinterpret_cast<const uint8_t*>(c.history().data()),
               reinterpret_cast<const uint8_t*>(logits), sizeof(float) * cfg.vocab, c, c.n_past(),
               nullptr, true);

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *err = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  uint64_t sum = MixSection(kChecksumSeed, &h, sizeof(h));
  bool ok = WriteAll(fd, &h, sizeof(h));
  for (const Section& s : secs) {
    if (!ok) break;
    sum = MixSection(sum, s.p, s.n);
    ok = WriteAll(fd, s.p, s.n);
  }
  ok = ok && WriteAll(fd, &sum, sizeof(sum));
  const int write_errno = errno;
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    *err = "writing " + tmp + " failed: " + std::strerror(write_errno ? write_errno : errno);
    ::unlink(tmp.c_str());
    return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *err = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

bool LoadSession(Context* c, Pcg32* rng, const std::string& path, std::string* err) {
  const Config& cfg = c->model().config();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *err = path + ": not a regular file";
    return false;
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  SessionHeader h;
  if (size < sizeof(h) || !ReadAll(fd, &h, sizeof(h))) {
    *err = path + ": truncated session file (" + std::to_string(size) + " bytes, header needs " +
           std::to_string(sizeof(h)) + ")";
    return false;
  }
  if (std::memcmp(h.magic, kSessionMagic, sizeof(h.magic)) != 0) {
    *err = path + ": not a lamina session file (bad magic)";
    return false;
  }
  if (h.version != kSessionVersion) {
    *err = path + ": session format version " + std::to_string(h.version) + ", this build reads " +
           std::to_string(kSessionVersion);
    return false;
  }
  if (h.model_fingerprint != c->model().fingerprint() ||
      h.n_layers != static_cast<uint32_t>(cfg.n_layers) ||
      h.kv_dim != static_cast<uint32_t>(cfg.kv_dim) ||
      h.vocab != static_cast<uint32_t>(cfg.vocab)) {
    *err = path + ": the session was saved with another model (fingerprint " +
           std::to_string(h.model_fingerprint) + ", this model's " +
           std::to_string(c->model().fingerprint()) + ")";
    return false;
  }
  const uint32_t ctx_kv = c->kv_type() == kern::KvType::kF32 ? 1 : 0;
  if (h.kv_type > 1 || h.kv_type != ctx_kv) {
    *err = path + ": the session holds a " +
           (h.kv_type == 1   ? "f32"
            : h.kv_type == 0 ? "f16"
                             : "?") +
           " KV cache, the context's is " + (ctx_kv ? "f32" : "f16");
    return false;
  }
  if (h.n_tokens > static_cast<uint32_t>(c->n_ctx())) {
    *err = path + ": the session holds " + std::to_string(h.n_tokens) +
           " tokens, more than the context's n_ctx " + std::to_string(c->n_ctx());
    return false;
  }
  if (h.has_logits > 1 || h.has_rng > 1 || (h.has_logits && h.n_tokens == 0)) {
    *err = path + ": corrupt session header (flags)";
    return false;
  }
  const uint64_t n = h.n_tokens;
  const uint64_t rows = n * c->kv_row_bytes();
  const uint64_t logits_bytes = h.has_logits ? sizeof(float) * uint64_t(cfg.vocab) : 0;
  const uint64_t body = 4 * n + logits_bytes + rows * 2 * cfg.n_layers;
  const uint64_t want = sizeof(h) + body + 8;
  if (size != want) {
    *err = path + ": " + (size < want ? "truncated" : "oversized") +
           " session file: " + std::to_string(size) + " bytes, its header implies " +
           std::to_string(want);
    return false;
  }
  std::vector<uint8_t> buf(static_cast<size_t>(body + 8));
  if (!ReadAll(fd, buf.data(), buf.size())) {
    *err = path + ": read error: " + std::strerror(errno);
    return false;
  }
  const uint8_t* tokens = buf.data();
  const uint8_t* logits = h.has_logits ? tokens + 4 * n : nullptr;
  const uint8_t* kv = tokens + 4 * n + logits_bytes;
  const std::vector<Section> secs =
      Sections(tokens, logits, logits_bytes, *c, static_cast<int>(n), kv, false);
  uint64_t sum = MixSection(kChecksumSeed, &h, sizeof(h));
  for (const Section& s : secs) sum = MixSection(sum, s.p, s.n);
  uint64_t stored;
  std::memcpy(&stored, buf.data() + body, 8);
  if (sum != stored) {
    *err = path + ": corrupt session file (checksum mismatch)";
    return false;
  }
  std::vector<int32_t> ids(static_cast<size_t>(n));
  if (n) std::memcpy(ids.data(), tokens, 4 * n);
  for (uint64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= cfg.vocab) {
      *err = path + ": corrupt session file (token " + std::to_string(ids[i]) + " at " +
             std::to_string(i) + " outside the vocabulary)";
      return false;
    }
  std::vector<float> lg;
  if (logits) {
    lg.resize(static_cast<size_t>(cfg.vocab));
    std::memcpy(lg.data(), logits, logits_bytes);
  }
  // Everything validated: now replace the context's state.
  for (int l = 0; l < cfg.n_layers; ++l)
    for (int w = 0; w < 2; ++w)
      if (rows) std::memcpy(c->kv_rows(l, w), kv + static_cast<size_t>(2 * l + w) * rows, rows);
  c->RestoreTokens(ids.data(), static_cast<int>(n), logits ? lg.data() : nullptr);
  if (rng && h.has_rng) rng->set_state(h.rng_state);
  return true;
}

}  // namespace lamina::engine
