// Helpers shared by the libFuzzer harnesses in tests/fuzz/ (header-only: each
// harness is one binary).
//
// Multi-file inputs (a checkpoint directory, a model + tokenizer pair) are one
// fuzz input made of parts: u32 little-endian length, then that many bytes;
// the last part is whatever remains. tests/fuzz/make_seeds.py writes seeds in
// the same layout.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lamina/lamina.h"
#include "tokenizer/tokenizer.h"
#include "tools/import/tokenizer_import.h"

namespace lamina::fuzz {

/// Splits `data` into `n` parts (see the header comment); missing parts are empty.
inline std::vector<std::string_view> Parts(const uint8_t* data, size_t size, size_t n) {
  std::vector<std::string_view> out;
  const char* p = reinterpret_cast<const char*>(data);
  size_t left = size;
  for (size_t i = 0; i + 1 < n; ++i) {
    uint32_t len = 0;
    if (left >= 4) {
      std::memcpy(&len, p, 4);
      p += 4;
      left -= 4;
    } else {
      left = 0;
    }
    const size_t take = len < left ? len : left;
    out.emplace_back(p, take);
    p += take;
    left -= take;
  }
  out.emplace_back(p, left);
  return out;
}

/// A scratch directory of this process (harnesses write their input there).
inline const std::string& Dir() {
  static const std::string d = [] {
    const char* t = std::getenv("TMPDIR");
    std::string s = std::string(t && *t ? t : "/tmp") + "/lamina-fuzz." + std::to_string(getpid());
    std::string cmd = "mkdir -p '" + s + "'";
    if (std::system(cmd.c_str()) != 0) std::abort();
    return s;
  }();
  return d;
}

inline void WriteFile(const std::string& path, std::string_view data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (!data.empty() && std::fwrite(data.data(), 1, data.size(), f) != data.size()) std::abort();
  std::fclose(f);
}

/// Writes the parts of a multi-file input as the files `names` of the scratch
/// subdirectory `sub`; returns that directory.
inline std::string WriteParts(const uint8_t* data, size_t size, const std::string& sub,
                              const std::vector<const char*>& names) {
  const std::string dir = Dir() + "/" + sub;
  if (std::system(("mkdir -p '" + dir + "'").c_str()) != 0) std::abort();
  const auto p = Parts(data, size, names.size());
  for (size_t i = 0; i < names.size(); ++i) WriteFile(dir + "/" + names[i], p[i]);
  return dir;
}

/// A failed property: print and crash so that libFuzzer keeps the input.
#define LAMINA_FUZZ_CHECK(cond, what)                                                              \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "lamina fuzz property failed: %s (%s:%d)\n", what, __FILE__, __LINE__); \
      std::abort();                                                                                \
    }                                                                                              \
  } while (0)

/// Loads a .lamina file through the C API and uses it as an application
/// would: a 2-token evaluation, one greedy sample, tokenize + detokenize, chat
/// template. Any failure must be a clean status.
inline void LoadAndEval(const std::string& path) {
  lamina_model* m = nullptr;
  if (lamina_model_load(path.c_str(), nullptr, &m) != LAMINA_OK) {
    LAMINA_FUZZ_CHECK(m == nullptr, "failed load returned a model");
    return;
  }
  lamina_model_info info;
  LAMINA_FUZZ_CHECK(lamina_model_get_info(m, &info) == LAMINA_OK, "model info");
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = 8;
  cp.n_threads = 1;
  cp.n_batch = 2;
  lamina_context* c = nullptr;
  if (lamina_context_create(m, &cp, &c) == LAMINA_OK) {
    const int32_t toks[2] = {info.bos_id >= 0 ? info.bos_id : 0, info.vocab_size > 1 ? 1 : 0};
    if (lamina_eval(c, toks, 2) == LAMINA_OK) {
      lamina_sampler_params sp = lamina_sampler_default_params();
      sp.temperature = 0;
      lamina_sampler* s = nullptr;
      if (lamina_sampler_create(m, &sp, &s) == LAMINA_OK) {
        int32_t tok = -1;
        if (lamina_sample(s, c, &tok) == LAMINA_OK)
          LAMINA_FUZZ_CHECK(tok >= 0 && tok < info.vocab_size, "sampled id in range");
        lamina_sampler_free(s);
      }
    }
    lamina_context_free(c);
  }
  if (info.has_tokenizer) {
    int32_t ids[64];
    size_t n = 0;
    if (lamina_tokenize(m, "Hello <s> world", 15, 1, 1, ids, 64, &n) == LAMINA_OK) {
      char buf[512];
      size_t nb = 0;
      (void)lamina_detokenize(m, ids, n, buf, sizeof(buf), &nb);
    }
    const lamina_chat_message msg = {"user", "hi"};
    char buf[512];
    size_t nb = 0;
    (void)lamina_chat_apply_template(m, &msg, 1, 1, buf, sizeof(buf), &nb);
  }
  lamina_model_free(m);
}

/// After a conversion to `out`: the model loads and runs, or the converter
/// said why it failed.
inline void AfterConvert(bool ok, const std::string& err, const std::string& out) {
  if (ok) {
    LoadAndEval(out);
  } else {
    LAMINA_FUZZ_CHECK(!err.empty(), "a failed conversion says why");
  }
}

/// Loads a tokenizer file (as a converter would) and, when it loads, encodes
/// and decodes `text` and round-trips its serialized blob.
inline void TryTokenizerFile(const std::string& path, std::string_view text) {
  std::string err;
  auto t = TokenizerFromFile(path, &err);
  if (!t) {
    LAMINA_FUZZ_CHECK(!err.empty(), "a tokenizer that fails to load says why");
    return;
  }
  std::vector<int32_t> ids;
  if (t->Encode(text, true, true, &ids, &err)) (void)t->Decode(ids);
  const auto blob = t->Serialize();
  auto u = Tokenizer::Deserialize(blob.data(), blob.size(), &err);
  LAMINA_FUZZ_CHECK(u && u->Serialize() == blob, "tokenizer blob round trip");
}

/// A Llama 3.x-shaped byte-level BPE tokenizer built without any file of the
/// fixtures: 256 single bytes, every byte pair, then byte triples up to 128000
/// ranks (tiktoken form), and Meta's 256 special names, so that the Llama 3
/// chat template applies. Decode(Encode(text)) == text for valid UTF-8.
inline std::unique_ptr<Tokenizer> MakeLlama3Like() {
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto enc = [](const uint8_t* s, size_t n) {
    std::string o;
    for (size_t i = 0; i < n; i += 3) {
      uint32_t v = static_cast<uint32_t>(s[i]) << 16;
      if (i + 1 < n) v |= static_cast<uint32_t>(s[i + 1]) << 8;
      if (i + 2 < n) v |= s[i + 2];
      o += b64[(v >> 18) & 63];
      o += b64[(v >> 12) & 63];
      o += i + 1 < n ? b64[(v >> 6) & 63] : '=';
      o += i + 2 < n ? b64[v & 63] : '=';
    }
    return o;
  };
  std::string text;
  size_t rank = 0;
  auto add = [&](const uint8_t* s, size_t n) {
    text += enc(s, n) + " " + std::to_string(rank++) + "\n";
  };
  for (int a = 0; a < 256; ++a) {
    const uint8_t s[1] = {static_cast<uint8_t>(a)};
    add(s, 1);
  }
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b) {
      const uint8_t s[2] = {static_cast<uint8_t>(a), static_cast<uint8_t>(b)};
      add(s, 2);
    }
  for (int a = 0; a < 256 && rank < 128000; ++a)
    for (int b = 0; b < 256 && rank < 128000; ++b)
      for (int c = 0; c < 256 && rank < 128000; ++c) {
        const uint8_t s[3] = {static_cast<uint8_t>(a), static_cast<uint8_t>(b),
                              static_cast<uint8_t>(c)};
        add(s, 3);
      }
  const std::string path = Dir() + "/llama3like.tiktoken";
  WriteFile(path, text);
  std::string err;
  auto t = TokenizerFromTiktoken(path, {}, &err);
  if (!t || t->chat_template() != "llama3") {
    std::fprintf(stderr, "MakeLlama3Like: %s\n", err.c_str());
    std::abort();
  }
  return t;
}

/// A SentencePiece-style Hugging Face tokenizer.json (Llama 2 layout: every
/// byte as <0xNN>, a few letters and merges).
inline std::unique_ptr<Tokenizer> MakeHfSentencePiece() {
  std::string vocab = "\"<unk>\":0,\"<s>\":1,\"</s>\":2";
  int id = 3;
  for (int b = 0; b < 256; ++b) {
    char name[16];
    std::snprintf(name, sizeof(name), "\"<0x%02X>\"", b);
    vocab += std::string(",") + name + ":" + std::to_string(id++);
  }
  const char* pieces[] = {"\u2581", "a", "b", "e", "h", "t", "\u2581t", "he", "\u2581the", "ab"};
  for (const char* p : pieces) vocab += std::string(",\"") + p + "\":" + std::to_string(id++);
  const std::string json =
      "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
      "{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
      "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false}],"
      "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":"
      "\"\u2581\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\u2581\"}]},"
      "\"pre_tokenizer\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":"
      "\"Replace\",\"pattern\":{\"String\":\"\u2581\"},\"content\":\" \"},{\"type\":"
      "\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,"
      "\"stop\":0}]},\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,"
      "\"byte_fallback\":true,\"vocab\":{" +
      vocab + "},\"merges\":[\"\u2581 t\",\"h e\",\"\u2581t he\",\"a b\"]}}";
  const std::string path = Dir() + "/hfspm.json";
  WriteFile(path, json);
  std::string err;
  auto t = TokenizerFromFile(path, &err);
  if (!t) {
    std::fprintf(stderr, "MakeHfSentencePiece: %s\n", err.c_str());
    std::abort();
  }
  return t;
}

/// A scored SentencePiece-style vocabulary as GGUF stores it ("llama").
inline std::unique_ptr<Tokenizer> MakeScored() {
  GgufVocab v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    v.tokens.push_back(name);
    v.types.push_back(6);
  }
  const char* pieces[] = {"\u2581", "a", "b", "e", "h", "t", "\u2581t", "he", "\u2581the", "ab"};
  for (const char* p : pieces) {
    v.tokens.push_back(p);
    v.types.push_back(1);
  }
  v.scores.assign(v.tokens.size(), 0.f);
  for (size_t i = 259; i < v.scores.size(); ++i) v.scores[i] = -static_cast<float>(i);
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  std::string err;
  auto t = TokenizerFromGguf(v, &err);
  if (!t) {
    std::fprintf(stderr, "MakeScored: %s\n", err.c_str());
    std::abort();
  }
  return t;
}

}  // namespace lamina::fuzz
