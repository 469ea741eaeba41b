// SentencePiece-family tokenizers: scored BPE over a token+score(+type) list
// (llama2.c tokenizer.bin, GGUF "llama" vocabularies, SentencePiece .model
// without the library), SentencePiece .model through libsentencepiece, and the
// plain byte tokenizer of synthetic models.
//
// Scored BPE, SentencePiece mode (= sentencepiece bpe_model.cc and llama.cpp's
// SPM tokenizer): escape ' ' as U+2581, prepend U+2581 (add_dummy_prefix),
// split into characters, repeatedly merge the adjacent pair whose
// concatenation is a normal/user-defined/unused piece with the highest score
// (ties: leftmost), resegment unused pieces, then map pieces missing from the
// vocabulary to <0xNN> byte pieces (byte fallback) or <unk>.
// llama2.c mode (= run.c encode): raw spaces, a dummy " " prepended to
// non-empty text, characters missing from the vocabulary become byte tokens
// before merging, every vocabulary entry may be a merge result, and pairs
// with score <= -1e10 never merge.
#include <algorithm>
#include <array>
#include <cmath>
#include <queue>
#include <unordered_map>

#include "tokenizer/internal.h"
#include "tokenizer/unicode.h"

#ifdef LAMINA_WITH_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

namespace lamina::tok {
namespace {

constexpr int kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;
constexpr char kSpaceMark[] = "\xE2\x96\x81";  // U+2581

enum class Mode : uint8_t { kSentencePiece = 0, kLlama2c = 1 };

class ScoredTokenizer : public Tokenizer {
 public:
  bool Init(std::vector<std::string> pieces, std::vector<float> scores, std::vector<uint8_t> types,
            Mode mode, int32_t bos, int32_t eos, int32_t unk, bool add_bos, std::string* err);

  std::vector<uint8_t> Serialize() const override;
  bool Encode(std::string_view text, bool add_bos, bool parse_special, std::vector<int32_t>* out,
              std::string* err) const override;
  std::string TokenBytes(int32_t id) const override { return Piece(id, false); }
  std::string DecodePiece(int32_t prev, int32_t id, bool at_start) const override {
    // run.c drops the space after BOS; libsentencepiece drops it from the
    // first non-control piece of the text (StreamDecoder: the first after BOS).
    const bool strip = mode_ == Mode::kLlama2c ? (prev >= 0 && prev == bos_) : at_start;
    return Piece(id, strip);
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  std::vector<int32_t> stop_ids() const override {
    return eos_ >= 0 ? std::vector<int32_t>{eos_} : std::vector<int32_t>{};
  }
  bool IsSpecial(int32_t id) const override {
    return id >= 0 && id < vocab_size() && (types_[id] == kControl || types_[id] == kUnknown);
  }
  std::string chat_template() const override { return ""; }
  bool ExportVocab(GgufVocab* v) const override {
    v->model = "llama";
    v->tokens = pieces_;
    v->scores = scores_;
    v->types.assign(types_.begin(), types_.end());
    v->bos_id = bos_;
    v->eos_id = eos_;
    v->unk_id = unk_;
    v->add_bos = add_bos_;
    return true;
  }

  static std::unique_ptr<Tokenizer> FromBlob(BlobReader* r, std::string* err);

 protected:
  void WritePayload(BlobWriter* w) const;
  bool ReadPayload(BlobReader* r, std::string* err);
  virtual void EncodeSegment(std::string_view text, std::vector<int32_t>* out) const;
  std::string Piece(int32_t id, bool strip_leading_space) const;

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<uint8_t> types_;
  Mode mode_ = Mode::kSentencePiece;
  int32_t bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = true;
  StrIdMap vocab_;
  std::array<int32_t, 256> byte_id_{};
  SpecialMatcher specials_;
};

bool ScoredTokenizer::Init(std::vector<std::string> pieces, std::vector<float> scores,
                           std::vector<uint8_t> types, Mode mode, int32_t bos, int32_t eos,
                           int32_t unk, bool add_bos, std::string* err) {
  const size_t n = pieces.size();
  if (n == 0 || n > (1u << 24)) {
    *err = "vocabulary size " + std::to_string(n) + " invalid";
    return false;
  }
  if (scores.empty()) scores.assign(n, 0.0f);
  if (scores.size() != n || types.size() != n) {
    *err = "scores/types do not match the vocabulary size";
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    if (types[i] < kNormal || types[i] > kByte) {
      *err = "token " + std::to_string(i) + ": invalid type " + std::to_string(types[i]);
      return false;
    }
    if (!std::isfinite(scores[i]) && !std::isinf(scores[i])) {
      *err = "token " + std::to_string(i) + ": score is NaN";
      return false;
    }
  }
  auto in_range = [n](int32_t id) { return id >= -1 && id < static_cast<int32_t>(n); };
  if (!in_range(bos) || !in_range(eos) || !in_range(unk)) {
    *err = "bos/eos/unk id out of range";
    return false;
  }
  pieces_ = std::move(pieces);
  scores_ = std::move(scores);
  types_ = std::move(types);
  mode_ = mode;
  bos_ = bos;
  eos_ = eos;
  unk_ = unk;
  add_bos_ = add_bos;
  vocab_.Build(n, [this](int32_t id) { return std::string_view(pieces_[id]); });
  byte_id_.fill(-1);
  for (size_t i = 0; i < n; ++i) {
    const int b = ParseBytePiece(pieces_[i]);
    if (b >= 0 && (types_[i] == kByte || mode_ == Mode::kLlama2c) && byte_id_[b] < 0)
      byte_id_[b] = static_cast<int32_t>(i);
  }
  std::vector<std::pair<std::string, int32_t>> sp;
  if (mode_ == Mode::kSentencePiece)
    for (size_t i = 0; i < n; ++i)
      if (types_[i] == kControl && !pieces_[i].empty())
        sp.emplace_back(pieces_[i], static_cast<int32_t>(i));
  specials_.Build(sp);
  return true;
}

std::string ScoredTokenizer::Piece(int32_t id, bool strip) const {
  if (id < 0 || id >= vocab_size()) return "";
  const int t = types_[id];
  const std::string& p = pieces_[id];
  if (t == kControl) return "";
  if (t == kUnknown) return mode_ == Mode::kSentencePiece ? " \xE2\x81\x87 " : "";
  const int b = ParseBytePiece(p);
  if (b >= 0 && (t == kByte || mode_ == Mode::kLlama2c))
    return std::string(1, static_cast<char>(b));
  std::string out;
  if (mode_ == Mode::kSentencePiece) {
    size_t i = 0;
    while (i < p.size()) {
      if (p.compare(i, 3, kSpaceMark) == 0) {
        out.push_back(' ');
        i += 3;
      } else {
        out.push_back(p[i++]);
      }
    }
  } else {
    out = p;
  }
  if (strip && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

bool ScoredTokenizer::Encode(std::string_view text, bool add_bos, bool parse_special,
                             std::vector<int32_t>* out, std::string* err) const {
  out->clear();
  if (!CheckEncodeInput(text, 1ull << 31, err)) return false;
  if (add_bos && bos_ >= 0) out->push_back(bos_);
  if (parse_special && !specials_.empty()) {
    specials_.Split(
        text, [&](std::string_view seg) { EncodeSegment(seg, out); },
        [&](int32_t id) { out->push_back(id); });
  } else {
    EncodeSegment(text, out);
  }
  return true;
}

void ScoredTokenizer::EncodeSegment(std::string_view text, std::vector<int32_t>* out) const {
  if (text.empty()) return;
  auto key_of = [this](int32_t id) { return std::string_view(pieces_[id]); };
  const bool llama2c = mode_ == Mode::kLlama2c;
  // Working text (symbols are contiguous spans of it) and the initial symbols.
  std::string work;
  std::vector<uint32_t> start, len;
  work.reserve(text.size() + 8);
  auto add_char = [&](std::string_view ch) {
    if (llama2c && vocab_.Find(ch, key_of) < 0) {
      for (unsigned char b : ch) {  // byte fallback before merging (run.c)
        const int32_t id = byte_id_[b];
        const std::string_view p = id >= 0 ? std::string_view(pieces_[id]) : ch;
        start.push_back(static_cast<uint32_t>(work.size()));
        len.push_back(static_cast<uint32_t>(p.size()));
        work.append(p);
        if (id < 0) break;
      }
      return;
    }
    start.push_back(static_cast<uint32_t>(work.size()));
    len.push_back(static_cast<uint32_t>(ch.size()));
    work.append(ch);
  };
  if (llama2c) {
    add_char(" ");
  } else {
    add_char(kSpaceMark);
  }
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    uint32_t cp;
    if (!uni::DecodeOne(text.data(), text.size(), &j, &cp)) j = i + 1;
    if (!llama2c && text[i] == ' ') {
      add_char(kSpaceMark);
    } else {
      add_char(text.substr(i, j - i));
    }
    i = j;
  }
  const size_t n = start.size();
  std::vector<int32_t> prv(n), nxt(n);
  for (size_t k = 0; k < n; ++k) {
    prv[k] = static_cast<int32_t>(k) - 1;
    nxt[k] = k + 1 < n ? static_cast<int32_t>(k + 1) : -1;
  }
  struct Pair {
    float score;
    int32_t left, right;
    uint32_t size;
  };
  auto cmp = [](const Pair& a, const Pair& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(cmp)> agenda(cmp);
  std::unordered_map<std::string, std::pair<std::string, std::string>> rev_merge;
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const std::string_view p(work.data() + start[l], len[l] + len[r]);
    const int32_t id = vocab_.Find(p, key_of);
    if (id < 0) return;
    const int t = types_[id];
    if (!llama2c && t != kNormal && t != kUserDefined && t != kUnused) return;
    if (llama2c && !(scores_[id] > -1e10f)) return;
    agenda.push(Pair{scores_[id], l, r, static_cast<uint32_t>(p.size())});
    if (!llama2c && t == kUnused)
      rev_merge[std::string(p)] = {std::string(work.data() + start[l], len[l]),
                                   std::string(work.data() + start[r], len[r])};
  };
  for (size_t k = 0; k + 1 < n; ++k) try_pair(static_cast<int32_t>(k), static_cast<int32_t>(k + 1));
  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    if (len[top.left] == 0 || len[top.right] == 0 || nxt[top.left] != top.right ||
        len[top.left] + len[top.right] != top.size)
      continue;
    len[top.left] += len[top.right];
    len[top.right] = 0;
    nxt[top.left] = nxt[top.right];
    if (nxt[top.right] >= 0) prv[nxt[top.right]] = top.left;
    try_pair(prv[top.left], top.left);
    try_pair(top.left, nxt[top.left]);
  }
  // Final pieces -> ids.
  std::vector<std::string_view> stack;
  for (int32_t k = n ? 0 : -1; k >= 0; k = nxt[k]) {
    stack.assign(1, std::string_view(work.data() + start[k], len[k]));
    while (!stack.empty()) {
      const std::string_view w = stack.back();
      stack.pop_back();
      const int32_t id = vocab_.Find(w, key_of);
      if (id >= 0 && !llama2c && types_[id] == kUnused) {
        const auto it = rev_merge.find(std::string(w));
        if (it != rev_merge.end()) {
          stack.push_back(it->second.second);
          stack.push_back(it->second.first);
          continue;
        }
      }
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
      bool all_bytes = true;
      for (unsigned char b : w) all_bytes = all_bytes && byte_id_[b] >= 0;
      if (all_bytes) {
        for (unsigned char b : w) out->push_back(byte_id_[b]);
      } else if (unk_ >= 0) {
        out->push_back(unk_);
      }
    }
  }
}

// Payload: mode, n, per token (str piece, f32 score, u8 type), bos, eos, unk, add_bos.
void ScoredTokenizer::WritePayload(BlobWriter* w) const {
  w->U8(static_cast<uint8_t>(mode_));
  w->U32(static_cast<uint32_t>(pieces_.size()));
  for (size_t i = 0; i < pieces_.size(); ++i) {
    w->Str(pieces_[i]);
    w->F32(scores_[i]);
    w->U8(types_[i]);
  }
  w->I32(bos_);
  w->I32(eos_);
  w->I32(unk_);
  w->U8(add_bos_ ? 1 : 0);
}

bool ScoredTokenizer::ReadPayload(BlobReader* r, std::string* err) {
  const uint8_t mode = r->U8("mode");
  const uint32_t n = r->Count("vocab size", 9);
  if (r->ok() && mode > 1) r->Fail("mode " + std::to_string(mode) + " unknown");
  std::vector<std::string> pieces(n);
  std::vector<float> scores(n);
  std::vector<uint8_t> types(n);
  for (uint32_t i = 0; i < n && r->ok(); ++i) {
    pieces[i] = r->Str("piece", 4096);
    scores[i] = r->F32("score");
    types[i] = r->U8("type");
  }
  const int32_t bos = r->I32("bos"), eos = r->I32("eos"), unk = r->I32("unk");
  const uint8_t add_bos = r->U8("add_bos");
  if (!r->ok()) return false;
  return Init(std::move(pieces), std::move(scores), std::move(types), static_cast<Mode>(mode), bos,
              eos, unk, add_bos != 0, err);
}

std::vector<uint8_t> ScoredTokenizer::Serialize() const {
  BlobWriter w;
  WritePayload(&w);
  return w.Finish(Kind::kScored);
}

std::unique_ptr<Tokenizer> ScoredTokenizer::FromBlob(BlobReader* r, std::string* err) {
  auto t = std::make_unique<ScoredTokenizer>();
  if (!t->ReadPayload(r, err)) return nullptr;
  return t;
}

// ------------------------------------------ minimal SentencePiece proto read
// ModelProto: field 1 = repeated SentencePiece {1: piece, 2: score (f32), 3: type}.
bool ParseProtoPieces(std::string_view d, std::vector<std::string>* pieces,
                      std::vector<float>* scores, std::vector<uint8_t>* types, std::string* err) {
  size_t i = 0;
  auto varint = [&](std::string_view s, size_t* p, uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (*p >= s.size()) return false;
      const uint8_t b = static_cast<uint8_t>(s[(*p)++]);
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  auto skip = [&](std::string_view s, size_t* p, uint64_t wire) {
    uint64_t v;
    switch (wire) {
      case 0:
        return varint(s, p, &v);
      case 1:
        if (s.size() - *p < 8) return false;
        *p += 8;
        return true;
      case 2:
        if (!varint(s, p, &v) || v > s.size() - *p) return false;
        *p += v;
        return true;
      case 5:
        if (s.size() - *p < 4) return false;
        *p += 4;
        return true;
      default:
        return false;
    }
  };
  while (i < d.size()) {
    uint64_t key;
    if (!varint(d, &i, &key)) break;
    if (key == ((1 << 3) | 2)) {
      uint64_t len;
      if (!varint(d, &i, &len) || len > d.size() - i) break;
      std::string_view m = d.substr(i, len);
      i += len;
      std::string piece;
      float score = 0;
      uint64_t type = kNormal;
      size_t p = 0;
      bool ok = true;
      while (p < m.size() && ok) {
        uint64_t k;
        if (!varint(m, &p, &k)) {
          ok = false;
          break;
        }
        if (k == ((1 << 3) | 2)) {
          uint64_t l;
          if (!varint(m, &p, &l) || l > m.size() - p) {
            ok = false;
            break;
          }
          piece.assign(m.data() + p, l);
          p += l;
        } else if (k == ((2 << 3) | 5)) {
          if (m.size() - p < 4) {
            ok = false;
            break;
          }
          std::memcpy(&score, m.data() + p, 4);
          p += 4;
        } else if (k == ((3 << 3) | 0)) {
          ok = varint(m, &p, &type);
        } else {
          ok = skip(m, &p, k & 7);
        }
      }
      if (!ok || type < kNormal || type > kByte) {
        *err = "malformed SentencePiece entry " + std::to_string(pieces->size());
        return false;
      }
      pieces->push_back(std::move(piece));
      scores->push_back(score);
      types->push_back(static_cast<uint8_t>(type));
    } else if (!skip(d, &i, key & 7)) {
      break;
    }
  }
  if (i != d.size()) {
    *err = "malformed protobuf at byte " + std::to_string(i);
    return false;
  }
  if (pieces->empty()) {
    *err = "no pieces";
    return false;
  }
  return true;
}

int32_t FindPiece(const std::vector<std::string>& p, const std::vector<uint8_t>& types,
                  const char* s, int type) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] == s && (type < 0 || types[i] == type)) return static_cast<int32_t>(i);
  return -1;
}

#ifdef LAMINA_WITH_SENTENCEPIECE
class SentencePieceTokenizer final : public ScoredTokenizer {
 public:
  bool Load(std::string proto, std::string* err) {
    proto_ = std::move(proto);
    const auto st = sp_.LoadFromSerializedProto(proto_);
    if (!st.ok()) {
      *err = "libsentencepiece: " + st.ToString();
      return false;
    }
    const int n = sp_.GetPieceSize();
    std::vector<std::string> pieces(n);
    std::vector<float> scores(n);
    std::vector<uint8_t> types(n);
    for (int i = 0; i < n; ++i) {
      pieces[i] = sp_.IdToPiece(i);
      scores[i] = sp_.GetScore(i);
      types[i] = sp_.IsUnknown(i)   ? kUnknown
                 : sp_.IsControl(i) ? kControl
                 : sp_.IsUnused(i)  ? kUnused
                 : sp_.IsByte(i)    ? kByte
                                    : kNormal;
    }
    return Init(std::move(pieces), std::move(scores), std::move(types), Mode::kSentencePiece,
                sp_.bos_id(), sp_.eos_id(), sp_.unk_id(), true, err);
  }
  std::vector<uint8_t> Serialize() const override {
    BlobWriter w;
    w.Str(proto_);
    return w.Finish(Kind::kSentencePiece);
  }

 protected:
  void EncodeSegment(std::string_view text, std::vector<int32_t>* out) const override {
    std::vector<int> ids;
    if (!sp_.Encode(std::string(text), &ids).ok()) return;  // input was validated
    out->insert(out->end(), ids.begin(), ids.end());
  }

 private:
  std::string proto_;
  sentencepiece::SentencePieceProcessor sp_;
};
#endif

}  // namespace

std::unique_ptr<Tokenizer> ScoredFromProtoNoLibrary(std::string_view proto, std::string* err) {
  // The pieces, scores and types drive the exact scored-BPE implementation
  // (Llama-style normalizer assumed: identity, dummy prefix, no whitespace
  // collapsing).
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<uint8_t> types;
  if (!ParseProtoPieces(proto, &pieces, &scores, &types, err)) return nullptr;
  auto t = std::make_unique<ScoredTokenizer>();
  if (!t->Init(pieces, scores, types, Mode::kSentencePiece,
               FindPiece(pieces, types, "<s>", kControl),
               FindPiece(pieces, types, "</s>", kControl),
               FindPiece(pieces, types, "<unk>", kUnknown), true, err))
    return nullptr;
  return t;
}

namespace {

std::unique_ptr<Tokenizer> ScoredFromProto(std::string proto, std::string* err) {
#ifdef LAMINA_WITH_SENTENCEPIECE
  auto t = std::make_unique<SentencePieceTokenizer>();
  if (!t->Load(std::move(proto), err)) return nullptr;
  return t;
#else
  return ScoredFromProtoNoLibrary(proto, err);
#endif
}

// --------------------------------------------------------------- bytes
class BytesTokenizer final : public Tokenizer {
 public:
  std::vector<uint8_t> Serialize() const override { return BlobWriter().Finish(Kind::kBytes); }
  bool Encode(std::string_view text, bool add_bos, bool /*parse_special*/,
              std::vector<int32_t>* out, std::string* err) const override {
    out->clear();
    if (!CheckEncodeInput(text, UINT64_MAX, err)) return false;
    if (add_bos) out->push_back(256);
    for (unsigned char c : text) out->push_back(c);
    return true;
  }
  std::string TokenBytes(int32_t id) const override {
    return id >= 0 && id < 256 ? std::string(1, static_cast<char>(id)) : std::string();
  }
  int32_t vocab_size() const override { return 258; }
  int32_t bos_id() const override { return 256; }
  int32_t eos_id() const override { return 257; }
  std::vector<int32_t> stop_ids() const override { return {257}; }
  bool IsSpecial(int32_t id) const override { return id == 256 || id == 257; }
  std::string chat_template() const override { return ""; }
};

}  // namespace

std::unique_ptr<Tokenizer> MakeBytes() { return std::make_unique<BytesTokenizer>(); }

std::unique_ptr<Tokenizer> LoadSentencePieceProto(const std::string& path, std::string proto,
                                                  std::string* err) {
  std::string e;
  auto t = ScoredFromProto(std::move(proto), &e);
  if (!t) *err = path + ": " + e;
  return t;
}

std::unique_ptr<Tokenizer> LoadLlama2cBin(const std::string& path, const std::string& d,
                                          std::string* err) {
  BlobReader r(reinterpret_cast<const uint8_t*>(d.data()), d.size());
  const int32_t max_len = r.I32("max_token_length");
  if (max_len <= 0 || max_len > 65536) {
    *err =
        path + ": not a llama2.c tokenizer.bin (max_token_length " + std::to_string(max_len) + ")";
    return nullptr;
  }
  std::vector<std::string> pieces;
  std::vector<float> scores;
  while (r.ok() && r.remaining() > 0) {
    const float score = r.F32("score");
    const int32_t len = r.I32("token length");
    if (!r.ok()) break;
    if (len < 0 || len > max_len) {
      *err = path + ": token " + std::to_string(pieces.size()) + ": length " + std::to_string(len) +
             " outside [0, max_token_length]";
      return nullptr;
    }
    const uint8_t* p = r.Span(static_cast<size_t>(len), "token bytes");
    if (!p) break;
    pieces.emplace_back(reinterpret_cast<const char*>(p), len);
    scores.push_back(score);
  }
  if (!r.ok()) {
    *err = path + ": " + r.error() + " (token " + std::to_string(pieces.size()) + ")";
    return nullptr;
  }
  if (pieces.size() < 3) {
    *err = path + ": only " + std::to_string(pieces.size()) + " tokens";
    return nullptr;
  }
  // llama2.c convention: 0 <unk>, 1 <s> (BOS), 2 </s> (EOS), then byte tokens.
  std::vector<uint8_t> types(pieces.size(), kNormal);
  types[0] = kUnknown;
  types[1] = kControl;
  types[2] = kControl;
  for (size_t i = 3; i < pieces.size(); ++i)
    if (ParseBytePiece(pieces[i]) >= 0) types[i] = kByte;
  auto t = std::make_unique<ScoredTokenizer>();
  std::string e;
  if (!t->Init(std::move(pieces), std::move(scores), std::move(types), Mode::kLlama2c, 1, 2, 0,
               true, &e)) {
    *err = path + ": " + e;
    return nullptr;
  }
  return t;
}

std::unique_ptr<Tokenizer> LoadGgufLlama(const GgufVocab& v, std::string* err) {
  const size_t n = v.tokens.size();
  if (!v.scores.empty() && v.scores.size() != n) {
    *err = "gguf: tokenizer.ggml.scores has " + std::to_string(v.scores.size()) +
           " entries, tokens has " + std::to_string(n);
    return nullptr;
  }
  if (!v.types.empty() && v.types.size() != n) {
    *err = "gguf: tokenizer.ggml.token_type has " + std::to_string(v.types.size()) +
           " entries, tokens has " + std::to_string(n);
    return nullptr;
  }
  std::vector<uint8_t> types(n, kNormal);
  for (size_t i = 0; i < v.types.size(); ++i) {
    if (v.types[i] < kNormal || v.types[i] > kByte) {
      *err = "gguf: tokenizer.ggml.token_type[" + std::to_string(i) +
             "] = " + std::to_string(v.types[i]) + " invalid";
      return nullptr;
    }
    types[i] = static_cast<uint8_t>(v.types[i]);
  }
  // Vocabularies that use raw spaces (llama2.c exports) take run.c's rules.
  bool has_mark = false;
  for (const auto& t : v.tokens)
    if (t.find(kSpaceMark) != std::string::npos) {
      has_mark = true;
      break;
    }
  auto t = std::make_unique<ScoredTokenizer>();
  std::string e;
  if (!t->Init(v.tokens, v.scores, std::move(types),
               has_mark ? Mode::kSentencePiece : Mode::kLlama2c, v.bos_id, v.eos_id, v.unk_id,
               v.add_bos, &e)) {
    *err = "gguf: " + e;
    return nullptr;
  }
  return t;
}

std::unique_ptr<Tokenizer> DeserializeScored(BlobReader* r, std::string* err) {
  return ScoredTokenizer::FromBlob(r, err);
}

std::unique_ptr<Tokenizer> DeserializeSentencePiece(BlobReader* r, std::string* err) {
  std::string proto = r->Str("proto", 1u << 30);
  if (!r->ok()) return nullptr;
  return ScoredFromProto(std::move(proto), err);
}

}  // namespace lamina::tok
