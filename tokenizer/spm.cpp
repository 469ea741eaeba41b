// SentencePiece-family tokenizers: scored BPE over a token+score(+type) list
// (llama2.c tokenizer.bin, GGUF "llama" vocabularies, SentencePiece .model;
// the importers in tools/import/ build it, equal to libsentencepiece), and the
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

namespace lamina::tok {
namespace {

using spm::kByte;
using spm::kControl;
using spm::kNormal;
using spm::kUnknown;
using spm::kUnused;
using spm::kUserDefined;
using Mode = ScoredMode;

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

std::unique_ptr<Tokenizer> MakeScored(std::vector<std::string> pieces, std::vector<float> scores,
                                      std::vector<uint8_t> types, ScoredMode mode, int32_t bos,
                                      int32_t eos, int32_t unk, bool add_bos, std::string* err) {
  auto t = std::make_unique<ScoredTokenizer>();
  if (!t->Init(std::move(pieces), std::move(scores), std::move(types), mode, bos, eos, unk, add_bos,
               err))
    return nullptr;
  return t;
}

std::unique_ptr<Tokenizer> DeserializeScored(BlobReader* r, std::string* err) {
  return ScoredTokenizer::FromBlob(r, err);
}

}  // namespace lamina::tok
