// Llama 3 byte-level BPE (tiktoken tokenizer.model, HF tokenizer.json, GGUF
// "gpt2" vocabularies; tools/import/byte_bpe_import.cpp reads those): the
// Llama 3 pre-tokenizer regex written by hand, then merges by rank with a heap over a linked list
// of symbols (O(n log n) per pre-token), whole-pre-token vocabulary lookup first (HF ignore_merges
// / tiktoken), and an exact-match cache for pre-tokens that need merging.
#include <algorithm>
#include <array>
#include <mutex>
#include <unordered_map>

#include "tokenizer/internal.h"
#include "tokenizer/unicode.h"

namespace lamina::tok {
namespace {

// --------------------------------------------------------- pre-tokenizer
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// evaluated as the backtracking engines do (leftmost alternative that matches).
struct CodePoints {
  std::vector<uint32_t> cp;
  std::vector<uint8_t> cls;
  std::vector<uint32_t> off;  // byte offset of each code point, + end
};

inline uint32_t FoldAscii(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
inline bool IsNl(uint32_t c) { return c == '\r' || c == '\n'; }

// End (code point index) of the match starting at i.
size_t MatchAt(const CodePoints& t, size_t i) {
  const size_t n = t.cp.size();
  const uint32_t* cp = t.cp.data();
  const uint8_t* cls = t.cls.data();
  const uint32_t c = cp[i];
  // 1. contractions, case-insensitive (U+017F LONG S folds to 's').
  if (c == '\'' && i + 1 < n) {
    const uint32_t a = FoldAscii(cp[i + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd' || a == 0x17F) return i + 2;
    if (i + 2 < n) {
      const uint32_t b = FoldAscii(cp[i + 2]);
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
  }
  // 2. [^\r\n\p{L}\p{N}]?\p{L}+
  if (cls[i] == uni::kLetter) {
    size_t j = i + 1;
    while (j < n && cls[j] == uni::kLetter) ++j;
    return j;
  }
  if (cls[i] != uni::kNumber && !IsNl(c) && i + 1 < n && cls[i + 1] == uni::kLetter) {
    size_t j = i + 2;
    while (j < n && cls[j] == uni::kLetter) ++j;
    return j;
  }
  // 3. \p{N}{1,3}
  if (cls[i] == uni::kNumber) {
    size_t j = i + 1;
    while (j < n && j < i + 3 && cls[j] == uni::kNumber) ++j;
    return j;
  }
  // 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
  {
    const size_t k = c == ' ' ? i + 1 : i;
    if (k < n && cls[k] == uni::kOther) {
      size_t j = k + 1;
      while (j < n && cls[j] == uni::kOther) ++j;
      while (j < n && IsNl(cp[j])) ++j;
      return j;
    }
  }
  // Here c is White_Space. 5. \s*[\r\n]+ : up to the last newline of the run.
  size_t j = i;
  size_t last_nl = n;
  while (j < n && cls[j] == uni::kSpace) {
    if (IsNl(cp[j])) last_nl = j;
    ++j;
  }
  if (last_nl != n) return last_nl + 1;
  // 6. \s+(?!\S)   7. \s+
  if (j == n) return j;
  if (j - i >= 2) return j - 1;
  return j;
}

// ------------------------------------------------------------ the tokenizer
class ByteBpeTokenizer final : public Tokenizer {
 public:
  // Inputs: token bytes by id (specials: their text), special flags, merges
  // as (left, right) pairs in rank order.
  bool Init(std::vector<std::string> tokens, std::vector<uint8_t> special,
            const std::vector<std::pair<int32_t, int32_t>>& merges, int32_t bos, int32_t eos,
            std::vector<int32_t> stops, std::string tmpl, std::string* err);

  std::vector<uint8_t> Serialize() const override;
  bool Encode(std::string_view text, bool add_bos, bool parse_special, std::vector<int32_t>* out,
              std::string* err) const override;
  std::string TokenBytes(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return "";
    return std::string(Tok(id));
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(off_.size()) - 1; }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  std::vector<int32_t> stop_ids() const override { return stops_; }
  bool IsSpecial(int32_t id) const override { return id >= 0 && id < vocab_size() && special_[id]; }
  std::string chat_template() const override { return tmpl_; }

  static std::unique_ptr<Tokenizer> FromBlob(BlobReader* r, std::string* err);

 private:
  std::string_view Tok(int32_t id) const {
    return std::string_view(data_.data() + off_[id], off_[id + 1] - off_[id]);
  }
  // Merge table, CSR by left token: row_[a]..row_[a+1] index pairs_ sorted
  // by right token. rank = priority (lower merges first).
  struct PairEntry {
    int32_t right;
    uint32_t rank;
    int32_t merged;
  };
  const PairEntry* FindPair(int32_t a, int32_t b) const {
    const PairEntry* lo = pairs_.data() + row_[a];
    const PairEntry* hi = pairs_.data() + row_[a + 1];
    while (hi - lo > 8) {
      const PairEntry* mid = lo + (hi - lo) / 2;
      if (mid->right < b) {
        lo = mid + 1;
      } else if (mid->right > b) {
        hi = mid;
      } else {
        return mid;
      }
    }
    for (; lo < hi; ++lo)
      if (lo->right == b) return lo;
    return nullptr;
  }
  bool InitVocab(std::vector<uint32_t> off, std::string data, std::vector<uint8_t> special,
                 std::string* err);
  bool InitRest(int32_t bos, int32_t eos, std::vector<int32_t> stops, std::string tmpl,
                std::string* err);
  /// Validates the CSR merge table against the vocabulary.
  bool CheckMerges(std::string* err) const;
  void EncodePiece(std::string_view piece, std::vector<int32_t>* out, bool use_cache) const;
  void Merge(std::string_view piece, std::vector<int32_t>* out) const;
  static constexpr size_t kSmallPiece = 48;  // bytes; longer pieces use the heap
  void EncodeText(std::string_view text, std::vector<int32_t>* out, bool use_cache) const;

  std::vector<uint32_t> off_;
  std::string data_;
  std::vector<uint8_t> special_;
  std::vector<uint32_t> row_;
  std::vector<PairEntry> pairs_;
  StrIdMap vocab_;  // ordinary tokens only
  std::array<int32_t, 256> byte_id_{};
  SpecialMatcher specials_;
  int32_t bos_ = -1, eos_ = -1;
  std::vector<int32_t> stops_;
  std::string tmpl_;

  // Exact-match cache of merged pre-tokens (direct-mapped). Used by the one
  // Encode call that holds cache_mu_ (try_lock: concurrent calls skip it).
  struct CacheEntry {
    std::string key;
    std::vector<int32_t> ids;
  };
  static constexpr size_t kCacheSize = 4096;
  mutable std::mutex cache_mu_;
  mutable std::vector<CacheEntry> cache_;
};

bool ByteBpeTokenizer::InitVocab(std::vector<uint32_t> off, std::string data,
                                 std::vector<uint8_t> special, std::string* err) {
  const size_t n = special.size();
  if (n == 0 || n >= (1u << 30) || off.size() != n + 1 || off[0] != 0 || off[n] != data.size()) {
    *err = "vocabulary size " + std::to_string(n) + " invalid";
    return false;
  }
  for (size_t i = 0; i < n; ++i)
    if (off[i + 1] <= off[i]) {
      *err = "token " + std::to_string(i) + " is empty";
      return false;
    }
  off_ = std::move(off);
  data_ = std::move(data);
  special_ = std::move(special);
  auto key_of = [this](int32_t id) { return Tok(id); };
  std::vector<uint8_t> ordinary(n);
  for (size_t i = 0; i < n; ++i) ordinary[i] = !special_[i];
  vocab_.Build(n, key_of, &ordinary);
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    byte_id_[b] = vocab_.Find(std::string_view(&c, 1), key_of);
    if (byte_id_[b] < 0) {
      *err = "byte-level vocabulary lacks a token for byte " + std::to_string(b);
      return false;
    }
  }
  return true;
}

bool ByteBpeTokenizer::CheckMerges(std::string* err) const {
  const size_t n = special_.size(), m = pairs_.size();
  if (row_.size() != n + 1 || row_[0] != 0 || row_[n] != m) {
    *err = "merge table rows inconsistent";
    return false;
  }
  // One linear pass (this runs at every model load): ids in range, rows
  // sorted, ranks a permutation, every result the concatenation of its pair.
  const uint32_t* off = off_.data();
  const char* d = data_.data();
  const uint8_t* sp = special_.data();
  std::vector<uint8_t> seen(m, 0);
  for (size_t a = 0; a < n; ++a) {
    const uint32_t k0 = row_[a], k1 = row_[a + 1];
    if (k1 < k0 || k1 > m) {
      *err = "merge table rows not increasing at token " + std::to_string(a);
      return false;
    }
    if (k1 == k0) continue;
    const char* pa = d + off[a];
    const uint32_t la = off[a + 1] - off[a];
    int64_t prev_right = -1;
    for (uint32_t k = k0; k < k1; ++k) {
      const PairEntry& e = pairs_[k];
      const uint32_t r = static_cast<uint32_t>(e.right), t = static_cast<uint32_t>(e.merged);
      const char* what = nullptr;
      if (sp[a]) {
        what = "merge of a special token";
      } else if (r >= n || sp[r] || static_cast<int64_t>(r) <= prev_right) {
        what = "right token invalid or row not sorted";
      } else if (e.rank >= m || seen[e.rank]) {
        what = "rank invalid or repeated";
      } else if (t >= n || sp[t]) {
        what = "result invalid";
      } else {
        const uint32_t lr = off[r + 1] - off[r];
        if (off[t + 1] - off[t] != la + lr || std::memcmp(d + off[t], pa, la) != 0 ||
            std::memcmp(d + off[t] + la, d + off[r], lr) != 0)
          what = "result is not the concatenation";
      }
      if (what) {
        *err = "merge (" + std::to_string(a) + ", " + std::to_string(e.right) + "): " + what;
        return false;
      }
      seen[e.rank] = 1;
      prev_right = r;
    }
  }
  return true;
}

bool ByteBpeTokenizer::InitRest(int32_t bos, int32_t eos, std::vector<int32_t> stops,
                                std::string tmpl, std::string* err) {
  const int32_t n = static_cast<int32_t>(special_.size());
  for (int32_t s : stops)
    if (s < 0 || s >= n) {
      *err = "stop id " + std::to_string(s) + " out of range";
      return false;
    }
  if (bos < -1 || bos >= n || eos < -1 || eos >= n) {
    *err = "bos/eos id out of range";
    return false;
  }
  std::vector<std::pair<std::string, int32_t>> sp;
  for (int32_t i = 0; i < n; ++i)
    if (special_[i]) sp.emplace_back(std::string(Tok(i)), i);
  specials_.Build(sp);
  bos_ = bos;
  eos_ = eos;
  stops_ = std::move(stops);
  tmpl_ = std::move(tmpl);
  cache_.assign(kCacheSize, CacheEntry{});
  return true;
}

bool ByteBpeTokenizer::Init(std::vector<std::string> tokens, std::vector<uint8_t> special,
                            const std::vector<std::pair<int32_t, int32_t>>& merges, int32_t bos,
                            int32_t eos, std::vector<int32_t> stops, std::string tmpl,
                            std::string* err) {
  const size_t n = tokens.size();
  if (n == 0 || n >= (1u << 30) || special.size() != n) {
    *err = "vocabulary size " + std::to_string(n) + " invalid";
    return false;
  }
  std::vector<uint32_t> off(n + 1);
  std::string data;
  for (size_t i = 0; i < n; ++i) {
    off[i] = static_cast<uint32_t>(data.size());
    data += tokens[i];
    if (data.size() >= (1ull << 32)) {
      *err = "vocabulary too large";
      return false;
    }
  }
  off[n] = static_cast<uint32_t>(data.size());
  tokens.clear();
  if (!InitVocab(std::move(off), std::move(data), std::move(special), err)) return false;
  // Merge list (rank order) -> CSR; a repeated pair keeps its first rank.
  auto key_of = [this](int32_t id) { return Tok(id); };
  struct Item {
    int32_t a, b;
    uint32_t rank;
    int32_t merged;
  };
  std::vector<Item> items;
  items.reserve(merges.size());
  std::string cat;
  for (size_t r = 0; r < merges.size(); ++r) {
    const int32_t a = merges[r].first, b = merges[r].second;
    if (a < 0 || b < 0 || static_cast<size_t>(a) >= n || static_cast<size_t>(b) >= n ||
        special_[a] || special_[b]) {
      *err = "merge " + std::to_string(r) + ": token id out of range";
      return false;
    }
    cat.assign(Tok(a));
    cat.append(Tok(b));
    const int32_t m = vocab_.Find(cat, key_of);
    if (m < 0) {
      *err = "merge " + std::to_string(r) + ": result is not in the vocabulary";
      return false;
    }
    items.push_back(Item{a, b, static_cast<uint32_t>(r), m});
  }
  std::sort(items.begin(), items.end(), [](const Item& x, const Item& y) {
    return x.a != y.a ? x.a < y.a : x.b != y.b ? x.b < y.b : x.rank < y.rank;
  });
  row_.assign(n + 1, 0);
  pairs_.clear();
  pairs_.reserve(items.size());
  std::vector<uint32_t> rank_map(merges.size(), 0);
  for (size_t k = 0; k < items.size(); ++k) {
    if (k > 0 && items[k].a == items[k - 1].a && items[k].b == items[k - 1].b) continue;
    ++row_[items[k].a + 1];
    pairs_.push_back(PairEntry{items[k].b, items[k].rank, items[k].merged});
  }
  for (size_t a = 0; a < n; ++a) row_[a + 1] += row_[a];
  // Ranks dense 0..m-1 in the original order (duplicates removed).
  {
    std::vector<uint8_t> used(merges.size(), 0);
    for (const auto& e : pairs_) used[e.rank] = 1;
    uint32_t next = 0;
    for (size_t r = 0; r < merges.size(); ++r)
      if (used[r]) rank_map[r] = next++;
    for (auto& e : pairs_) e.rank = rank_map[e.rank];
  }
  if (!CheckMerges(err)) return false;
  return InitRest(bos, eos, std::move(stops), std::move(tmpl), err);
}

void ByteBpeTokenizer::Merge(std::string_view piece, std::vector<int32_t>* out) const {
  const size_t n = piece.size();
  if (n == 1) {
    out->push_back(byte_id_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  if (n <= kSmallPiece) {
    // Short pieces: the rank of every adjacent pair in an array, the lowest
    // (leftmost on ties) merged each step - the same order as the heap.
    int32_t id[kSmallPiece], mg[kSmallPiece];
    uint32_t rk[kSmallPiece];
    size_t m = n;
    for (size_t i = 0; i < n; ++i) id[i] = byte_id_[static_cast<uint8_t>(piece[i])];
    auto pair_at = [&](size_t i) {
      const PairEntry* p = FindPair(id[i], id[i + 1]);
      rk[i] = p ? p->rank : UINT32_MAX;
      mg[i] = p ? p->merged : -1;
    };
    for (size_t i = 0; i + 1 < m; ++i) pair_at(i);
    while (m > 1) {
      size_t best = 0;
      for (size_t i = 1; i + 1 < m; ++i)
        if (rk[i] < rk[best]) best = i;
      if (rk[best] == UINT32_MAX) break;
      id[best] = mg[best];
      for (size_t i = best + 1; i + 1 < m; ++i) {
        id[i] = id[i + 1];
        rk[i] = rk[i + 1];
        mg[i] = mg[i + 1];
      }
      --m;
      if (best > 0) pair_at(best - 1);
      if (best + 1 < m) pair_at(best);
    }
    out->insert(out->end(), id, id + m);
    return;
  }
  thread_local std::vector<int32_t> id, nxt, prv;
  thread_local std::vector<uint64_t> heap;
  id.resize(n);
  nxt.resize(n);
  prv.resize(n);
  heap.clear();
  for (size_t i = 0; i < n; ++i) {
    id[i] = byte_id_[static_cast<uint8_t>(piece[i])];
    nxt[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
    prv[i] = static_cast<int32_t>(i) - 1;
  }
  auto push = [&](int32_t pos) {
    const int32_t nx = nxt[pos];
    if (nx < 0) return;
    if (const PairEntry* p = FindPair(id[pos], id[nx])) {
      heap.push_back((static_cast<uint64_t>(p->rank) << 32) | static_cast<uint32_t>(pos));
      std::push_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
    }
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
    const uint64_t top = heap.back();
    heap.pop_back();
    const int32_t pos = static_cast<int32_t>(top & 0xFFFFFFFFu);
    const uint32_t rank = static_cast<uint32_t>(top >> 32);
    if (id[pos] < 0) continue;
    const int32_t nx = nxt[pos];
    if (nx < 0) continue;
    const PairEntry* p = FindPair(id[pos], id[nx]);
    if (!p || p->rank != rank) continue;  // stale entry
    id[pos] = p->merged;
    id[nx] = -1;
    nxt[pos] = nxt[nx];
    if (nxt[nx] >= 0) prv[nxt[nx]] = pos;
    if (prv[pos] >= 0) push(prv[pos]);
    push(pos);
  }
  for (int32_t i = 0; i >= 0; i = nxt[i]) out->push_back(id[i]);
}

void ByteBpeTokenizer::EncodePiece(std::string_view piece, std::vector<int32_t>* out,
                                   bool use_cache) const {
  const int32_t whole = vocab_.Find(piece, [this](int32_t id) { return Tok(id); });
  if (whole >= 0) {
    out->push_back(whole);
    return;
  }
  if (!use_cache || piece.size() > 128) {
    Merge(piece, out);
    return;
  }
  CacheEntry& e = cache_[Hash64(piece.data(), piece.size(), 7) & (kCacheSize - 1)];
  if (e.key.size() == piece.size() && e.key == piece) {
    out->insert(out->end(), e.ids.begin(), e.ids.end());
    return;
  }
  const size_t start = out->size();
  Merge(piece, out);
  e.key.assign(piece);
  e.ids.assign(out->begin() + start, out->end());
}

void ByteBpeTokenizer::EncodeText(std::string_view text, std::vector<int32_t>* out,
                                  bool use_cache) const {
  thread_local CodePoints t;
  t.cp.clear();
  t.cls.clear();
  t.off.clear();
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char b = static_cast<unsigned char>(text[i]);
    t.off.push_back(static_cast<uint32_t>(i));
    uint32_t cp = b;
    if (b < 0x80) {
      ++i;
    } else if (!uni::DecodeOne(text.data(), text.size(), &i, &cp)) {
      cp = 0xFFFD;  // unreachable: Encode validated the input
      ++i;
    }
    t.cp.push_back(cp);
    t.cls.push_back(uni::ClassOf(cp));
  }
  t.off.push_back(static_cast<uint32_t>(text.size()));
  const size_t n = t.cp.size();
  size_t pos = 0;
  while (pos < n) {
    const size_t end = MatchAt(t, pos);
    EncodePiece(text.substr(t.off[pos], t.off[end] - t.off[pos]), out, use_cache);
    pos = end;
  }
}

bool ByteBpeTokenizer::Encode(std::string_view text, bool add_bos, bool parse_special,
                              std::vector<int32_t>* out, std::string* err) const {
  out->clear();
  if (!CheckEncodeInput(text, 1ull << 32, err)) return false;  // 32-bit offsets
  if (add_bos && bos_ >= 0) out->push_back(bos_);
  std::unique_lock<std::mutex> lock(cache_mu_, std::try_to_lock);
  const bool use_cache = lock.owns_lock();
  if (parse_special && !specials_.empty()) {
    specials_.Split(
        text, [&](std::string_view seg) { EncodeText(seg, out, use_cache); },
        [&](int32_t id) { out->push_back(id); });
  } else {
    EncodeText(text, out, use_cache);
  }
  return true;
}

// Payload: n, offsets[n+1], token bytes, special[n], m, rows[n+1],
// m x (right, rank, merged), bos, eos, n_stops, stops, template. Laid out so
// that loading is copies + one linear validation pass + the vocabulary hash.
std::vector<uint8_t> ByteBpeTokenizer::Serialize() const {
  BlobWriter w;
  const uint32_t n = static_cast<uint32_t>(vocab_size());
  w.U32(n);
  w.Raw(off_.data(), off_.size() * 4);
  w.Raw(data_.data(), data_.size());
  w.Raw(special_.data(), n);
  w.U32(static_cast<uint32_t>(pairs_.size()));
  w.Raw(row_.data(), row_.size() * 4);
  static_assert(sizeof(PairEntry) == 12, "packed 3 x 4 bytes");
  w.Raw(pairs_.data(), pairs_.size() * sizeof(PairEntry));
  w.I32(bos_);
  w.I32(eos_);
  w.U32(static_cast<uint32_t>(stops_.size()));
  for (int32_t s : stops_) w.I32(s);
  w.Str(tmpl_);
  return w.Finish(Kind::kByteBpe);
}

std::unique_ptr<Tokenizer> ByteBpeTokenizer::FromBlob(BlobReader* r, std::string* err) {
  const uint32_t n = r->Count("vocab size", 9);
  if (!r->ok()) return nullptr;
  if (n == 0) {
    *err = "empty vocabulary";
    return nullptr;
  }
  std::vector<uint32_t> off(static_cast<size_t>(n) + 1);
  r->Raw(off.data(), off.size() * 4, "token offsets");
  if (!r->ok()) return nullptr;
  if (off[0] != 0) {
    *err = "token offsets do not start at 0";
    return nullptr;
  }
  for (uint32_t i = 0; i < n; ++i)
    if (off[i + 1] <= off[i]) {
      *err = "token offsets not increasing at " + std::to_string(i);
      return nullptr;
    }
  const uint8_t* data = r->Span(off[n], "token bytes");
  std::vector<uint8_t> special(n);
  r->Raw(special.data(), n, "special flags");
  const uint32_t m = r->Count("merge count", 12);
  auto t = std::make_unique<ByteBpeTokenizer>();
  t->row_.resize(static_cast<size_t>(n) + 1);
  r->Raw(t->row_.data(), t->row_.size() * 4, "merge rows");
  t->pairs_.resize(m);
  r->Raw(t->pairs_.data(), static_cast<size_t>(m) * sizeof(PairEntry), "merges");
  const int32_t bos = r->I32("bos"), eos = r->I32("eos");
  const uint32_t ns = r->Count("stop count", 4);
  std::vector<int32_t> stops(ns);
  for (auto& s : stops) s = r->I32("stop ids");
  std::string tmpl = r->Str("template", 64);
  if (!r->ok()) return nullptr;
  for (uint8_t f : special)
    if (f > 1) {
      *err = "special flag not 0/1";
      return nullptr;
    }
  std::string bytes(reinterpret_cast<const char*>(data), off[n]);
  if (!t->InitVocab(std::move(off), std::move(bytes), std::move(special), err) ||
      !t->CheckMerges(err) || !t->InitRest(bos, eos, std::move(stops), std::move(tmpl), err))
    return nullptr;
  return t;
}

/// "llama3" when the vocabulary is Llama 3's (128256 tokens, header/eot specials).
std::string DetectTemplate(const std::vector<std::string>& tokens,
                           const std::vector<uint8_t>& special) {
  if (tokens.size() != 128256) return "";
  const bool ok = special[128006] && tokens[128006] == "<|start_header_id|>" && special[128007] &&
                  tokens[128007] == "<|end_header_id|>" && special[128009] &&
                  tokens[128009] == "<|eot_id|>" && special[128000] &&
                  tokens[128000] == "<|begin_of_text|>";
  return ok ? "llama3" : "";
}

}  // namespace

std::unique_ptr<Tokenizer> MakeByteBpe(const std::string& name, std::vector<std::string> tokens,
                                       std::vector<uint8_t> special,
                                       const std::vector<std::pair<int32_t, int32_t>>& merges,
                                       int32_t bos, int32_t eos, std::string* err) {
  std::string tmpl = DetectTemplate(tokens, special);
  std::vector<int32_t> stops;
  if (tmpl == "llama3") {
    // The source's bos/eos when it names them (GGUF: an instruct model's eos
    // is 128009), else <|begin_of_text|> / <|end_of_text|>.
    if (bos < 0) bos = 128000;
    if (eos < 0) eos = 128001;
    stops = {128001, 128008, 128009};
    if (eos != 128001 && eos != 128008 && eos != 128009) stops.push_back(eos);
  } else if (eos >= 0) {
    stops = {eos};
  }
  auto t = std::make_unique<ByteBpeTokenizer>();
  std::string e;
  if (!t->Init(std::move(tokens), std::move(special), merges, bos, eos, std::move(stops),
               std::move(tmpl), &e)) {
    *err = name + ": " + e;
    return nullptr;
  }
  return t;
}

std::unique_ptr<Tokenizer> DeserializeByteBpe(BlobReader* r, std::string* err) {
  return ByteBpeTokenizer::FromBlob(r, err);
}

}  // namespace lamina::tok