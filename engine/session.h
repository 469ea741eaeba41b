// Saved sessions: a context's cached tokens, their KV rows, the last logits and
// optionally a sampler's RNG state, in one checksummed file bound to the model
// (Model::fingerprint) and the KV type.
//
// Layout (little-endian, every supported target is):
//   SessionHeader                     56 bytes
//   int32 tokens[n_tokens]
//   f32   logits[vocab]               if has_logits
//   per layer: keys [n_tokens][kv_dim], values [n_tokens][kv_dim]  (f16 or f32)
//   u64   checksum                    over everything before it (SessionChecksum)
#pragma once

#include <cstdint>
#include <string>

#include "engine/engine.h"
#include "engine/sampler.h"

namespace lamina::engine {

// Why a fixed 56-byte header of u32/u64 fields: read with one memcpy, no
// padding, and every size of the file follows from it before anything else is
// read (a truncated or padded file is caught by comparing sizes).
struct SessionHeader {
  char magic[8];               // kSessionMagic
  uint32_t version;            // kSessionVersion
  uint32_t kv_type;            // 0 f16, 1 f32
  uint64_t model_fingerprint;  // Model::fingerprint()
  uint32_t n_layers, kv_dim, vocab;
  uint32_t n_tokens;
  uint32_t has_logits, has_rng;
  uint64_t rng_state;
};
static_assert(sizeof(SessionHeader) == 56, "session header layout");

constexpr char kSessionMagic[8] = {'L', 'A', 'M', 'S', 'E', 'S', 'S', '\0'};
constexpr uint32_t kSessionVersion = 1;

/// Writes c's state (and rng's, if not null) to path atomically: a temporary
/// file in the same directory, flushed and fsync'ed, then renamed over path.
/// False + *err (naming the path and the failing step) on failure; path is
/// then untouched.
bool SaveSession(const Context& c, const Pcg32* rng, const std::string& path, std::string* err);

/// Reads and fully validates path (size, checksum, model fingerprint, KV type,
/// dimensions, token ids, n_tokens <= n_ctx) before touching c; then replaces
/// c's cache with the file's tokens and KV rows and restores rng (if both the
/// file has an RNG state and rng is not null). False + *err on any failure,
/// with c and rng unchanged.
bool LoadSession(Context* c, Pcg32* rng, const std::string& path, std::string* err);

}  // namespace lamina::engine
