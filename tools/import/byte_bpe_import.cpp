// Importers of Llama 3 byte-level BPE vocabularies: tiktoken tokenizer.model,
// Hugging Face tokenizer.json (byte-level; a SentencePiece-style file goes to
// hf_spm_import.cpp) and GGUF "gpt2" vocabularies. They build the runtime's
// tokenizer (tokenizer/bpe.cpp) through MakeByteBpe.
#include <algorithm>
#include <array>
#include <unordered_map>

#include "tokenizer/unicode.h"
#include "tools/import/import_internal.h"
#include "tools/import/json.h"

namespace lamina::tok {
namespace {

// ------------------------------------------------- GPT-2 bytes <-> unicode
struct ByteUnicode {
  std::array<uint32_t, 256> to_cp;
  std::array<int16_t, 324> to_byte;  // code point -> byte (-1: none)
  ByteUnicode() {
    to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? b : 256 + n++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteUnicode& BU() {
  static const ByteUnicode bu;
  return bu;
}

/// GPT-2 unicode form -> raw bytes; false if a character is outside the map.
bool UnmapBytes(std::string_view s, std::string* out) {
  out->clear();
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp;
    if (!uni::DecodeOne(s.data(), s.size(), &i, &cp)) return false;
    if (cp >= 324 || BU().to_byte[cp] < 0) return false;
    out->push_back(static_cast<char>(BU().to_byte[cp]));
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------- tiktoken
std::unique_ptr<Tokenizer> LoadTiktoken(const std::string& path, const std::string& text,
                                        const std::vector<std::string>& special_names,
                                        std::string* err) {
  static const auto kB64 = [] {
    std::array<int8_t, 256> t;
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(a[i])] = static_cast<int8_t>(i);
    return t;
  }();
  std::vector<std::string> tokens;
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    auto bad = [&](const char* what) {
      *err = path + ": line " + std::to_string(line_no) + ": " + what;
      return nullptr;
    };
    if (sp == std::string_view::npos) return bad("expected 'base64 rank'");
    std::string tok;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < sp; ++i) {
      const char c = line[i];
      if (c == '=') break;
      const int v = kB64[static_cast<uint8_t>(c)];
      if (v < 0) return bad("invalid base64");
      acc = (acc << 6) | static_cast<uint32_t>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        tok.push_back(static_cast<char>((acc >> bits) & 0xFF));
      }
    }
    uint64_t rank = 0;
    if (sp + 1 >= line.size()) return bad("missing rank");
    for (size_t i = sp + 1; i < line.size(); ++i) {
      if (line[i] < '0' || line[i] > '9' || rank > (1u << 30)) return bad("invalid rank");
      rank = rank * 10 + static_cast<uint64_t>(line[i] - '0');
    }
    if (rank != tokens.size()) return bad("ranks must be 0, 1, 2, ... in order");
    if (tok.empty()) return bad("empty token");
    tokens.push_back(std::move(tok));
  }
  if (tokens.size() != 128000) {
    *err = path + ": " + std::to_string(tokens.size()) +
           " ranks; the Llama 3 tiktoken vocabulary has 128000";
    return nullptr;
  }
  std::vector<std::string> names = special_names.empty() ? Llama31SpecialNames() : special_names;
  if (names.size() != 256) {
    *err = path + ": expected 256 special token names, got " + std::to_string(names.size());
    return nullptr;
  }
  const size_t n_base = tokens.size();
  // Merges as Hugging Face's tiktoken converter derives them: every split
  // (left, right) of a token into two tokens, ordered by the token's rank,
  // then by (rank(left), rank(right)).
  StrIdMap map;
  auto key_of = [&tokens](int32_t id) { return std::string_view(tokens[id]); };
  map.Build(n_base, key_of);
  std::vector<std::pair<int32_t, int32_t>> merges;
  merges.reserve(300000);
  std::vector<std::pair<int32_t, int32_t>> local;
  for (size_t r = 0; r < n_base; ++r) {
    const std::string_view t = tokens[r];
    if (t.size() < 2) continue;
    local.clear();
    for (size_t k = 1; k < t.size(); ++k) {
      const int32_t a = map.Find(t.substr(0, k), key_of);
      if (a < 0) continue;
      const int32_t b = map.Find(t.substr(k), key_of);
      if (b < 0) continue;
      local.emplace_back(a, b);
    }
    std::sort(local.begin(), local.end());
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::vector<uint8_t> special(n_base, 0);
  for (auto& s : names) {
    tokens.push_back(std::move(s));
    special.push_back(1);
  }
  return MakeByteBpe(path, std::move(tokens), std::move(special), merges, -1, -1, err);
}

// ------------------------------------------------------- HF tokenizer.json
std::unique_ptr<Tokenizer> LoadHfJson(const std::string& path, std::string* err) {
  json::Value root;
  std::string e;
  if (!json::ParseFile(path, &root, &e)) {
    *err = e;
    return nullptr;
  }
  auto bad = [&](const std::string& what) {
    *err = path + ": " + what;
    return nullptr;
  };
  const json::Value* model = root.Find("model");
  if (!model || !model->is_object()) return bad("missing 'model'");
  const json::Value* type = model->Find("type");
  if (!type || !type->is_string() || type->as_string() != "BPE")
    return bad("model.type '" + (type && type->is_string() ? type->as_string() : std::string()) +
               "' is not supported (supported: BPE, byte-level as Llama 3 or SentencePiece-style "
               "as Llama 2 / Mistral; lamina-convert --tokenizer none converts without one)");
  const json::Value* pre = root.Find("pre_tokenizer");
  // No ByteLevel anywhere (pre-tokenizer or decoder): SentencePiece style.
  bool any_byte_level = false;
  for (const char* key : {"pre_tokenizer", "decoder"}) {
    std::vector<const json::Value*> stack = {root.Find(key)};
    while (!stack.empty()) {
      const json::Value* p = stack.back();
      stack.pop_back();
      if (!p || !p->is_object()) continue;
      const json::Value* t = p->Find("type");
      if (t && t->is_string() && t->as_string() == "ByteLevel") any_byte_level = true;
      for (const char* list : {"pretokenizers", "decoders"})
        if (const json::Value* seq = p->Find(list); seq && seq->is_array())
          for (const auto& x : seq->items()) stack.push_back(&x);
    }
  }
  if (!any_byte_level) return LoadHfSpmBpe(path, root, err);
  bool byte_level = false, llama3_regex = false;
  if (pre && pre->is_object()) {
    std::vector<const json::Value*> stack = {pre};
    while (!stack.empty()) {
      const json::Value* p = stack.back();
      stack.pop_back();
      const json::Value* t = p->Find("type");
      if (!t || !t->is_string()) continue;
      if (t->as_string() == "ByteLevel") byte_level = true;
      if (t->as_string() == "Split") {
        const json::Value* pat = p->Find("pattern");
        const json::Value* re = pat ? pat->Find("Regex") : nullptr;
        if (re && re->is_string() &&
            re->as_string() ==
                "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
          llama3_regex = true;
      }
      if (const json::Value* seq = p->Find("pretokenizers"); seq && seq->is_array())
        for (const auto& x : seq->items()) stack.push_back(&x);
    }
  }
  if (!byte_level || !llama3_regex)
    return bad("pre_tokenizer is not Llama 3's (Split with the Llama 3 regex + ByteLevel)");
  const json::Value* vocab = model->Find("vocab");
  const json::Value* merges = model->Find("merges");
  if (!vocab || !vocab->is_object()) return bad("missing model.vocab");
  if (!merges || !merges->is_array()) return bad("missing model.merges");
  const size_t nv = vocab->size();
  std::vector<std::string> tokens(nv);
  std::vector<uint8_t> have(nv, 0);
  std::string bytes;
  for (const auto& m : vocab->members()) {
    int64_t id;
    if (!m.second.as_int64(&id) || id < 0 || static_cast<size_t>(id) >= nv)
      return bad("model.vocab['" + m.first + "']: id not in [0, vocab size)");
    if (have[id]) return bad("model.vocab: id " + std::to_string(id) + " used twice");
    if (!UnmapBytes(m.first, &bytes) || bytes.empty())
      return bad("model.vocab['" + m.first + "']: not in GPT-2 byte-to-unicode form");
    tokens[id] = bytes;
    have[id] = 1;
  }
  std::vector<uint8_t> special(nv, 0);
  if (const json::Value* at = root.Find("added_tokens"); at && at->is_array()) {
    for (const auto& a : at->items()) {
      int64_t id;
      const json::Value* idv = a.Find("id");
      const json::Value* content = a.Find("content");
      if (!idv || !idv->as_int64(&id) || id < 0 || id > (1 << 24) || !content ||
          !content->is_string() || content->as_string().empty())
        return bad("added_tokens: entry without a valid id/content");
      if (static_cast<size_t>(id) >= tokens.size()) {
        tokens.resize(id + 1);
        special.resize(id + 1, 0);
        have.resize(id + 1, 0);
      }
      if (have[id] && !special[id]) continue;  // an ordinary token listed as added: keep
      tokens[id] = content->as_string();
      special[id] = 1;
      have[id] = 1;
    }
  }
  for (size_t i = 0; i < tokens.size(); ++i)
    if (!have[i]) return bad("token id " + std::to_string(i) + " missing");
  // Merge list: "a b" strings or [a, b] arrays.
  StrIdMap map;
  auto key_of = [&tokens](int32_t id) { return std::string_view(tokens[id]); };
  std::vector<uint8_t> ordinary(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) ordinary[i] = !special[i];
  map.Build(tokens.size(), key_of, &ordinary);
  std::vector<std::pair<int32_t, int32_t>> mlist;
  mlist.reserve(merges->size());
  std::unordered_map<uint64_t, size_t> seen;  // (a, b) -> first index: repeats are an error
  seen.reserve(merges->size());
  std::string lb, rb;
  for (size_t i = 0; i < merges->items().size(); ++i) {
    std::string_view l, r;
    std::string what;
    if (!SplitMerge(merges->items()[i], &l, &r, &what))
      return bad("merges[" + std::to_string(i) + "]: " + what);
    if (!UnmapBytes(l, &lb) || !UnmapBytes(r, &rb))
      return bad("merges[" + std::to_string(i) + "]: not in byte-to-unicode form");
    const int32_t a = map.Find(lb, key_of), b = map.Find(rb, key_of);
    if (a < 0 || b < 0) return bad("merges[" + std::to_string(i) + "]: token not in vocab");
    const auto ins = seen.emplace(
        (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b), i);
    if (!ins.second)
      return bad("merges[" + std::to_string(i) + "] repeats merges[" +
                 std::to_string(ins.first->second) + "]");
    mlist.emplace_back(a, b);
  }
  return MakeByteBpe(path, std::move(tokens), std::move(special), mlist, -1, -1, err);
}

// ------------------------------------------------------------- GGUF gpt2
std::unique_ptr<Tokenizer> LoadGgufGpt2(const GgufVocab& v, std::string* err) {
  const size_t n = v.tokens.size();
  if (n == 0) {
    *err = "gguf: tokenizer.ggml.tokens is empty";
    return nullptr;
  }
  if (!v.types.empty() && v.types.size() != n) {
    *err = "gguf: tokenizer.ggml.token_type has " + std::to_string(v.types.size()) +
           " entries, tokens has " + std::to_string(n);
    return nullptr;
  }
  if (!v.pre.empty() && v.pre != "llama-bpe" && v.pre != "llama3" && v.pre != "default") {
    *err = "gguf: tokenizer.ggml.pre '" + v.pre + "' not supported (llama-bpe)";
    return nullptr;
  }
  std::vector<std::string> tokens(n);
  std::vector<uint8_t> special(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int32_t type = v.types.empty() ? 1 : v.types[i];
    if (type == 3 || type == 4) {  // control / user-defined: literal text
      special[i] = 1;
      tokens[i] = v.tokens[i];
      if (tokens[i].empty()) {
        *err = "gguf: token " + std::to_string(i) + " is empty";
        return nullptr;
      }
    } else if (!UnmapBytes(v.tokens[i], &tokens[i]) || tokens[i].empty()) {
      *err = "gguf: token " + std::to_string(i) + " not in GPT-2 byte-to-unicode form";
      return nullptr;
    }
  }
  StrIdMap map;
  auto key_of = [&tokens](int32_t id) { return std::string_view(tokens[id]); };
  std::vector<uint8_t> ordinary(n);
  for (size_t i = 0; i < n; ++i) ordinary[i] = !special[i];
  map.Build(n, key_of, &ordinary);
  std::vector<std::pair<int32_t, int32_t>> mlist;
  mlist.reserve(v.merges.size());
  std::string lb, rb;
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& s = v.merges[i];
    const size_t sp = s.find(' ');
    if (sp == std::string::npos || !UnmapBytes(std::string_view(s).substr(0, sp), &lb) ||
        !UnmapBytes(std::string_view(s).substr(sp + 1), &rb)) {
      *err = "gguf: tokenizer.ggml.merges[" + std::to_string(i) + "] malformed";
      return nullptr;
    }
    const int32_t a = map.Find(lb, key_of), b = map.Find(rb, key_of);
    if (a < 0 || b < 0) {
      *err = "gguf: tokenizer.ggml.merges[" + std::to_string(i) + "]: token not in vocab";
      return nullptr;
    }
    mlist.emplace_back(a, b);
  }
  return MakeByteBpe("gguf", std::move(tokens), std::move(special), mlist, v.bos_id, v.eos_id, err);
}

}  // namespace lamina::tok
