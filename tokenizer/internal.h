// Internals shared by the tokenizer implementations (not a public header).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lamina::tok {

// ------------------------------------------------------------ serialization
// Blob layout (little-endian): "LTOK" u32 version u32 kind u32 payload_size
// u64 payload_hash, then the kind's payload. Every read is bounds-checked.
inline constexpr char kBlobMagic[4] = {'L', 'T', 'O', 'K'};
inline constexpr uint32_t kBlobVersion = 1;
enum class Kind : uint32_t {
  kByteBpe = 1,
  kScored = 2,
  // A SentencePiece .model protobuf (u32 size + bytes), written by
  // lamina-convert built with libsentencepiece before the importers left the
  // runtime; read by spm_proto.cpp into the scored BPE, which serializes as
  // kScored. Nothing writes kind 3 any more.
  kSentencePiece = 3,
  kBytes = 4,
  kHfSpmBpe = 5,  // SentencePiece-style Hugging Face tokenizer.json (hf_spm.cpp)
};

/// The byte of a SentencePiece byte piece "<0xNN>" (uppercase hex), else -1.
inline int ParseBytePiece(std::string_view p) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  const int h = hex(p[3]), l = hex(p[4]);
  return h < 0 || l < 0 ? -1 : h * 16 + l;
}

/// Fast 64-bit hash (8 bytes at a time), used for the blob checksum and the
/// vocabulary hash tables.
uint64_t Hash64(const void* data, size_t n, uint64_t seed = 0);

/// Every Encode's precondition: `text` is valid UTF-8 and shorter than
/// `max_bytes` (the tokenizer's offset width). False + *err (when err is not
/// null) naming the first invalid byte offset or the limit.
bool CheckEncodeInput(std::string_view text, uint64_t max_bytes, std::string* err);

class BlobWriter {
 public:
  void U8(uint8_t v) { buf_.push_back(v); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void I32(int32_t v) { Raw(&v, 4); }
  void F32(float v) { Raw(&v, 4); }
  void Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Raw(s.data(), s.size());
  }
  void Raw(const void* p, size_t n) {
    if (n == 0) return;
    const size_t o = buf_.size();
    buf_.resize(o + n);
    std::memcpy(buf_.data() + o, p, n);
  }
  /// Wraps the payload written so far with the blob header.
  std::vector<uint8_t> Finish(Kind kind) const;

 private:
  std::vector<uint8_t> buf_;
};

class BlobReader {
 public:
  BlobReader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool ok() const { return ok_; }
  const std::string& error() const { return err_; }
  bool Fail(const std::string& what) {
    if (ok_) err_ = what;
    ok_ = false;
    return false;
  }
  size_t remaining() const { return ok_ ? n_ - pos_ : 0; }
  bool Raw(void* dst, size_t n, const char* field) {
    if (!ok_) return false;
    if (n > n_ - pos_) return Fail(std::string("truncated at ") + field);
    if (n) std::memcpy(dst, p_ + pos_, n);
    pos_ += n;
    return true;
  }
  const uint8_t* Span(size_t n, const char* field) {
    if (!ok_) return nullptr;
    if (n > n_ - pos_) {
      Fail(std::string("truncated at ") + field);
      return nullptr;
    }
    const uint8_t* r = p_ + pos_;
    pos_ += n;
    return r;
  }
  uint8_t U8(const char* f) {
    uint8_t v = 0;
    Raw(&v, 1, f);
    return v;
  }
  uint32_t U32(const char* f) {
    uint32_t v = 0;
    Raw(&v, 4, f);
    return v;
  }
  int32_t I32(const char* f) {
    int32_t v = 0;
    Raw(&v, 4, f);
    return v;
  }
  float F32(const char* f) {
    float v = 0;
    Raw(&v, 4, f);
    return v;
  }
  std::string Str(const char* f, size_t max_len = 1u << 20) {
    const uint32_t n = U32(f);
    if (!ok_) return {};
    if (n > max_len) {
      Fail(std::string("length out of range at ") + f);
      return {};
    }
    const uint8_t* s = Span(n, f);
    return s ? std::string(reinterpret_cast<const char*>(s), n) : std::string();
  }
  /// A count of elements of `elem_size` bytes each that must fit in the rest.
  uint32_t Count(const char* f, size_t elem_size) {
    const uint32_t n = U32(f);
    if (ok_ && static_cast<uint64_t>(n) * elem_size > n_ - pos_) {
      Fail(std::string("count out of range at ") + f);
      return 0;
    }
    return ok_ ? n : 0;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string err_;
};

// -------------------------------------------------------- string -> id map
/// Open-addressing hash map from byte strings (stored elsewhere, addressed by
/// id through `key_of`) to ids. Build once, read concurrently.
class StrIdMap {
 public:
  template <typename KeyOf>
  void Build(size_t n_ids, const KeyOf& key_of, const std::vector<uint8_t>* include = nullptr) {
    size_t cap = 16;
    while (cap < n_ids * 2) cap <<= 1;
    mask_ = cap - 1;
    slots_.assign(cap, Slot{0, -1});
    for (size_t id = 0; id < n_ids; ++id) {
      if (include && !(*include)[id]) continue;
      const std::string_view k = key_of(static_cast<int32_t>(id));
      const uint64_t h = Hash64(k.data(), k.size());
      size_t i = h & mask_;
      bool dup = false;
      while (slots_[i].id >= 0) {
        if (slots_[i].hash == static_cast<uint32_t>(h >> 32) && key_of(slots_[i].id) == k) {
          dup = true;  // keep the first (lowest) id
          break;
        }
        i = (i + 1) & mask_;
      }
      if (!dup) slots_[i] = Slot{static_cast<uint32_t>(h >> 32), static_cast<int32_t>(id)};
    }
  }
  template <typename KeyOf>
  int32_t Find(std::string_view k, const KeyOf& key_of) const {
    if (slots_.empty()) return -1;
    const uint64_t h = Hash64(k.data(), k.size());
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    size_t i = h & mask_;
    while (slots_[i].id >= 0) {
      if (slots_[i].hash == tag && key_of(slots_[i].id) == k) return slots_[i].id;
      i = (i + 1) & mask_;
    }
    return -1;
  }

 private:
  struct Slot {
    uint32_t hash;
    int32_t id;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// ------------------------------------------------------------ constructors
// The runtime builds these from a blob (Deserialize); the importers of
// tools/import/ (tiktoken, tokenizer.json, SentencePiece .model, llama2.c,
// GGUF vocabularies) build them from their source formats. Each validates its
// inputs fully; error: nullptr + *err.

inline constexpr char kSpaceMark[] = "\xE2\x96\x81";  // U+2581, SentencePiece's space

/// Byte-level BPE (Llama 3): token bytes by id (specials: their text), special
/// flags, merges as (left, right) pairs in rank order. bos/eos -1: the Llama 3
/// defaults when the vocabulary is Llama 3's (which also sets the chat
/// template and stop ids). `name` prefixes error messages.
std::unique_ptr<Tokenizer> MakeByteBpe(const std::string& name, std::vector<std::string> tokens,
                                       std::vector<uint8_t> special,
                                       const std::vector<std::pair<int32_t, int32_t>>& merges,
                                       int32_t bos, int32_t eos, std::string* err);

/// Piece types of SentencePiece's ModelProto (also GGUF's token_type).
namespace spm {
inline constexpr int kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5,
                     kByte = 6;
}  // namespace spm
enum class ScoredMode : uint8_t { kSentencePiece = 0, kLlama2c = 1 };
/// Scored BPE (spm.cpp): pieces, scores (empty = all 0), types (spm::k*).
std::unique_ptr<Tokenizer> MakeScored(std::vector<std::string> pieces, std::vector<float> scores,
                                      std::vector<uint8_t> types, ScoredMode mode, int32_t bos,
                                      int32_t eos, int32_t unk, bool add_bos, std::string* err);

/// What the scored BPE needs from a SentencePiece ModelProto (spm_proto.cpp),
/// with the proto's defaults.
struct SpModel {
  std::vector<std::string> pieces;  // ModelProto.pieces (1): piece (1), score (2), type (3)
  std::vector<float> scores;
  std::vector<uint8_t> types;
  // TrainerSpec (2).
  uint64_t model_type = 1;                  // 3: UNIGRAM = 1, BPE = 2, WORD = 3, CHAR = 4
  bool treat_whitespace_as_suffix = false;  // 24
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>";  // 45, 46, 47
  // NormalizerSpec (3) and denormalizer_spec (5).
  std::string norm_name;                 // 1
  bool norm_charsmap = false;            // 2: a non-empty precompiled_charsmap
  bool add_dummy_prefix = true;          // 3
  bool remove_extra_whitespaces = true;  // 4
  bool escape_whitespaces = true;        // 5
  bool denorm_charsmap = false;
  // Resolved by ReadSpModel: the ids of bos_piece / eos_piece (control) and
  // unk_piece (unknown), -1 when absent.
  int32_t bos = -1, eos = -1, unk = -1;
};
/// Reads a serialized ModelProto (every read bounds-checked). False + *err
/// when it is malformed, or when its trainer / normalizer settings are ones
/// the scored BPE does not implement (then *unsupported = true, when not null).
bool ReadSpModel(std::string_view proto, SpModel* out, std::string* err, bool* unsupported);
/// The scored BPE (SentencePiece mode, add_bos) of a model ReadSpModel
/// accepted; moves m's pieces, scores and types.
std::unique_ptr<Tokenizer> MakeScoredFromSp(SpModel* m, std::string* err);

/// SentencePiece-style Hugging Face BPE (hf_spm.cpp): the configuration read
/// from tokenizer.json and the per-token flags (serialized).
namespace hfspm {
inline constexpr uint8_t kInModel = 1;      // in model.vocab (the BPE vocabulary)
inline constexpr uint8_t kAdded = 2;        // an added token (matched in the text)
inline constexpr uint8_t kSpecial = 4;      // added token with special: true
inline constexpr uint8_t kLstrip = 8;       // added token swallows whitespace on its left
inline constexpr uint8_t kRstrip = 16;      // ... and on its right
inline constexpr uint8_t kNormalized = 32;  // added token matched on normalized text
inline constexpr uint8_t kAllFlags = 63;

enum class Prepend : uint8_t { kAlways = 0, kFirst = 1, kNever = 2 };

struct Config {
  bool norm_prepend = false;  // normalizer Prepend("▁")
  bool norm_replace = false;  // normalizer Replace(" ", "▁")
  bool metaspace = false;     // pre_tokenizer Metaspace("▁")
  Prepend meta_prepend = Prepend::kAlways;
  bool meta_split = false;
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;
  bool dec_replace = false;  // decoder maps "▁" to " "
  bool dec_bytes = false;    // decoder ByteFallback
  uint8_t dec_strip = 0;     // leading spaces the decoder strips
};
}  // namespace hfspm
/// pieces by id, flags (hfspm::k*) by id, merges (left, right) in rank order.
std::unique_ptr<Tokenizer> MakeHfSpmBpe(const hfspm::Config& cfg, std::vector<std::string> pieces,
                                        std::vector<uint8_t> flags,
                                        std::vector<std::pair<int32_t, int32_t>> merges,
                                        int32_t unk, int32_t bos, int32_t eos, std::string* err);

/// 256 byte tokens + <bos>=256, <eos>=257 (Tokenizer::Bytes).
std::unique_ptr<Tokenizer> MakeBytes();

// Payload readers of Tokenizer::Deserialize, one per Kind.
std::unique_ptr<Tokenizer> DeserializeByteBpe(BlobReader* r, std::string* err);
std::unique_ptr<Tokenizer> DeserializeScored(BlobReader* r, std::string* err);
std::unique_ptr<Tokenizer> DeserializeSentencePiece(BlobReader* r, std::string* err);
std::unique_ptr<Tokenizer> DeserializeHfSpmBpe(BlobReader* r, std::string* err);

/// Splits `text` at occurrences of special-token strings (leftmost, longest
/// first) and calls seg(text_piece) / special(id) in order.
class SpecialMatcher {
 public:
  void Build(const std::vector<std::pair<std::string, int32_t>>& specials);
  bool empty() const { return items_.empty(); }
  template <typename Seg, typename Spec>
  void Split(std::string_view text, const Seg& seg, const Spec& special) const {
    size_t start = 0, i = 0;
    const size_t n = text.size();
    while (i < n) {
      const unsigned char c = static_cast<unsigned char>(text[i]);
      int32_t id = -1;
      size_t len = 0;
      if (first_[c]) {
        for (const auto& it : items_) {  // sorted by length, longest first
          if (static_cast<unsigned char>(it.first[0]) != c) continue;
          if (text.compare(i, it.first.size(), it.first) == 0) {
            id = it.second;
            len = it.first.size();
            break;
          }
        }
      }
      if (id < 0) {
        ++i;
        continue;
      }
      if (i > start) seg(text.substr(start, i - start));
      special(id);
      i += len;
      start = i;
    }
    if (start < n) seg(text.substr(start));
  }

 private:
  std::vector<std::pair<std::string, int32_t>> items_;
  bool first_[256] = {};
};

}  // namespace lamina::tok
