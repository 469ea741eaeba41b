// Shared tokenizer pieces: hashing, blob framing, special-token matcher,
// Deserialize dispatch, chat template, streaming decoder.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "tokenizer/internal.h"
#include "tokenizer/unicode.h"

namespace lamina {
namespace tok {

uint64_t Hash64(const void* data, size_t n, uint64_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed ^ (0x9E3779B97F4A7C15ull * (n + 1));
  if (n >= 64) {  // long inputs (blob checksum): four independent lanes
    uint64_t l[4] = {h, h ^ 0x1, h ^ 0x2, h ^ 0x3};
    while (n >= 32) {
      for (int k = 0; k < 4; ++k) {
        uint64_t v;
        std::memcpy(&v, p + 8 * k, 8);
        l[k] = (l[k] ^ v) * 0xBF58476D1CE4E5B9ull;
        l[k] ^= l[k] >> 29;
      }
      p += 32;
      n -= 32;
    }
    h = ((l[0] * 31 + l[1]) * 31 + l[2]) * 31 + l[3];
  }
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ v ^ (static_cast<uint64_t>(n) << 56)) * 0x94D049BB133111EBull;
  }
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  return h;
}

bool CheckEncodeInput(std::string_view text, uint64_t max_bytes, std::string* err) {
  size_t bad;
  if (!uni::IsValid(text, &bad)) {
    if (err) *err = "input is not valid UTF-8 (byte offset " + std::to_string(bad) + ")";
    return false;
  }
  if (text.size() >= max_bytes) {
    if (err) *err = "input too large (>= " + std::to_string(max_bytes >> 30) + " GiB)";
    return false;
  }
  return true;
}

std::vector<uint8_t> BlobWriter::Finish(Kind kind) const {
  std::vector<uint8_t> out;
  out.reserve(buf_.size() + 24);
  auto put = [&out](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  put(kBlobMagic, 4);
  const uint32_t version = kBlobVersion, k = static_cast<uint32_t>(kind);
  const uint32_t size = static_cast<uint32_t>(buf_.size());
  const uint64_t hash = Hash64(buf_.data(), buf_.size(), 0x4C544F4Bu);
  put(&version, 4);
  put(&k, 4);
  put(&size, 4);
  put(&hash, 8);
  put(buf_.data(), buf_.size());
  return out;
}

void SpecialMatcher::Build(const std::vector<std::pair<std::string, int32_t>>& specials) {
  items_.clear();
  for (const auto& s : specials)
    if (!s.first.empty()) items_.push_back(s);
  std::stable_sort(items_.begin(), items_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::fill(std::begin(first_), std::end(first_), false);
  for (const auto& it : items_) first_[static_cast<unsigned char>(it.first[0])] = true;
}
}  // namespace tok

std::unique_ptr<Tokenizer> Tokenizer::Bytes() { return tok::MakeBytes(); }

std::unique_ptr<Tokenizer> Tokenizer::Deserialize(const uint8_t* data, size_t size,
                                                  std::string* err) {
  auto fail = [err](const std::string& what) -> std::unique_ptr<Tokenizer> {
    if (err) *err = "tokenizer blob: " + what;
    return nullptr;
  };
  if (!data || size < 24) return fail("truncated header (" + std::to_string(size) + " bytes)");
  if (std::memcmp(data, tok::kBlobMagic, 4) != 0) return fail("bad magic");
  uint32_t version, kind, psize;
  uint64_t hash;
  std::memcpy(&version, data + 4, 4);
  std::memcpy(&kind, data + 8, 4);
  std::memcpy(&psize, data + 12, 4);
  std::memcpy(&hash, data + 16, 8);
  if (version != tok::kBlobVersion) return fail("unsupported version " + std::to_string(version));
  if (psize != size - 24)
    return fail("payload size " + std::to_string(psize) + " != " + std::to_string(size - 24));
  if (tok::Hash64(data + 24, psize, 0x4C544F4Bu) != hash) return fail("checksum mismatch");
  tok::BlobReader r(data + 24, psize);
  std::string e;
  std::unique_ptr<Tokenizer> t;
  switch (static_cast<tok::Kind>(kind)) {
    case tok::Kind::kByteBpe:
      t = tok::DeserializeByteBpe(&r, &e);
      break;
    case tok::Kind::kScored:
      t = tok::DeserializeScored(&r, &e);
      break;
    case tok::Kind::kSentencePiece:  // old files: the .model protobuf, read by hand
      t = tok::DeserializeSentencePiece(&r, &e);
      break;
    case tok::Kind::kHfSpmBpe:
      t = tok::DeserializeHfSpmBpe(&r, &e);
      break;
    case tok::Kind::kBytes:
      t = tok::MakeBytes();
      break;
    default:
      return fail("unknown kind " + std::to_string(kind));
  }
  if (!t) return fail(e.empty() ? r.error() : e);
  if (r.ok() && r.remaining() != 0) return fail("trailing bytes in payload");
  return t;
}

std::string Tokenizer::ApplyChatTemplate(const std::vector<ChatMessage>& messages,
                                         bool add_generation_prompt) const {
  if (chat_template() != "llama3") return "";
  std::string out = "<|begin_of_text|>";
  for (const ChatMessage& m : messages) {
    out += "<|start_header_id|>";
    out += m.role;
    out += "<|end_header_id|>\n\n";
    out += TrimWhitespace(m.content);
    out += "<|eot_id|>";
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string_view Tokenizer::TrimWhitespace(std::string_view s) {
  auto is_ws_at = [&s](size_t i, size_t* len) {
    size_t j = i;
    uint32_t cp;
    if (!uni::DecodeOne(s.data(), s.size(), &j, &cp)) return false;
    *len = j - i;
    // Python's str.strip() set (Jinja's trim, Meta's .strip()): White_Space
    // plus U+001C..U+001F; U+FEFF (\s for the pre-tokenizer) is not stripped.
    return (uni::ClassOf(cp) == uni::kSpace && cp != 0xFEFF) || (cp >= 0x1C && cp <= 0x1F);
  };
  size_t b = 0, len = 0;
  while (b < s.size() && is_ws_at(b, &len)) b += len;
  size_t e = s.size();
  while (e > b) {
    size_t st = e - 1;  // start of the last character
    while (st > b && (static_cast<unsigned char>(s[st]) & 0xC0) == 0x80) --st;
    if (!is_ws_at(st, &len) || st + len != e) break;
    e = st;
  }
  return s.substr(b, e - b);
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  int32_t prev = -1;
  bool at_start = true;  // no token other than an empty special one decoded yet
  for (int32_t id : ids) {
    const std::string piece = DecodePiece(prev, id, at_start);
    if (!piece.empty() || !IsSpecial(id)) at_start = false;
    bytes += piece;
    prev = id;
  }
  return uni::Sanitize(bytes);
}

std::string Tokenizer::DecodePiece(int32_t /*prev*/, int32_t id, bool /*at_start*/) const {
  return TokenBytes(id);
}

std::string StreamDecoder::Push(int32_t id) {
  pending_ += tok_.DecodePiece(prev_, id, /*at_start=*/prev_ >= 0 && prev_ == tok_.bos_id());
  prev_ = id;
  const size_t n = uni::CompletePrefix(pending_);
  if (n == 0) return "";
  std::string out = uni::Sanitize(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string StreamDecoder::Flush() {
  std::string out = uni::Sanitize(pending_);
  pending_.clear();
  return out;
}

void StreamDecoder::Reset() {
  pending_.clear();
  prev_ = -1;
}

}  // namespace lamina
