// SentencePiece-style Hugging Face tokenizer.json (Llama 2 family, Mistral,
// TinyLlama): the pipeline of the `tokenizers` library, implemented exactly.
//
//   1. Added tokens are split out of the text (leftmost, longest first):
//      `normalized: false` ones on the raw text, then `normalized: true` ones
//      on each normalized segment; lstrip/rstrip swallow adjacent whitespace.
//      Special added tokens only with parse_special; the others always.
//   2. Normalizer (each segment): Prepend("▁") (non-empty segments) and
//      Replace(" " -> "▁").
//   3. Pre-tokenizer: none (the segment is one word), or Metaspace("▁",
//      prepend_scheme always|first|never, split): spaces -> "▁", "▁"
//      prepended unless already there (scheme first: only the segment at
//      offset 0), split before every "▁" when split.
//   4. BPE (tokenizers' Word::merge_all): each character becomes its vocab
//      id, else its UTF-8 bytes as <0xNN> tokens (byte_fallback, when all
//      exist), else <unk> (consecutive ones fused with fuse_unk). Then the
//      adjacent pair with the lowest merge rank merges (ties: leftmost), the
//      queue holding (position, rank, result) entries that are dropped when
//      the pair at that position no longer gives that result.
//   5. Decoder: Replace("▁" -> " "), ByteFallback (<0xNN> -> byte), Fuse,
//      Strip(" ", start=k) — or Metaspace — applied per token by DecodePiece;
//      special tokens decode to "".
#include <algorithm>
#include <array>
#include <cstdio>
#include <queue>
#include <unordered_map>

#include "tokenizer/internal.h"
#include "tokenizer/unicode.h"

namespace lamina::tok {
namespace {

constexpr const char* kMark = kSpaceMark;
constexpr size_t kMarkLen = 3;

using hfspm::Config;
using hfspm::kAdded;
using hfspm::kAllFlags;
using hfspm::kInModel;
using hfspm::kLstrip;
using hfspm::kNormalized;
using hfspm::kRstrip;
using hfspm::kSpecial;
using hfspm::Prepend;

bool IsWhitespaceAt(std::string_view s, size_t i, size_t* len) {
  size_t j = i;
  uint32_t cp;
  if (!uni::DecodeOne(s.data(), s.size(), &j, &cp)) return false;
  *len = j - i;
  return uni::ClassOf(cp) == uni::kSpace;  // Rust char::is_whitespace = White_Space
}
size_t TrimLeftWs(std::string_view s) {  // bytes of leading whitespace
  size_t i = 0, len = 0;
  while (i < s.size() && IsWhitespaceAt(s, i, &len)) i += len;
  return i;
}
size_t TrimRightWs(std::string_view s) {  // bytes of trailing whitespace
  size_t e = s.size(), len = 0;
  while (e > 0) {
    size_t st = e - 1;
    while (st > 0 && (static_cast<unsigned char>(s[st]) & 0xC0) == 0x80) --st;
    if (!IsWhitespaceAt(s, st, &len) || st + len != e) break;
    e = st;
  }
  return s.size() - e;
}

std::string ReplaceSpaces(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 4 + kMarkLen);
  for (char c : s) {
    if (c == ' ') {
      out.append(kMark, kMarkLen);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

class HfSpmBpeTokenizer final : public Tokenizer {
 public:
  bool Init(const Config& cfg, std::vector<std::string> pieces, std::vector<uint8_t> flags,
            std::vector<std::pair<int32_t, int32_t>> merges, int32_t unk, int32_t bos, int32_t eos,
            std::string* err);

  std::vector<uint8_t> Serialize() const override;
  static std::unique_ptr<Tokenizer> FromBlob(BlobReader* r, std::string* err);
  bool Encode(std::string_view text, bool add_bos, bool parse_special, std::vector<int32_t>* out,
              std::string* err) const override;
  std::string TokenBytes(int32_t id) const override;
  std::string DecodePiece(int32_t prev, int32_t id, bool at_start) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  std::vector<int32_t> stop_ids() const override {
    return eos_ >= 0 ? std::vector<int32_t>{eos_} : std::vector<int32_t>{};
  }
  bool IsSpecial(int32_t id) const override {
    return id >= 0 && id < vocab_size() && (flags_[id] & kSpecial);
  }
  std::string chat_template() const override { return ""; }

 private:
  struct MergeInfo {
    uint32_t rank;
    int32_t merged;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const MergeInfo* FindMerge(int32_t a, int32_t b) const {
    const auto it = merge_map_.find(PairKey(a, b));
    return it == merge_map_.end() ? nullptr : &it->second;
  }
  /// Steps 2-4 for one segment between added tokens.
  void EncodeSegment(std::string_view seg, bool at_text_start, bool parse_special,
                     std::vector<int32_t>* out) const;
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;
  /// Step 1 with one matcher: calls seg(text, offset) / tok(id) in order.
  template <typename Seg>
  void SplitAdded(std::string_view text, const SpecialMatcher& m, bool normalized, const Seg& seg,
                  std::vector<int32_t>* out) const;
  /// The normalizer applied to a whole string (Prepend, Replace).
  std::string Normalize(std::string_view s) const;

  Config cfg_;
  std::vector<std::string> pieces_;
  std::vector<uint8_t> flags_;
  std::vector<std::pair<int32_t, int32_t>> merges_;  // rank order
  int32_t unk_ = -1, bos_ = -1, eos_ = -1;

  std::unordered_map<uint64_t, MergeInfo> merge_map_;
  StrIdMap vocab_;  // model.vocab only
  std::array<int32_t, 256> byte_id_{};
  // Added-token matchers: raw text / normalized text, with / without specials.
  SpecialMatcher raw_all_, raw_plain_, norm_all_, norm_plain_;
  std::vector<std::string> norm_pat_;  // normalized added tokens: their normalized content
};

bool HfSpmBpeTokenizer::Init(const Config& cfg, std::vector<std::string> pieces,
                             std::vector<uint8_t> flags,
                             std::vector<std::pair<int32_t, int32_t>> merges, int32_t unk,
                             int32_t bos, int32_t eos, std::string* err) {
  const size_t n = pieces.size();
  if (n == 0 || n > (1u << 24) || flags.size() != n) {
    *err = "vocabulary size " + std::to_string(n) + " invalid";
    return false;
  }
  if (cfg.dec_strip > 8) {
    *err = "decoder Strip start " + std::to_string(cfg.dec_strip) + " out of range";
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    if (pieces[i].empty() || pieces[i].size() > 65536 || !uni::IsValid(pieces[i])) {
      *err = "token " + std::to_string(i) + " is empty, too long or not UTF-8";
      return false;
    }
    const uint8_t f = flags[i];
    if ((f & ~kAllFlags) || !(f & (kInModel | kAdded)) ||
        (!(f & kAdded) && (f & (kSpecial | kLstrip | kRstrip | kNormalized)))) {
      *err = "token " + std::to_string(i) + ": invalid flags " + std::to_string(f);
      return false;
    }
  }
  auto in_range = [n](int32_t id) { return id >= -1 && id < static_cast<int32_t>(n); };
  if (!in_range(unk) || !in_range(bos) || !in_range(eos)) {
    *err = "unk/bos/eos id out of range";
    return false;
  }
  if (unk >= 0 && !(flags[unk] & kInModel)) {
    *err = "unk_token is not in model.vocab";
    return false;
  }
  cfg_ = cfg;
  pieces_ = std::move(pieces);
  flags_ = std::move(flags);
  unk_ = unk;
  bos_ = bos;
  eos_ = eos;
  auto key_of = [this](int32_t id) { return std::string_view(pieces_[id]); };
  std::vector<uint8_t> in_model(n);
  for (size_t i = 0; i < n; ++i) in_model[i] = (flags_[i] & kInModel) != 0;
  vocab_.Build(n, key_of, &in_model);
  for (size_t i = 0; i < n; ++i)
    if (in_model[i] && vocab_.Find(pieces_[i], key_of) != static_cast<int32_t>(i)) {
      *err = "model.vocab: token '" + pieces_[i] + "' appears twice";
      return false;
    }
  byte_id_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    char name[7];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_id_[b] = vocab_.Find(std::string_view(name, 6), key_of);
  }
  // Merges: ids of model tokens, result = vocab[a + b]; a repeated pair is
  // an error (it would silently take the later rank in HF's hash map).
  merge_map_.clear();
  merge_map_.reserve(merges.size());
  std::string cat;
  for (size_t r = 0; r < merges.size(); ++r) {
    const int32_t a = merges[r].first, b = merges[r].second;
    if (a < 0 || b < 0 || static_cast<size_t>(a) >= n || static_cast<size_t>(b) >= n ||
        !in_model[a] || !in_model[b]) {
      *err = "merges[" + std::to_string(r) + "]: token not in model.vocab";
      return false;
    }
    cat.assign(pieces_[a]).append(pieces_[b]);
    const int32_t m = vocab_.Find(cat, key_of);
    if (m < 0) {
      *err = "merges[" + std::to_string(r) + "]: result '" + cat + "' not in model.vocab";
      return false;
    }
    const auto ins = merge_map_.emplace(PairKey(a, b), MergeInfo{static_cast<uint32_t>(r), m});
    if (!ins.second) {
      *err = "merges[" + std::to_string(r) + "] ('" + pieces_[a] + " " + pieces_[b] +
             "') repeats merges[" + std::to_string(ins.first->second.rank) + "]";
      return false;
    }
  }
  merges_ = std::move(merges);
  // Added tokens with normalized: true are found in normalized text, as the
  // normalizer rewrites their content (tokenizers' AddedVocabulary).
  std::vector<std::pair<std::string, int32_t>> ra, rp, na, np;
  norm_pat_.assign(n, std::string());
  for (size_t i = 0; i < n; ++i) {
    if (!(flags_[i] & kAdded)) continue;
    const bool norm = flags_[i] & kNormalized, special = flags_[i] & kSpecial;
    if (norm) norm_pat_[i] = Normalize(pieces_[i]);
    const std::string& pat = norm ? norm_pat_[i] : pieces_[i];
    (norm ? na : ra).emplace_back(pat, static_cast<int32_t>(i));
    if (!special) (norm ? np : rp).emplace_back(pat, static_cast<int32_t>(i));
  }
  raw_all_.Build(ra);
  raw_plain_.Build(rp);
  norm_all_.Build(na);
  norm_plain_.Build(np);
  return true;
}

std::string HfSpmBpeTokenizer::Normalize(std::string_view s) const {
  std::string norm;
  if (cfg_.norm_prepend && !s.empty()) norm.assign(kMark, kMarkLen);
  if (cfg_.norm_replace) {
    norm += ReplaceSpaces(s);
  } else {
    norm.append(s);
  }
  return norm;
}

template <typename Seg>
void HfSpmBpeTokenizer::SplitAdded(std::string_view text, const SpecialMatcher& m, bool normalized,
                                   const Seg& seg, std::vector<int32_t>* out) const {
  if (m.empty()) {
    seg(text, size_t{0});
    return;
  }
  // Collect the pieces first: lstrip/rstrip trim the neighbouring text.
  struct Part {
    size_t off, len;  // text span, or
    int32_t id;       // >= 0: an added token
  };
  std::vector<Part> parts;
  size_t pos = 0;
  m.Split(
      text,
      [&](std::string_view s) {
        const size_t off = static_cast<size_t>(s.data() - text.data());
        parts.push_back(Part{off, s.size(), -1});
        pos = off + s.size();
      },
      [&](int32_t id) {
        parts.push_back(Part{pos, 0, id});
        pos += normalized ? norm_pat_[id].size() : pieces_[id].size();
      });
  for (size_t k = 0; k < parts.size(); ++k) {
    if (parts[k].id < 0) continue;
    const uint8_t f = flags_[parts[k].id];
    if ((f & kLstrip) && k > 0 && parts[k - 1].id < 0)
      parts[k - 1].len -= TrimRightWs(text.substr(parts[k - 1].off, parts[k - 1].len));
    if ((f & kRstrip) && k + 1 < parts.size() && parts[k + 1].id < 0) {
      const size_t t = TrimLeftWs(text.substr(parts[k + 1].off, parts[k + 1].len));
      parts[k + 1].off += t;
      parts[k + 1].len -= t;
    }
  }
  for (const Part& p : parts) {
    if (p.id >= 0) {
      out->push_back(p.id);
    } else if (p.len > 0) {
      seg(text.substr(p.off, p.len), p.off);
    }
  }
}

bool HfSpmBpeTokenizer::Encode(std::string_view text, bool add_bos, bool parse_special,
                               std::vector<int32_t>* out, std::string* err) const {
  out->clear();
  if (!CheckEncodeInput(text, 1ull << 31, err)) return false;
  if (add_bos && bos_ >= 0) out->push_back(bos_);
  SplitAdded(
      text, parse_special ? raw_all_ : raw_plain_, /*normalized=*/false,
      [&](std::string_view seg, size_t off) { EncodeSegment(seg, off == 0, parse_special, out); },
      out);
  return true;
}

void HfSpmBpeTokenizer::EncodeSegment(std::string_view seg, bool at_text_start, bool parse_special,
                                      std::vector<int32_t>* out) const {
  const std::string norm = Normalize(seg);
  SplitAdded(
      norm, parse_special ? norm_all_ : norm_plain_, /*normalized=*/true,
      [&](std::string_view s, size_t off) {
        if (!cfg_.metaspace) {
          EncodeWord(s, out);
          return;
        }
        // Metaspace pre-tokenizer.
        std::string w = ReplaceSpaces(s);
        const bool starts = w.compare(0, kMarkLen, kMark) == 0;
        if (!starts && (cfg_.meta_prepend == Prepend::kAlways ||
                        (cfg_.meta_prepend == Prepend::kFirst && at_text_start && off == 0)))
          w.insert(0, kMark, kMarkLen);
        if (!cfg_.meta_split) {
          EncodeWord(w, out);
          return;
        }
        size_t b = 0;
        for (size_t i = kMarkLen; i + kMarkLen <= w.size(); ++i)
          if (w.compare(i, kMarkLen, kMark) == 0) {
            EncodeWord(std::string_view(w).substr(b, i - b), out);
            b = i;
            i += kMarkLen - 1;
          }
        EncodeWord(std::string_view(w).substr(b), out);
      },
      out);
}

void HfSpmBpeTokenizer::EncodeWord(std::string_view w, std::vector<int32_t>* out) const {
  if (w.empty()) return;
  auto key_of = [this](int32_t id) { return std::string_view(pieces_[id]); };
  if (cfg_.ignore_merges) {
    const int32_t id = vocab_.Find(w, key_of);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  // Initial symbols (tokenizers' BPE::merge_word).
  std::vector<int32_t> sym;
  sym.reserve(w.size());
  int32_t unk_pending = 0;  // fused <unk> symbols waiting (0 or 1 with fuse_unk)
  size_t i = 0;
  while (i < w.size()) {
    size_t j = i;
    uint32_t cp;
    if (!uni::DecodeOne(w.data(), w.size(), &j, &cp)) j = i + 1;  // cannot happen: valid input
    const std::string_view ch = w.substr(i, j - i);
    i = j;
    const int32_t id = vocab_.Find(ch, key_of);
    if (id >= 0) {
      for (; unk_pending > 0; --unk_pending) sym.push_back(unk_);
      sym.push_back(id);
      continue;
    }
    if (cfg_.byte_fallback) {
      bool all = true;
      for (unsigned char c : ch) all = all && byte_id_[c] >= 0;
      if (all) {  // (a pending <unk> stays pending, as in tokenizers)
        for (unsigned char c : ch) sym.push_back(byte_id_[c]);
        continue;
      }
    }
    if (unk_ >= 0) {
      if (unk_pending > 0 && !cfg_.fuse_unk) sym.push_back(unk_);
      unk_pending = 1;
    }
  }
  if (unk_pending > 0) sym.push_back(unk_);
  const size_t n = sym.size();
  if (n == 0) return;
  // Word::merge_all.
  std::vector<int32_t> prv(n), nxt(n);
  std::vector<uint8_t> gone(n, 0);
  for (size_t k = 0; k < n; ++k) {
    prv[k] = static_cast<int32_t>(k) - 1;
    nxt[k] = k + 1 < n ? static_cast<int32_t>(k + 1) : -1;
  }
  struct Cand {
    uint32_t rank;
    int32_t pos;
    int32_t merged;
  };
  auto later = [](const Cand& a, const Cand& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::priority_queue<Cand, std::vector<Cand>, decltype(later)> q(later);
  for (size_t k = 0; k + 1 < n; ++k)
    if (const MergeInfo* m = FindMerge(sym[k], sym[k + 1]))
      q.push(Cand{m->rank, static_cast<int32_t>(k), m->merged});
  while (!q.empty()) {
    const Cand top = q.top();
    q.pop();
    if (gone[top.pos] || nxt[top.pos] < 0) continue;
    const int32_t right = nxt[top.pos];
    const MergeInfo* cur = FindMerge(sym[top.pos], sym[right]);
    if (!cur || cur->merged != top.merged) continue;
    sym[top.pos] = top.merged;
    gone[right] = 1;
    nxt[top.pos] = nxt[right];
    if (nxt[right] >= 0) prv[nxt[right]] = top.pos;
    if (prv[top.pos] >= 0)
      if (const MergeInfo* m = FindMerge(sym[prv[top.pos]], sym[top.pos]))
        q.push(Cand{m->rank, prv[top.pos], m->merged});
    if (nxt[top.pos] >= 0)
      if (const MergeInfo* m = FindMerge(sym[top.pos], sym[nxt[top.pos]]))
        q.push(Cand{m->rank, top.pos, m->merged});
  }
  for (size_t k = 0; k < n; ++k)
    if (!gone[k]) out->push_back(sym[k]);
}

std::string HfSpmBpeTokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size() || (flags_[id] & kSpecial)) return "";
  const std::string& p = pieces_[id];
  if (cfg_.dec_bytes) {
    const int b = ParseBytePiece(p);
    if (b >= 0) return std::string(1, static_cast<char>(b));
  }
  if (!cfg_.dec_replace) return p;
  std::string out;
  out.reserve(p.size());
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, kMarkLen, kMark) == 0) {
      out.push_back(' ');
      i += kMarkLen;
    } else {
      out.push_back(p[i++]);
    }
  }
  return out;
}

std::string HfSpmBpeTokenizer::DecodePiece(int32_t /*prev*/, int32_t id, bool at_start) const {
  std::string s = TokenBytes(id);
  if (at_start) {
    size_t k = 0;
    while (k < cfg_.dec_strip && k < s.size() && s[k] == ' ') ++k;
    s.erase(0, k);
  }
  return s;
}

// Payload: config (11 u8), n, per token (str piece, u8 flags), merge count,
// merges (i32 a, i32 b), unk, bos, eos.
std::vector<uint8_t> HfSpmBpeTokenizer::Serialize() const {
  BlobWriter w;
  const Config& c = cfg_;
  for (uint8_t v : {uint8_t{c.norm_prepend}, uint8_t{c.norm_replace}, uint8_t{c.metaspace},
                    static_cast<uint8_t>(c.meta_prepend), uint8_t{c.meta_split},
                    uint8_t{c.byte_fallback}, uint8_t{c.fuse_unk}, uint8_t{c.ignore_merges},
                    uint8_t{c.dec_replace}, uint8_t{c.dec_bytes}, c.dec_strip})
    w.U8(v);
  w.U32(static_cast<uint32_t>(pieces_.size()));
  for (size_t i = 0; i < pieces_.size(); ++i) {
    w.Str(pieces_[i]);
    w.U8(flags_[i]);
  }
  w.U32(static_cast<uint32_t>(merges_.size()));
  for (const auto& m : merges_) {
    w.I32(m.first);
    w.I32(m.second);
  }
  w.I32(unk_);
  w.I32(bos_);
  w.I32(eos_);
  return w.Finish(Kind::kHfSpmBpe);
}

std::unique_ptr<Tokenizer> HfSpmBpeTokenizer::FromBlob(BlobReader* r, std::string* err) {
  Config c;
  uint8_t v[11];
  for (uint8_t& x : v) x = r->U8("config");
  for (int k = 0; k < 10; ++k)
    if (r->ok() && v[k] > (k == 3 ? 2 : 1)) r->Fail("config byte " + std::to_string(k));
  c.norm_prepend = v[0];
  c.norm_replace = v[1];
  c.metaspace = v[2];
  c.meta_prepend = static_cast<Prepend>(v[3]);
  c.meta_split = v[4];
  c.byte_fallback = v[5];
  c.fuse_unk = v[6];
  c.ignore_merges = v[7];
  c.dec_replace = v[8];
  c.dec_bytes = v[9];
  c.dec_strip = v[10];
  const uint32_t n = r->Count("vocab size", 5);
  std::vector<std::string> pieces(n);
  std::vector<uint8_t> flags(n);
  for (uint32_t i = 0; i < n && r->ok(); ++i) {
    pieces[i] = r->Str("piece", 65536);
    flags[i] = r->U8("flags");
  }
  const uint32_t nm = r->Count("merge count", 8);
  std::vector<std::pair<int32_t, int32_t>> merges(nm);
  for (uint32_t i = 0; i < nm && r->ok(); ++i) {
    merges[i].first = r->I32("merge");
    merges[i].second = r->I32("merge");
  }
  const int32_t unk = r->I32("unk"), bos = r->I32("bos"), eos = r->I32("eos");
  if (!r->ok()) return nullptr;
  auto t = std::make_unique<HfSpmBpeTokenizer>();
  if (!t->Init(c, std::move(pieces), std::move(flags), std::move(merges), unk, bos, eos, err))
    return nullptr;
  return t;
}
}  // namespace

std::unique_ptr<Tokenizer> MakeHfSpmBpe(const hfspm::Config& cfg, std::vector<std::string> pieces,
                                        std::vector<uint8_t> flags,
                                        std::vector<std::pair<int32_t, int32_t>> merges,
                                        int32_t unk, int32_t bos, int32_t eos, std::string* err) {
  auto t = std::make_unique<HfSpmBpeTokenizer>();
  if (!t->Init(cfg, std::move(pieces), std::move(flags), std::move(merges), unk, bos, eos, err))
    return nullptr;
  return t;
}

std::unique_ptr<Tokenizer> DeserializeHfSpmBpe(BlobReader* r, std::string* err) {
  return HfSpmBpeTokenizer::FromBlob(r, err);
}

}  // namespace lamina::tok