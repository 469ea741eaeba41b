// Tokenizer tests: Llama 3 vectors (tiktoken + tokenizer.json), llama.cpp
// vectors, round trips, robustness, streaming decode, serialization, chat
// template, SentencePiece equivalence, llama2.c tok512.bin.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <tuple>

#include "tests/testutil.h"
#include "tokenizer/internal.h"
#include "tokenizer/unicode.h"
#include "tools/convert/gguf_reader.h"
#include "tools/import/import_internal.h"
#include "tools/import/json.h"
#include "tools/import/tokenizer_import.h"

#ifdef LAMINA_WITH_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

namespace lamina {
namespace {

using test::SharedDir;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const Tokenizer* Cached(const std::string& rel) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(rel);
  if (it != cache.end()) return it->second.get();
  std::string err;
  auto t = TokenizerFromFile(SharedDir() + "/" + rel, &err);
  EXPECT_NE(t, nullptr) << err;
  return (cache[rel] = std::move(t)).get();
}

struct Vector {
  std::string text;
  std::vector<int32_t> ids;
};

/// ../shared/tokenizers/<name>/vectors.json: strings with Hugging Face's ids.
std::vector<Vector> ReadVectors(const std::string& name) {
  json::Value v;
  std::string err;
  EXPECT_TRUE(json::ParseFile(SharedDir() + "/tokenizers/" + name + "/vectors.json", &v, &err))
      << err;
  std::vector<Vector> out;
  for (const auto& e : v.items()) {
    Vector x;
    x.text = e.Find("text")->as_string();
    for (const auto& id : e.Find("ids")->items()) {
      int64_t i = 0;
      EXPECT_TRUE(id.as_int64(&i));
      x.ids.push_back(static_cast<int32_t>(i));
    }
    out.push_back(std::move(x));
  }
  return out;
}
std::vector<Vector> Llama3Vectors() { return ReadVectors("llama3"); }
std::vector<Vector> MistralVectors() { return ReadVectors("mistral"); }

std::string IdsStr(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

void ExpectVectors(const Tokenizer& tok, const char* what) {
  const auto vec = Llama3Vectors();
  ASSERT_EQ(vec.size(), 408u);
  size_t matched = 0;
  for (const auto& v : vec) {
    std::vector<int32_t> ids;
    std::string err;
    ASSERT_TRUE(tok.Encode(v.text, /*add_bos=*/false, /*parse_special=*/true, &ids, &err)) << err;
    if (ids == v.ids) {
      ++matched;
    } else {
      ADD_FAILURE() << what << ": mismatch for " << testing::PrintToString(v.text) << "\n got  "
                    << IdsStr(ids) << "\n want " << IdsStr(v.ids);
    }
  }
  EXPECT_EQ(matched, vec.size());
  std::printf("[ %s: %zu / %zu vectors.json entries match ]\n", what, matched, vec.size());
}

TEST(Llama3Tokenizer, VectorsFromTiktoken) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/vectors.json");
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const Tokenizer* t = Cached("tokenizers/llama3/tokenizer.model");
  ASSERT_NE(t, nullptr);
  ExpectVectors(*t, "tokenizer.model");
}

TEST(Llama3Tokenizer, VectorsFromJson) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/vectors.json");
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.json");
  const Tokenizer* t = Cached("tokenizers/llama3/tokenizer.json");
  ASSERT_NE(t, nullptr);
  ExpectVectors(*t, "tokenizer.json");
}

// The merges HF's converter derives from tiktoken ranks are exactly the
// tokenizer.json merges, and the special names come from the HF file beside
// tokenizer.model: the two sources serialize to the same blob.
TEST(Llama3Tokenizer, TiktokenAndJsonIdentical) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.json");
  const Tokenizer* a = Cached("tokenizers/llama3/tokenizer.model");
  const Tokenizer* b = Cached("tokenizers/llama3/tokenizer.json");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->vocab_size(), 128256);
  EXPECT_TRUE(a->Serialize() == b->Serialize());
}

TEST(Llama3Tokenizer, SpecialTokens) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const Tokenizer* t = Cached("tokenizers/llama3/tokenizer.model");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->bos_id(), 128000);
  EXPECT_EQ(t->eos_id(), 128001);
  EXPECT_EQ(t->stop_ids(), (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(t->chat_template(), "llama3");
  EXPECT_TRUE(t->IsSpecial(128009));
  EXPECT_FALSE(t->IsSpecial(1000));
  EXPECT_EQ(t->TokenBytes(128006), "<|start_header_id|>");
  // This fixture's tokenizer.json carries the Llama 3.0 names (128008 is
  // <|reserved_special_token_4|>): vectors.json treats "<|eom_id|>" as text.
  EXPECT_EQ(t->TokenBytes(128008), "<|reserved_special_token_4|>");
  std::vector<int32_t> ids;
  std::string err;
  ASSERT_TRUE(t->Encode("<|eot_id|>hi<|begin_of_text|>", true, true, &ids, &err));
  EXPECT_EQ(ids, (std::vector<int32_t>{128000, 128009, 6151, 128000}));
  ASSERT_TRUE(t->Encode("<|eot_id|>", false, false, &ids, &err));
  EXPECT_GT(ids.size(), 1u);  // ordinary text
  for (int32_t id : ids) EXPECT_LT(id, 128000);
  EXPECT_EQ(t->Decode(ids), "<|eot_id|>");

  // Without a Hugging Face file: Meta's Llama 3.1/3.2 names.
  auto t31 = TokenizerFromTiktoken(SharedDir() + "/tokenizers/llama3/tokenizer.model", {}, &err);
  ASSERT_NE(t31, nullptr) << err;
  const std::map<int32_t, std::string> want = {{128000, "<|begin_of_text|>"},
                                               {128001, "<|end_of_text|>"},
                                               {128002, "<|reserved_special_token_0|>"},
                                               {128003, "<|reserved_special_token_1|>"},
                                               {128004, "<|finetune_right_pad_id|>"},
                                               {128005, "<|reserved_special_token_2|>"},
                                               {128006, "<|start_header_id|>"},
                                               {128007, "<|end_header_id|>"},
                                               {128008, "<|eom_id|>"},
                                               {128009, "<|eot_id|>"},
                                               {128010, "<|python_tag|>"},
                                               {128011, "<|reserved_special_token_3|>"},
                                               {128255, "<|reserved_special_token_247|>"}};
  for (const auto& [id, name] : want) EXPECT_EQ(t31->TokenBytes(id), name) << id;
  ASSERT_TRUE(t31->Encode("a<|eom_id|><|python_tag|>", false, true, &ids, &err));
  EXPECT_EQ(ids, (std::vector<int32_t>{64, 128008, 128010}));
  EXPECT_EQ(t31->chat_template(), "llama3");
}

std::vector<std::string> SplitInp(const std::string& path) {
  const std::string d = ReadAll(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t e = d.find(sep, pos);
    if (e == std::string::npos) break;
    out.push_back(d.substr(pos, e - pos));
    pos = e + sep.size();
  }
  return out;
}

std::vector<std::vector<int32_t>> ReadOut(const std::string& path) {
  std::istringstream in(ReadAll(path));
  std::vector<std::vector<int32_t>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (ls >> id) ids.push_back(id);
    out.push_back(ids);
  }
  return out;
}

TEST(Llama3Tokenizer, LlamaCppVectors) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/llamacpp-vectors.inp");
  const auto inp = SplitInp(SharedDir() + "/tokenizers/llama3/llamacpp-vectors.inp");
  const auto out = ReadOut(SharedDir() + "/tokenizers/llama3/llamacpp-vectors.out");
  ASSERT_EQ(inp.size(), out.size());
  for (const char* src :
       {"tokenizers/llama3/tokenizer.model", "tokenizers/llama3/tokenizer.json"}) {
    const Tokenizer* t = Cached(src);
    ASSERT_NE(t, nullptr);
    size_t matched = 0;
    for (size_t i = 0; i < inp.size(); ++i) {
      std::vector<int32_t> ids;
      std::string err;
      ASSERT_TRUE(t->Encode(inp[i], false, true, &ids, &err)) << err;
      EXPECT_EQ(ids, out[i]) << src << ": " << testing::PrintToString(inp[i]);
      matched += ids == out[i];
    }
    std::printf("[ %s: %zu / %zu llama.cpp vectors match ]\n", src, matched, inp.size());
  }
}

TEST(Llama3Tokenizer, RoundTrip) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/vectors.json");
  const Tokenizer* t = Cached("tokenizers/llama3/tokenizer.model");
  ASSERT_NE(t, nullptr);
  for (const auto& v : Llama3Vectors()) {
    for (bool special : {true, false}) {
      std::vector<int32_t> ids;
      std::string err;
      ASSERT_TRUE(t->Encode(v.text, false, special, &ids, &err));
      EXPECT_EQ(t->Decode(ids), v.text);
    }
  }
  // Random valid UTF-8 (ASCII, Latin, CJK, emoji, NUL).
  std::mt19937 rng(7);
  const uint32_t pool[] = {0,    9,     10,     13,     32,      'a',    'Z',    '\'',   '1',
                           0xE9, 0x3B1, 0x4E2D, 0x2581, 0x1F600, 0x200B, 0xFEFF, 0x3000, 0x10FFFF};
  for (int n = 0; n < 200; ++n) {
    std::string s;
    const int len = static_cast<int>(rng() % 40);
    for (int i = 0; i < len; ++i) {
      const uint32_t cp = rng() % 3 ? 0x20 + rng() % 0x5F : pool[rng() % (sizeof(pool) / 4)];
      uni::Append(&s, cp);
    }
    std::vector<int32_t> ids;
    std::string err;
    ASSERT_TRUE(t->Encode(s, false, true, &ids, &err));
    EXPECT_EQ(t->Decode(ids), s);
  }
}

TEST(Llama3Tokenizer, EdgeInputs) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const Tokenizer* t = Cached("tokenizers/llama3/tokenizer.model");
  ASSERT_NE(t, nullptr);
  std::vector<int32_t> ids = {1, 2};
  std::string err;
  ASSERT_TRUE(t->Encode("", false, true, &ids, &err));
  EXPECT_TRUE(ids.empty());
  ASSERT_TRUE(t->Encode("", true, true, &ids, &err));
  EXPECT_EQ(ids, std::vector<int32_t>{128000});
  // NUL bytes are ordinary text.
  const std::string nul("a\0b\0\0", 5);
  ASSERT_TRUE(t->Encode(nul, false, true, &ids, &err));
  EXPECT_EQ(t->Decode(ids), nul);
  // Invalid UTF-8: a defined error.
  for (const char* bad : {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf", "ok\xf4\x90\x80\x80"}) {
    err.clear();
    EXPECT_FALSE(t->Encode(bad, false, true, &ids, &err));
    EXPECT_NE(err.find("UTF-8"), std::string::npos);
  }
  // 1 MB without spaces (one pre-token) and 1 MB of digits/punctuation.
  std::string big(1 << 20, 'a');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
  ASSERT_TRUE(t->Encode(big, false, true, &ids, &err));
  EXPECT_GT(ids.size(), big.size() / 16);
  EXPECT_EQ(t->Decode(ids), big);
  std::string mixed(1 << 20, '1');
  for (size_t i = 0; i < mixed.size(); i += 5) mixed[i] = '{';
  ASSERT_TRUE(t->Encode(mixed, false, true, &ids, &err));
  EXPECT_EQ(t->Decode(ids), mixed);
  // Unknown ids decode to "".
  EXPECT_EQ(t->Decode({-5, 1000000, 64}), "a");
}

TEST(Utf8, SanitizeMaximalSubparts) {
  // Unicode §3.9 table 3-8 example: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64
  const std::string in = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  EXPECT_EQ(uni::Sanitize(in),
            "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
            "b\xEF\xBF\xBD"
            "c\xEF\xBF\xBD\xEF\xBF\xBD"
            "d");
  EXPECT_EQ(uni::Sanitize("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(uni::Sanitize("\xE2\x82"), "\xEF\xBF\xBD");
  EXPECT_EQ(uni::Sanitize("ok \xE2\x82\xAC"), "ok \xE2\x82\xAC");
  EXPECT_EQ(uni::CompletePrefix("ab\xE2\x82"), 2u);
  EXPECT_EQ(uni::CompletePrefix("ab\xF0"), 2u);
  EXPECT_EQ(uni::CompletePrefix("ab\xFF"), 3u);
  EXPECT_EQ(uni::CompletePrefix("ab\xE2\x82\xAC"), 5u);
  EXPECT_EQ(uni::CompletePrefix("\xE2\x41"), 2u);
}

TEST(Utf8, Classes) {
  EXPECT_EQ(uni::ClassOf('a'), uni::kLetter);
  EXPECT_EQ(uni::ClassOf(0x4E2D), uni::kLetter);  // CJK (range entry in UnicodeData)
  EXPECT_EQ(uni::ClassOf(0xAC00), uni::kLetter);  // Hangul syllable range
  EXPECT_EQ(uni::ClassOf('7'), uni::kNumber);
  EXPECT_EQ(uni::ClassOf(0x2167), uni::kNumber);  // Roman numeral (Nl)
  EXPECT_EQ(uni::ClassOf(0xBD), uni::kNumber);    // ½ (No)
  EXPECT_EQ(uni::ClassOf(0x3000), uni::kSpace);
  EXPECT_EQ(uni::ClassOf(0x85), uni::kSpace);
  EXPECT_EQ(uni::ClassOf(0x200B), uni::kOther);  // ZWSP is not White_Space
  EXPECT_EQ(uni::ClassOf(0xFEFF), uni::kSpace);  // Oniguruma \s (HF), see gen script
  EXPECT_EQ(uni::ClassOf(0x1F600), uni::kOther);
  EXPECT_EQ(uni::ClassOf(0x110000), uni::kOther);
}

TEST(Llama3Tokenizer, DecodeReplacesInvalid) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const Tokenizer* t = Cached("tokenizers/llama3/tokenizer.model");
  ASSERT_NE(t, nullptr);
  // Byte tokens: bytes 0xE2 0x82 (truncated euro sign) then 'A'.
  std::vector<int32_t> e2, b82, a;
  std::string err;
  // Find the single-byte tokens by decoding all ids below 256.
  int32_t id_e2 = -1, id_82 = -1, id_a = -1;
  for (int32_t i = 0; i < 256; ++i) {
    const std::string b = t->TokenBytes(i);
    if (b == "\xE2") id_e2 = i;
    if (b == "\x82") id_82 = i;
    if (b == "A") id_a = i;
  }
  ASSERT_TRUE(id_e2 >= 0 && id_82 >= 0 && id_a >= 0);
  EXPECT_EQ(t->Decode({id_e2, id_82, id_a}),
            "\xEF\xBF\xBD"
            "A");
  EXPECT_EQ(t->Decode({id_82, id_82}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Llama3Tokenizer, StreamDecoder) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const Tokenizer* t = Cached("tokenizers/llama3/tokenizer.model");
  ASSERT_NE(t, nullptr);
  // Emoji and CJK split over byte-level tokens.
  const std::string text = "Hi 🦙👨‍👩‍👧 日本語テキスト €½ done";
  std::vector<int32_t> ids;
  std::string err;
  ASSERT_TRUE(t->Encode(text, false, false, &ids, &err));
  int partial_tokens = 0;
  for (int32_t id : ids) partial_tokens += !uni::IsValid(t->TokenBytes(id));
  EXPECT_GT(partial_tokens, 0) << "the text should contain tokens that split a character";
  StreamDecoder sd(*t);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = sd.Push(id);
    EXPECT_TRUE(uni::IsValid(piece)) << testing::PrintToString(piece);
    all += piece;
  }
  all += sd.Flush();
  EXPECT_EQ(all, text);
  // Invalid output: a dangling lead byte is held, then replaced.
  int32_t id_e2 = -1;
  for (int32_t i = 0; i < 256; ++i)
    if (t->TokenBytes(i) == "\xE2") id_e2 = i;
  sd.Reset();
  EXPECT_EQ(sd.Push(id_e2), "");
  EXPECT_EQ(sd.Push(ids[0]),
            "\xEF\xBF\xBD"
            "Hi");
  EXPECT_EQ(sd.Push(id_e2), "");
  EXPECT_EQ(sd.Flush(), "\xEF\xBF\xBD");
}

TEST(Llama3Tokenizer, ChatTemplate) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const Tokenizer* t = Cached("tokenizers/llama3/tokenizer.model");
  ASSERT_NE(t, nullptr);
  const std::vector<ChatMessage> msgs = {{"system", "You are helpful."},
                                         {"user", " Hi there \n"},
                                         {"assistant", "Hello!"},
                                         {"user", "Bye"}};
  EXPECT_EQ(t->ApplyChatTemplate(msgs, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are "
            "helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi "
            "there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(t->ApplyChatTemplate({{"user", "x"}}, false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
  std::vector<int32_t> ids;
  std::string err;
  ASSERT_TRUE(t->Encode(t->ApplyChatTemplate({{"user", "Hi"}}, true), false, true, &ids, &err));
  EXPECT_EQ(ids, (std::vector<int32_t>{128000, 128006, 882, 128007, 271, 13347, 128009, 128006,
                                       78191, 128007, 271}));
  EXPECT_EQ(Tokenizer::Bytes()->ApplyChatTemplate({{"user", "Hi"}}, true), "");
  EXPECT_EQ(Tokenizer::TrimWhitespace("\x1f\u3000 a b\t\n\u00a0"), "a b");
  EXPECT_EQ(Tokenizer::TrimWhitespace("\ufeffa\u200b"), "\ufeffa\u200b");
  EXPECT_EQ(Tokenizer::TrimWhitespace(" \n "), "");
}

// ------------------------------------------------------- serialization
void ExpectSameEncoding(const Tokenizer& a, const Tokenizer& b,
                        const std::vector<std::string>& in) {
  for (const auto& s : in) {
    for (bool special : {false, true}) {
      std::vector<int32_t> x, y;
      std::string err;
      ASSERT_EQ(a.Encode(s, true, special, &x, &err), b.Encode(s, true, special, &y, &err));
      EXPECT_EQ(x, y) << testing::PrintToString(s);
      EXPECT_EQ(a.Decode(x), b.Decode(y));
    }
  }
  EXPECT_EQ(a.vocab_size(), b.vocab_size());
  EXPECT_EQ(a.bos_id(), b.bos_id());
  EXPECT_EQ(a.eos_id(), b.eos_id());
  EXPECT_EQ(a.stop_ids(), b.stop_ids());
  EXPECT_EQ(a.chat_template(), b.chat_template());
}

const std::vector<std::string>& Corpus() {
  static const std::vector<std::string> c = {"",
                                             " ",
                                             "Hello world",
                                             " Hello  world!\n\n",
                                             "<s>x</s><|eot_id|>",
                                             "日本語 テキスト",
                                             "don't I'LL 3.14159 🦙\t\r\n end",
                                             std::string("nul\0byte", 8)};
  return c;
}

void CorruptionSweep(const std::vector<uint8_t>& blob, size_t step) {
  std::string err;
  // Truncations.
  for (size_t n = 0; n < blob.size(); n += step) {
    err.clear();
    EXPECT_EQ(Tokenizer::Deserialize(blob.data(), n, &err), nullptr) << n;
    EXPECT_FALSE(err.empty());
  }
  // Bit flips anywhere: the checksum or the validation rejects them.
  std::mt19937 rng(11);
  for (int k = 0; k < 64; ++k) {
    std::vector<uint8_t> b = blob;
    b[rng() % b.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    err.clear();
    EXPECT_EQ(Tokenizer::Deserialize(b.data(), b.size(), &err), nullptr);
    EXPECT_FALSE(err.empty());
  }
  EXPECT_EQ(Tokenizer::Deserialize(nullptr, 0, &err), nullptr);
}

// Corruption that keeps the checksum valid (re-computed), so that the
// structural validation itself is exercised: every result is either an
// error or a tokenizer that works (encode/decode/serialize without crashing).
void CorruptWithValidChecksum(const std::vector<uint8_t>& blob, int rounds, uint32_t seed) {
  if (blob.size() <= 24) return;  // header only (byte tokenizer): nothing to corrupt
  std::mt19937 rng(seed);
  int rejected = 0;
  for (int k = 0; k < rounds; ++k) {
    std::vector<uint8_t> b = blob;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      const size_t at = 24 + rng() % (b.size() - 24);
      if (rng() % 2) {
        b[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
      } else {
        b[at] = static_cast<uint8_t>(rng() % 3 == 0 ? 0xFF : rng());
      }
    }
    const uint64_t h = tok::Hash64(b.data() + 24, b.size() - 24, 0x4C544F4Bu);
    std::memcpy(b.data() + 16, &h, 8);
    std::string err;
    auto t = Tokenizer::Deserialize(b.data(), b.size(), &err);
    if (!t) {
      EXPECT_FALSE(err.empty());
      ++rejected;
      continue;
    }
    for (const auto& s : Corpus()) {
      std::vector<int32_t> ids;
      if (t->Encode(s, true, true, &ids, &err)) (void)t->Decode(ids);
    }
    (void)t->Serialize();
  }
  std::printf("[ %d / %d checksum-valid corruptions rejected, the rest still work ]\n", rejected,
              rounds);
}

TEST(TokenizerBlob, RoundTripLlama3) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const Tokenizer* t = Cached("tokenizers/llama3/tokenizer.model");
  ASSERT_NE(t, nullptr);
  const auto blob = t->Serialize();
  std::string err;
  auto u = Tokenizer::Deserialize(blob.data(), blob.size(), &err);
  ASSERT_NE(u, nullptr) << err;
  ExpectSameEncoding(*t, *u, Corpus());
  for (const auto& v : Llama3Vectors()) {
    std::vector<int32_t> ids;
    ASSERT_TRUE(u->Encode(v.text, false, true, &ids, &err));
    EXPECT_EQ(ids, v.ids);
  }
  EXPECT_TRUE(u->Serialize() == blob);
}

TEST(TokenizerBlob, CorruptLlama3) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const Tokenizer* t = Cached("tokenizers/llama3/tokenizer.model");
  ASSERT_NE(t, nullptr);
  CorruptionSweep(t->Serialize(), 1 << 20);
  CorruptWithValidChecksum(t->Serialize(), 8, 21);
}

TEST(TokenizerBlob, RoundTripAndCorruptSmall) {
  // Bytes tokenizer and a small scored vocabulary built in the test.
  GgufVocab v;
  v.model = "llama";
  v.tokens = {"<unk>",
              "<s>",
              "</s>",
              "\xE2\x96\x81",
              "a",
              "b",
              "\xE2\x96\x81"
              "a",
              "ab",
              "<0x41>"};
  v.scores = {0, 0, 0, -1, -2, -3, -0.5f, -0.25f, 0};
  v.types = {2, 3, 3, 1, 1, 1, 1, 1, 6};
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  std::string err;
  auto scored = TokenizerFromGguf(v, &err);
  ASSERT_NE(scored, nullptr) << err;
  std::vector<int32_t> ids;
  ASSERT_TRUE(scored->Encode("ab aA", true, true, &ids, &err));
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 3, 7, 6, 8}));  // <s> ▁ ab ▁a <0x41>
  EXPECT_EQ(scored->Decode(ids), "ab aA");
  auto bytes = Tokenizer::Bytes();
  for (const Tokenizer* t : {scored.get(), bytes.get()}) {
    const auto blob = t->Serialize();
    auto u = Tokenizer::Deserialize(blob.data(), blob.size(), &err);
    ASSERT_NE(u, nullptr) << err;
    ExpectSameEncoding(*t, *u, Corpus());
    CorruptionSweep(blob, 1);
    CorruptWithValidChecksum(blob, 300, 5);
  }
}

TEST(BytesTokenizer, Basics) {
  auto t = Tokenizer::Bytes();
  EXPECT_EQ(t->vocab_size(), 258);
  EXPECT_EQ(t->bos_id(), 256);
  EXPECT_EQ(t->eos_id(), 257);
  std::vector<int32_t> ids;
  std::string err;
  ASSERT_TRUE(t->Encode("h\xC3\xA9", true, true, &ids, &err));
  EXPECT_EQ(ids, (std::vector<int32_t>{256, 'h', 0xC3, 0xA9}));
  EXPECT_EQ(t->Decode(ids), "h\xC3\xA9");
  EXPECT_EQ(t->Decode({0xC3, 257}), "\xEF\xBF\xBD");
}

// --------------------------------------------------------- SentencePiece
std::vector<std::string> SpCorpus() {
  std::vector<std::string> c = SplitInp(SharedDir() + "/tokenizers/llama2/llamacpp-vectors.inp");
  std::mt19937 rng(3);
  const uint32_t pool[] = {' ',  ' ',    'a',     'e',    't',    'T',   '\n',   '.',    '0',
                           0xE9, 0x4E2D, 0x1F600, 0x2581, 0x3042, 0x439, 0x20AC, 0xFFFD, 0x10FFFF};
  for (int n = 0; n < 300; ++n) {
    std::string s;
    const int len = static_cast<int>(rng() % 24);
    for (int i = 0; i < len; ++i)
      uni::Append(&s, rng() % 2 ? 0x20 + rng() % 0x5F : pool[rng() % (sizeof(pool) / 4)]);
    c.push_back(s);
  }
  return c;
}

// libsentencepiece over Llama 2's tokenizer.model: the independent oracle
// the scored BPE (what lamina imports a .model as) is compared with. Tests
// that need it skip in builds without it (LAMINA_WITH_SENTENCEPIECE=OFF).
class SpOracle {
 public:
#ifdef LAMINA_WITH_SENTENCEPIECE
  static const SpOracle* Llama2() {
    static const SpOracle* o = [] {
      auto* x = new SpOracle;
      const auto st = x->sp_.Load(SharedDir() + "/tokenizers/llama2/tokenizer.model");
      EXPECT_TRUE(st.ok()) << st.ToString();
      return x;
    }();
    return o;
  }
  std::vector<int32_t> Encode(const std::string& s, bool bos) const {
    std::vector<int> ids;
    EXPECT_TRUE(sp_.Encode(s, &ids).ok());
    std::vector<int32_t> out;
    if (bos) out.push_back(sp_.bos_id());
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }
  std::string Decode(const std::vector<int32_t>& ids) const {
    std::string out;
    EXPECT_TRUE(sp_.Decode(std::vector<int>(ids.begin(), ids.end()), &out).ok());
    return out;
  }
  /// The vocabulary as GgufVocab states it (types: 1 normal, 2 unknown, 3
  /// control, 5 unused, 6 byte).
  GgufVocab Vocab() const {
    GgufVocab v;
    for (int i = 0; i < sp_.GetPieceSize(); ++i) {
      v.tokens.push_back(sp_.IdToPiece(i));
      v.scores.push_back(sp_.GetScore(i));
      v.types.push_back(sp_.IsUnknown(i)   ? 2
                        : sp_.IsControl(i) ? 3
                        : sp_.IsUnused(i)  ? 5
                        : sp_.IsByte(i)    ? 6
                                           : 1);
    }
    v.bos_id = sp_.bos_id();
    v.eos_id = sp_.eos_id();
    v.unk_id = sp_.unk_id();
    return v;
  }

 private:
  sentencepiece::SentencePieceProcessor sp_;
#else
  static const SpOracle* Llama2() { return nullptr; }
  std::vector<int32_t> Encode(const std::string&, bool) const { return {}; }
  std::string Decode(const std::vector<int32_t>&) const { return ""; }
  GgufVocab Vocab() const { return {}; }
#endif
};

#define LAMINA_REQUIRE_SP_ORACLE()                                                       \
  do {                                                                                   \
    LAMINA_REQUIRE_SHARED("tokenizers/llama2/tokenizer.model");                          \
    if (!SpOracle::Llama2())                                                             \
      GTEST_SKIP() << "built without libsentencepiece (LAMINA_WITH_SENTENCEPIECE=OFF): " \
                      "no oracle to compare with";                                       \
  } while (0)

TEST(SentencePiece, LlamaCppVectors) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama2/tokenizer.model");
  const Tokenizer* t = Cached("tokenizers/llama2/tokenizer.model");
  ASSERT_NE(t, nullptr);
  const auto inp = SplitInp(SharedDir() + "/tokenizers/llama2/llamacpp-vectors.inp");
  const auto out = ReadOut(SharedDir() + "/tokenizers/llama2/llamacpp-vectors.out");
  ASSERT_EQ(inp.size(), out.size());
  size_t matched = 0;
  for (size_t i = 0; i < inp.size(); ++i) {
    std::vector<int32_t> ids;
    std::string err;
    ASSERT_TRUE(t->Encode(inp[i], false, false, &ids, &err)) << err;
    EXPECT_EQ(ids, out[i]) << testing::PrintToString(inp[i]);
    matched += ids == out[i];
    EXPECT_EQ(t->Decode(ids), inp[i]);  // the dummy-prefix space is dropped again
  }
  std::printf("[ llama2 tokenizer.model: %zu / %zu llama.cpp vectors match ]\n", matched,
              inp.size());
}

// The imported .model (scored BPE) and libsentencepiece give identical ids
// and text; its blob round-trips.
TEST(SentencePiece, ScoredBpeMatchesLibrary) {
  LAMINA_REQUIRE_SP_ORACLE();
  const SpOracle& lib = *SpOracle::Llama2();
  const Tokenizer* t = Cached("tokenizers/llama2/tokenizer.model");
  ASSERT_NE(t, nullptr);
  std::string err;
  size_t n = 0;
  for (const auto& s : SpCorpus()) {
    for (bool bos : {false, true}) {
      std::vector<int32_t> b;
      const std::vector<int32_t> a = lib.Encode(s, bos);
      ASSERT_TRUE(t->Encode(s, bos, false, &b, &err));
      EXPECT_EQ(a, b) << testing::PrintToString(s);
      EXPECT_EQ(lib.Decode(a), t->Decode(b));
      ++n;
    }
  }
  std::printf("[ scored BPE == libsentencepiece on %zu encodings ]\n", n);
  // The same vocabulary through the GGUF path encodes the same.
  GgufVocab v;
  ASSERT_TRUE(t->ExportVocab(&v));
  EXPECT_EQ(v.tokens.size(), 32000u);
  auto g = TokenizerFromGguf(v, &err);
  ASSERT_NE(g, nullptr) << err;
  ExpectSameEncoding(*t, *g, SpCorpus());
  const auto blob = t->Serialize();
  auto u = Tokenizer::Deserialize(blob.data(), blob.size(), &err);
  ASSERT_NE(u, nullptr) << err;
  ExpectSameEncoding(*t, *u, Corpus());
}

// The protobuf reader of tools/import reads what libsentencepiece reads.
TEST(SentencePiece, ProtoReaderMatchesLibrary) {
  LAMINA_REQUIRE_SP_ORACLE();
  const Tokenizer* t = Cached("tokenizers/llama2/tokenizer.model");
  ASSERT_NE(t, nullptr);
  const GgufVocab a = SpOracle::Llama2()->Vocab();
  GgufVocab b;
  ASSERT_TRUE(t->ExportVocab(&b));
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.scores, b.scores);
  EXPECT_EQ(a.types, b.types);
  EXPECT_EQ(std::make_tuple(a.bos_id, a.eos_id, a.unk_id),
            std::make_tuple(b.bos_id, b.eos_id, b.unk_id));
}

// Truncated protobufs: an error, never a crash.
TEST(SentencePiece, TruncatedProto) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama2/tokenizer.model");
  const std::string proto = ReadAll(SharedDir() + "/tokenizers/llama2/tokenizer.model");
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{100}, proto.size() / 2}) {
    std::string err;
    auto t = tok::LoadSentencePieceProto("m", std::string_view(proto).substr(0, n), &err);
    EXPECT_EQ(t, nullptr) << n;
    EXPECT_FALSE(err.empty()) << n;
  }
}

// A model whose settings the scored BPE does not implement is refused by
// name (a later occurrence of a protobuf message merges into the first).
TEST(SentencePiece, MalformedUnsupportedSettings) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama2/tokenizer.model");
  const std::string proto = ReadAll(SharedDir() + "/tokenizers/llama2/tokenizer.model");
  std::string err;
  ASSERT_NE(tok::LoadSentencePieceProto("m", proto, &err), nullptr) << err;
  const struct {
    std::string tail;
    const char* want;
  } cases[] = {
      {std::string("\x12\x02\x18\x01", 4), "model_type 1"},                   // UNIGRAM
      {std::string("\x1A\x02\x20\x01", 4), "remove_extra_whitespaces true"},  // normalizer
      {std::string("\x1A\x02\x18\x00", 4), "add_dummy_prefix false"},
      {std::string("\x1A\x03\x12\x01\x01", 5), "normalizer"},  // a precompiled_charsmap
      {std::string("\x12\x02\xC0\x01", 4), "malformed"},       // truncated field 24 varint
  };
  for (const auto& c : cases) {
    err.clear();
    EXPECT_EQ(tok::LoadSentencePieceProto("m", proto + c.tail, &err), nullptr) << c.want;
    EXPECT_NE(err.find(c.want), std::string::npos) << err;
  }
}

// ------------------------------------------- kind 3: a .model in the blob
// Old .lamina files (lamina-convert built with libsentencepiece) embed the
// .model protobuf itself (kind 3); the runtime reads it by hand into the
// same scored BPE an imported .model gives (kind 2).

/// A blob of kind 3 as lamina-convert wrote it: u32 size + the protobuf.
std::vector<uint8_t> Kind3Blob(std::string_view proto) {
  tok::BlobWriter w;
  w.Str(proto);
  return w.Finish(tok::Kind::kSentencePiece);
}

// Protobuf wire format, for ModelProtos built in the tests.
std::string PbVarint(uint64_t v) {
  std::string s;
  for (; v >= 0x80; v >>= 7) s += static_cast<char>(0x80 | (v & 0x7F));
  return s + static_cast<char>(v);
}
std::string PbBytes(uint32_t field, std::string_view b) {
  return PbVarint(field << 3 | 2) + PbVarint(b.size()) + std::string(b);
}
std::string PbVarintField(uint32_t field, uint64_t v) { return PbVarint(field << 3) + PbVarint(v); }
/// ModelProto.pieces entry: piece (1), score (2, fixed32), type (3).
std::string PbPiece(std::string_view piece, float score, int type) {
  std::string m = PbBytes(1, piece) + PbVarint(2 << 3 | 5);
  char f[4];
  std::memcpy(f, &score, 4);
  m.append(f, 4);
  return PbBytes(1, m + PbVarintField(3, static_cast<uint64_t>(type)));
}

/// The small vocabulary of TokenizerBlob.RoundTripAndCorruptSmall (ids
/// 0..8) and the other 255 byte pieces (ids 9..263) as a Llama-style .model: BPE with byte fallback
/// (trainer model_type 2, byte_fallback), identity normalizer without whitespace collapsing.
std::string SmallSpProto() {
  std::string p = PbPiece("<unk>", 0, 2) + PbPiece("<s>", 0, 3) + PbPiece("</s>", 0, 3) +
                  PbPiece("\xE2\x96\x81", -1, 1) + PbPiece("a", -2, 1) + PbPiece("b", -3, 1) +
                  PbPiece(
                      "\xE2\x96\x81"
                      "a",
                      -0.5f, 1) +
                  PbPiece("ab", -0.25f, 1) + PbPiece("<0x41>", 0, 6);
  for (int b = 0; b < 256; ++b) {  // byte_fallback: all 256 byte pieces
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (b != 0x41) p += PbPiece(name, 0, 6);
  }
  p += PbBytes(2, PbVarintField(3, 2) + PbVarintField(35, 1));  // BPE, byte_fallback
  p += PbBytes(3, PbBytes(1, "identity") + PbVarintField(4, 0));
  return p;
}

TEST(TokenizerBlob, SentencePieceKind3Small) {
  const std::string proto = SmallSpProto();
  const std::vector<uint8_t> blob = Kind3Blob(proto);
  std::string err;
  auto t = Tokenizer::Deserialize(blob.data(), blob.size(), &err);
  ASSERT_NE(t, nullptr) << err;
  std::vector<int32_t> ids;
  ASSERT_TRUE(t->Encode("ab aA", true, true, &ids, &err)) << err;
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 3, 7, 6, 8}));  // <s> ▁ ab ▁a <0x41>
  EXPECT_EQ(t->Decode(ids), "ab aA");
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  // The importer reads the same bytes (one reader) into the same tokenizer.
  auto imported = tok::LoadSentencePieceProto("small.model", proto, &err);
  ASSERT_NE(imported, nullptr) << err;
  ExpectSameEncoding(*imported, *t, Corpus());
  // Serialize writes the scored vocabulary (kind 2), which loads the same.
  const std::vector<uint8_t> k2 = t->Serialize();
  uint32_t kind;
  std::memcpy(&kind, k2.data() + 8, 4);
  EXPECT_EQ(kind, static_cast<uint32_t>(tok::Kind::kScored));
  EXPECT_TRUE(k2 == imported->Serialize());
  auto u = Tokenizer::Deserialize(k2.data(), k2.size(), &err);
  ASSERT_NE(u, nullptr) << err;
  ExpectSameEncoding(*t, *u, Corpus());
}

// Framing-valid kind-3 blobs whose protobuf is truncated, malformed or not
// implemented: a named error, never a crash.
TEST(TokenizerBlob, CorruptSentencePieceKind3) {
  const std::string proto = SmallSpProto();
  std::string err;
  for (size_t n = 0; n < proto.size(); ++n) {  // every strict prefix
    const std::vector<uint8_t> b = Kind3Blob(std::string_view(proto).substr(0, n));
    err.clear();
    EXPECT_EQ(Tokenizer::Deserialize(b.data(), b.size(), &err), nullptr) << n;
    EXPECT_NE(err.find("tokenizer blob: "), std::string::npos) << err;
  }
  const struct {
    std::string proto;
    const char* want;
  } cases[] = {
      {"", "no pieces"},
      {std::string("\x0A\x05\x0A\x01\x61\x18\x01", 7), "model_type 1"},  // UNIGRAM default
      {proto + PbBytes(3, PbVarintField(3, 0)), "add_dummy_prefix false"},
      {proto + PbBytes(5, PbBytes(2, "x")), "denormalizer"},
      {proto + PbPiece("c", 0, 7), "malformed SentencePiece entry 264"},  // type out of range
      {proto + std::string("\x0A\x05\x0A", 3), "malformed protobuf"},     // length past the end
      {proto + std::string("\x0F", 1), "malformed protobuf"},             // wire type 7
      {proto + PbPiece("c", std::nanf(""), 1), "token 264: score is NaN"},
  };
  for (const auto& c : cases) {
    const std::vector<uint8_t> b = Kind3Blob(c.proto);
    err.clear();
    EXPECT_EQ(Tokenizer::Deserialize(b.data(), b.size(), &err), nullptr) << c.want;
    EXPECT_NE(err.find(c.want), std::string::npos) << err;
  }
  // The u32 proto size larger than the payload.
  std::vector<uint8_t> b = Kind3Blob(proto);
  std::vector<uint8_t> payload(b.begin() + 24, b.end());
  const uint32_t big = static_cast<uint32_t>(proto.size() + 1);
  std::memcpy(payload.data(), &big, 4);
  tok::BlobWriter w;
  w.Raw(payload.data(), payload.size());
  b = w.Finish(tok::Kind::kSentencePiece);
  EXPECT_EQ(Tokenizer::Deserialize(b.data(), b.size(), &err), nullptr);
  EXPECT_NE(err.find("count out of range at proto size"), std::string::npos) << err;
  // Truncated files, bit flips, checksum-valid corruption of the protobuf.
  CorruptionSweep(Kind3Blob(proto), 1);
  CorruptWithValidChecksum(Kind3Blob(proto), 2000, 17);
}

// Llama 2's tokenizer.model stored as kind 3 encodes the llama.cpp vectors
// and a corpus exactly as the imported .model (kind 2) does.
TEST(TokenizerBlob, SentencePieceKind3Llama2) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama2/tokenizer.model");
  const std::string proto = ReadAll(SharedDir() + "/tokenizers/llama2/tokenizer.model");
  const Tokenizer* k2 = Cached("tokenizers/llama2/tokenizer.model");
  ASSERT_NE(k2, nullptr);
  const std::vector<uint8_t> blob = Kind3Blob(proto);
  std::string err;
  auto t = Tokenizer::Deserialize(blob.data(), blob.size(), &err);
  ASSERT_NE(t, nullptr) << err;
  const auto inp = SplitInp(SharedDir() + "/tokenizers/llama2/llamacpp-vectors.inp");
  const auto out = ReadOut(SharedDir() + "/tokenizers/llama2/llamacpp-vectors.out");
  ASSERT_EQ(inp.size(), out.size());
  ASSERT_FALSE(inp.empty());
  for (size_t i = 0; i < inp.size(); ++i) {
    std::vector<int32_t> ids;
    ASSERT_TRUE(t->Encode(inp[i], false, false, &ids, &err)) << err;
    EXPECT_EQ(ids, out[i]) << testing::PrintToString(inp[i]);
    EXPECT_EQ(t->Decode(ids), inp[i]);
  }
  ExpectSameEncoding(*k2, *t, SpCorpus());
  // Same pieces, scores, types and ids: re-serialized as the same kind 2 blob.
  EXPECT_TRUE(t->Serialize() == k2->Serialize());
  // Truncated protobufs inside a valid frame.
  for (size_t n : {size_t{1}, size_t{7}, size_t{100}, proto.size() / 2, proto.size() - 1}) {
    const std::vector<uint8_t> c = Kind3Blob(std::string_view(proto).substr(0, n));
    err.clear();
    EXPECT_EQ(Tokenizer::Deserialize(c.data(), c.size(), &err), nullptr) << n;
    EXPECT_FALSE(err.empty()) << n;
  }
  CorruptionSweep(blob, 1 << 15);
}

TEST(SentencePiece, StreamDropsSpaceAfterBos) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama2/tokenizer.model");
  const Tokenizer* t = Cached("tokenizers/llama2/tokenizer.model");
  ASSERT_NE(t, nullptr);
  std::vector<int32_t> ids;
  std::string err;
  ASSERT_TRUE(t->Encode("Hello world 🦙", true, false, &ids, &err));
  EXPECT_EQ(t->Decode(ids), "Hello world 🦙");
  // libsentencepiece 0.1.97 DecodeIds: the first non-control piece loses its
  // leading space, later ones (even after a mid-sequence BOS) keep it.
  EXPECT_EQ(t->Decode({29871, 15043, 3186}), " Hello world");
  EXPECT_EQ(t->Decode({1, 29871, 15043}), " Hello");
  EXPECT_EQ(t->Decode({15043, 1, 15043}), "Hello Hello");
  EXPECT_EQ(t->Decode({1, 13, 15043}), "\n Hello");
  EXPECT_EQ(t->Decode({0, 15043}), " \xE2\x81\x87  Hello");
  StreamDecoder sd(*t);
  std::string all;
  for (int32_t id : ids) {
    const std::string p = sd.Push(id);
    EXPECT_TRUE(uni::IsValid(p));
    all += p;
  }
  EXPECT_EQ(all + sd.Flush(), "Hello world 🦙");
}

// llama2.c run.c encode, transcribed (O(n^2), as in run.c) as the reference.
std::vector<int32_t> RunCEncode(const std::vector<std::string>& vocab,
                                const std::vector<float>& scores, const std::string& text) {
  auto lookup = [&](const std::string& s) {
    for (size_t i = 0; i < vocab.size(); ++i)
      if (vocab[i] == s) return static_cast<int32_t>(i);
    return -1;
  };
  std::vector<int32_t> tokens;
  if (!text.empty()) tokens.push_back(lookup(" "));
  for (size_t i = 0; i < text.size();) {
    size_t j = i + 1;
    while (j < text.size() && (static_cast<unsigned char>(text[j]) & 0xC0) == 0x80 && j - i < 4)
      ++j;
    const int32_t id = lookup(text.substr(i, j - i));
    if (id != -1) {
      tokens.push_back(id);
    } else {
      for (size_t k = i; k < j; ++k) tokens.push_back(static_cast<unsigned char>(text[k]) + 3);
    }
    i = j;
  }
  while (true) {
    float best = -1e10f;
    int32_t best_id = -1, best_idx = -1;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      const int32_t id = lookup(vocab[tokens[i]] + vocab[tokens[i + 1]]);
      if (id != -1 && scores[id] > best) {
        best = scores[id];
        best_id = id;
        best_idx = static_cast<int32_t>(i);
      }
    }
    if (best_idx == -1) break;
    tokens[best_idx] = best_id;
    tokens.erase(tokens.begin() + best_idx + 1);
  }
  return tokens;
}

TEST(Llama2cTokenizer, MatchesRunC) {
  LAMINA_REQUIRE_SHARED("models/stories260K/tok512.bin");
  const std::string path = SharedDir() + "/models/stories260K/tok512.bin";
  std::string err;
  auto t = TokenizerFromFile(path, &err);
  ASSERT_NE(t, nullptr) << err;
  EXPECT_EQ(t->vocab_size(), 512);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  // Independent read of the file for the reference.
  const std::string d = ReadAll(path);
  std::vector<std::string> vocab;
  std::vector<float> scores;
  for (size_t o = 4; o + 8 <= d.size();) {
    float s;
    int32_t len;
    std::memcpy(&s, d.data() + o, 4);
    std::memcpy(&len, d.data() + o + 4, 4);
    vocab.push_back(d.substr(o + 8, len));
    scores.push_back(s);
    o += 8 + len;
  }
  ASSERT_EQ(vocab.size(), 512u);
  std::vector<std::string> corpus = {"Once upon a time, there was a little girl named Lily.",
                                     "",
                                     "a",
                                     " ",
                                     "  two  spaces ",
                                     "One day, Lily's mom said \"hi\"!\n",
                                     "Ünïcödé 日本 🦙"};
  for (const auto& s : SpCorpus()) corpus.push_back(s);
  for (const auto& s : corpus) {
    std::vector<int32_t> ids;
    ASSERT_TRUE(t->Encode(s, false, true, &ids, &err));
    EXPECT_EQ(ids, RunCEncode(vocab, scores, s)) << testing::PrintToString(s);
  }
  std::vector<int32_t> ids;
  ASSERT_TRUE(t->Encode("Once upon a time", true, false, &ids, &err));
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(t->Decode(ids), "Once upon a time");  // run.c drops the space after BOS
  const auto blob = t->Serialize();
  auto u = Tokenizer::Deserialize(blob.data(), blob.size(), &err);
  ASSERT_NE(u, nullptr) << err;
  ExpectSameEncoding(*t, *u, corpus);
}

// The GGUF "llama" vocabulary of stories260K (U+2581 pieces, token types:
// SentencePiece rules) encodes story text as tok512.bin does under run.c.
TEST(GgufLlamaVocab, Stories260KMatchesTok512) {
  LAMINA_REQUIRE_SHARED("models/stories260K/stories260K.gguf");
  gguf::File f;
  std::string err;
  ASSERT_TRUE(f.Open(SharedDir() + "/models/stories260K/stories260K.gguf", &err)) << err;
  GgufVocab v;
  v.model = f.Find("tokenizer.ggml.model")->s;
  for (const auto& t : f.Find("tokenizer.ggml.tokens")->arr) v.tokens.push_back(t.s);
  for (const auto& x : f.Find("tokenizer.ggml.scores")->arr)
    v.scores.push_back(static_cast<float>(x.f));
  for (const auto& x : f.Find("tokenizer.ggml.token_type")->arr)
    v.types.push_back(static_cast<int32_t>(x.i));
  v.bos_id = static_cast<int32_t>(f.Find("tokenizer.ggml.bos_token_id")->u);
  v.eos_id = static_cast<int32_t>(f.Find("tokenizer.ggml.eos_token_id")->u);
  ASSERT_EQ(v.model, "llama");
  auto g = TokenizerFromGguf(v, &err);
  ASSERT_NE(g, nullptr) << err;
  auto b = TokenizerFromFile(SharedDir() + "/models/stories260K/tok512.bin", &err);
  ASSERT_NE(b, nullptr) << err;
  EXPECT_EQ(g->vocab_size(), 512);
  EXPECT_EQ(g->bos_id(), 1);
  EXPECT_EQ(g->eos_id(), 2);
  for (const char* s :
       {"Once upon a time, there was a little girl named Lily.",
        "One day, Lily's mom said \"hi\"!\nThe end.", "  two  spaces ", "",
        "Tim and Sue went to the park. They saw a big, red ball!", "日本 🦙 ünïcödé"}) {
    std::vector<int32_t> x, y;
    ASSERT_TRUE(g->Encode(s, true, false, &x, &err));
    ASSERT_TRUE(b->Encode(s, true, false, &y, &err));
    EXPECT_EQ(x, y) << s;
    EXPECT_EQ(g->Decode(x), s);
  }
}

// ------------------------------------------ SentencePiece-style tokenizer.json
// (tokenizer/hf_spm.cpp: Llama 2 / Mistral / TinyLlama tokenizer.json.)

std::string WriteTokJson(const std::string& name, const std::string& text) {
  const std::string dir = test::TestDataDir("hf_spm_" + name);
  const std::string path = dir + "/tokenizer.json";
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::unique_ptr<Tokenizer> LoadTokJson(const std::string& name, const std::string& text,
                                       std::string* err) {
  return TokenizerFromFile(WriteTokJson(name, text), err);
}

std::string Q(std::string_view s) {
  std::string o;
  json::AppendQuoted(&o, s);
  return o;
}

// A SentencePiece-style tokenizer.json as Hugging Face's LlamaConverter writes
// it (legacy normalizer, byte fallback, fused unk), or with a Metaspace
// pre-tokenizer when `metaspace` is a JSON object body.
std::string SpmJson(const std::vector<std::string>& vocab,
                    const std::vector<std::pair<std::string, std::string>>& merges,
                    const std::string& added = "", const std::string& metaspace = "",
                    bool fuse_unk = true) {
  std::string j = "{\"version\":\"1.0\",\"added_tokens\":[";
  j += added.empty() ? "{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
                       "{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
                       "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false}"
                     : added;
  j += "],";
  if (metaspace.empty()) {
    j += "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\","
         "\"prepend\":\"\u2581\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
         "\"content\":\"\u2581\"}]},\"pre_tokenizer\":null,";
    j += "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":"
         "{\"String\":\"\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":"
         "\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},";
  } else {
    j += "\"normalizer\":null,\"pre_tokenizer\":" + metaspace + ",";
    j += "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[" + metaspace +
         ",{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},";
  }
  j += "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"
       "{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}]},";
  j += "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\","
       "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":";
  j += fuse_unk ? "true" : "false";
  j += ",\"byte_fallback\":true,\"vocab\":{";
  for (size_t i = 0; i < vocab.size(); ++i)
    j += (i ? "," : "") + Q(vocab[i]) + ":" + std::to_string(i);
  j += "},\"merges\":[";
  for (size_t i = 0; i < merges.size(); ++i)
    j += (i ? "," : "") + Q(merges[i].first + " " + merges[i].second);
  j += "]}}";
  return j;
}

std::vector<int32_t> Enc(const Tokenizer& t, std::string_view s, bool special = true) {
  std::vector<int32_t> ids;
  std::string err;
  EXPECT_TRUE(t.Encode(s, false, special, &ids, &err)) << err;
  return ids;
}
using Ids = std::vector<int32_t>;

// Every string of ../shared/tokenizers/mistral/vectors.json gets Hugging
// Face's ids from the tokenizer.json (no BOS, special tokens parsed), and
// decodes back to itself (special tokens kept as text).
TEST(HfSpmTokenizer, MistralVectors) {
  LAMINA_REQUIRE_SHARED("tokenizers/mistral/vectors.json");
  const Tokenizer* t = Cached("tokenizers/mistral/tokenizer.json");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 32000);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_EQ(t->chat_template(), "");
  const auto vec = MistralVectors();
  ASSERT_EQ(vec.size(), 308u);
  size_t matched = 0, round = 0;
  for (const auto& v : vec) {
    const Ids ids = Enc(*t, v.text);
    if (ids == v.ids) {
      ++matched;
    } else {
      ADD_FAILURE() << "mismatch for " << testing::PrintToString(v.text) << "\n got  "
                    << IdsStr(ids) << "\n want " << IdsStr(v.ids);
    }
    const Ids plain = Enc(*t, v.text, /*special=*/false);
    if (t->Decode(plain) == v.text) {
      ++round;
    } else {
      ADD_FAILURE() << "decode(encode(x)) != x for " << testing::PrintToString(v.text);
    }
  }
  EXPECT_EQ(matched, vec.size());
  EXPECT_EQ(round, vec.size());
  std::printf("[ mistral tokenizer.json: %zu / %zu vectors match, %zu round trips ]\n", matched,
              vec.size(), round);
  // Streaming decode after BOS gives the same text.
  const Ids ids = Enc(*t, "Hello  world, \xC3\xA9t\xC3\xA9 \xF0\x9F\xA6\x99!");
  StreamDecoder sd(*t);
  std::string s = sd.Push(t->bos_id());
  for (int32_t id : ids) s += sd.Push(id);
  s += sd.Flush();
  EXPECT_EQ(s, "Hello  world, \xC3\xA9t\xC3\xA9 \xF0\x9F\xA6\x99!");
}

TEST(HfSpmTokenizer, CorruptBlobMistral) {
  LAMINA_REQUIRE_SHARED("tokenizers/mistral/tokenizer.json");
  const Tokenizer* t = Cached("tokenizers/mistral/tokenizer.json");
  ASSERT_NE(t, nullptr);
  const auto blob = t->Serialize();
  std::string err;
  auto u = Tokenizer::Deserialize(blob.data(), blob.size(), &err);
  ASSERT_NE(u, nullptr) << err;
  EXPECT_TRUE(u->Serialize() == blob);
  ExpectSameEncoding(*t, *u, Corpus());
  for (const auto& v : MistralVectors()) EXPECT_EQ(Enc(*u, v.text), v.ids);
  CorruptionSweep(blob, 1 << 16);
  CorruptWithValidChecksum(blob, 8, 21);
}

// Hugging Face's LlamaConverter applied to Llama 2's tokenizer.model (vocab =
// the pieces, merges = every split of a piece into two pieces, ordered by
// score, then by the ids of the halves), encoded with tokenizers' algorithm,
// gives exactly libsentencepiece's ids: an independent check of the merge
// order, byte fallback and the normalizer.
TEST(HfSpmTokenizer, Llama2JsonMatchesLibSentencePiece) {
  LAMINA_REQUIRE_SP_ORACLE();
  const SpOracle& lib = *SpOracle::Llama2();
  const GgufVocab v = lib.Vocab();
  std::map<std::string, int32_t> id;
  for (size_t i = 0; i < v.tokens.size(); ++i) id[v.tokens[i]] = static_cast<int32_t>(i);
  struct M {
    float score;
    int32_t piece, l, r;
  };
  std::vector<M> ms;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const std::string& p = v.tokens[i];
    for (size_t k = 1; k < p.size(); ++k) {
      if ((static_cast<unsigned char>(p[k]) & 0xC0) == 0x80) continue;  // code point boundary
      const auto a = id.find(p.substr(0, k)), b = id.find(p.substr(k));
      if (a != id.end() && b != id.end())
        ms.push_back(M{v.scores[i], static_cast<int32_t>(i), a->second, b->second});
    }
  }
  std::stable_sort(ms.begin(), ms.end(), [](const M& x, const M& y) {
    if (x.score != y.score) return x.score > y.score;
    if (x.piece != y.piece) return x.piece < y.piece;
    return std::make_pair(x.l, x.r) < std::make_pair(y.l, y.r);
  });
  std::vector<std::pair<std::string, std::string>> merges;
  for (const M& m : ms) merges.emplace_back(v.tokens[m.l], v.tokens[m.r]);
  std::string err;
  auto hf = LoadTokJson("llama2", SpmJson(v.tokens, merges), &err);
  ASSERT_NE(hf, nullptr) << err;
  size_t n = 0;
  for (const auto& s : SpCorpus()) {
    std::vector<int32_t> b;
    const std::vector<int32_t> a = lib.Encode(s, true);
    ASSERT_TRUE(hf->Encode(s, true, false, &b, &err));
    EXPECT_EQ(a, b) << testing::PrintToString(s);
    EXPECT_EQ(lib.Decode(a), hf->Decode(b)) << testing::PrintToString(s);
    ++n;
  }
  std::printf("[ HF BPE over Llama 2's tokenizer.json == libsentencepiece on %zu strings ]\n", n);
}

// Cases built from the definition of tokenizers' BPE (model.rs merge_word,
// word.rs merge_all).
TEST(HfSpmTokenizer, MergeOrderByteFallbackUnk) {
  const std::string M = "\u2581";
  //                               0        1      2       3         4         5  6    7    8
  const std::vector<std::string> voc = {"<unk>", "<s>", "</s>", "<0xC3>", "<0xA9>", M, "a", "b",
                                        "c",
                                        // 9   10    11     12       13
                                        "ab", "bc", "abc", M + "a", M + "ab"};
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"a", "b"}, {"b", "c"}, {M, "a"}, {"ab", "c"}, {M + "a", "b"}};
  std::string err;
  auto t = LoadTokJson("algo", SpmJson(voc, merges), &err);
  ASSERT_NE(t, nullptr) << err;
  // ▁ a b c: (a,b) rank 0 first; the queued (▁,a) is then stale; (ab,c).
  EXPECT_EQ(Enc(*t, "abc"), (Ids{5, 11}));
  EXPECT_EQ(Enc(*t, "bca"), (Ids{5, 10, 6}));
  // "ab" alone: (a,b) rank 0 beats (▁,a) rank 2, and (▁,ab) is no merge.
  EXPECT_EQ(Enc(*t, "ab"), (Ids{5, 9}));
  EXPECT_EQ(Enc(*t, "a"), (Ids{12}));
  // Byte fallback: é is not in the vocabulary, its two bytes are.
  EXPECT_EQ(Enc(*t, "\xC3\xA9"), (Ids{5, 3, 4}));
  EXPECT_EQ(t->Decode(Enc(*t, "\xC3\xA9")), "\xC3\xA9");
  // No byte token for 'd': <unk>, fused over consecutive characters.
  EXPECT_EQ(Enc(*t, "dd"), (Ids{5, 0}));
  EXPECT_EQ(Enc(*t, "dda"), (Ids{5, 0, 6}));
  // tokenizers keeps a pending <unk> pending across byte-fallback characters.
  EXPECT_EQ(Enc(*t, "d\xC3\xA9"), (Ids{5, 3, 4, 0}));
  // Spaces become ▁ (each a symbol), the first piece's leading space is
  // stripped when decoding.
  EXPECT_EQ(Enc(*t, " a"), (Ids{5, 12}));
  EXPECT_EQ(t->Decode(Enc(*t, " a b")), " a b");
  EXPECT_EQ(Enc(*t, ""), (Ids{}));
  // Special tokens: only with parse_special; each segment gets its own ▁.
  EXPECT_EQ(Enc(*t, "a<s>a"), (Ids{12, 1, 12}));
  EXPECT_EQ(Enc(*t, "<s>"), (Ids{1}));
  EXPECT_EQ(t->Decode({1, 12, 2}), "a");
  auto nf = LoadTokJson("algo_nofuse", SpmJson(voc, merges, "", "", /*fuse_unk=*/false), &err);
  ASSERT_NE(nf, nullptr) << err;
  EXPECT_EQ(Enc(*nf, "dd"), (Ids{5, 0, 0}));
  // Serialize / Deserialize keeps all of it.
  const auto blob = t->Serialize();
  auto u = Tokenizer::Deserialize(blob.data(), blob.size(), &err);
  ASSERT_NE(u, nullptr) << err;
  for (const char* s : {"abc", "bca", "d\xC3\xA9", " a b", "a<s>a"})
    EXPECT_EQ(Enc(*u, s), Enc(*t, s));
  CorruptionSweep(blob, 1);
  CorruptWithValidChecksum(blob, 300, 9);
}

// Metaspace pre-tokenizer (split or not, prepend_scheme) and added tokens
// (lstrip/rstrip, special or not, normalized: matched as the normalizer
// rewrites their content).
TEST(HfSpmTokenizer, MetaspaceAndAddedTokens) {
  const std::string M = "\u2581";
  const std::vector<std::string> voc = {"<unk>", "<s>",   "</s>",  M,       "a",
                                        "b",     M + "a", "a" + M, M + "b", "<0x20>"};
  const std::vector<std::pair<std::string, std::string>> merges = {{"a", M}, {M, "a"}, {M, "b"}};
  std::string err;
  // Metaspace, split: merges never cross a ▁ boundary ("a ▁" cannot apply).
  const std::string meta_split =
      "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"always\","
      "\"split\":true}";
  auto t = LoadTokJson("meta_split", SpmJson(voc, merges, "", meta_split), &err);
  ASSERT_NE(t, nullptr) << err;
  EXPECT_EQ(Enc(*t, "a b"), (Ids{6, 8}));
  EXPECT_EQ(Enc(*t, " a"), (Ids{6}));  // already starts with ▁: nothing prepended
  EXPECT_EQ(t->Decode(Enc(*t, "a b")), "a b");
  // Without split the whole segment is one word: (a, ▁) rank 0 wins.
  const std::string meta_nosplit =
      "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"first\","
      "\"split\":false}";
  auto w = LoadTokJson("meta_nosplit", SpmJson(voc, merges, "", meta_nosplit), &err);
  ASSERT_NE(w, nullptr) << err;
  EXPECT_EQ(Enc(*w, "a b"), (Ids{3, 7, 5}));
  // prepend_scheme first: no ▁ for a segment after a special token.
  EXPECT_EQ(Enc(*w, "<s>a"), (Ids{1, 4}));
  EXPECT_EQ(Enc(*t, "<s>a"), (Ids{1, 6}));
  // Added tokens: a non-special one (always matched) with rstrip, a special
  // one with lstrip, a normalized one matched after the normalizer.
  const std::string added =
      "{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
      "{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
      "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false,\"lstrip\":true},"
      "{\"id\":10,\"content\":\"[X]\",\"special\":false,\"normalized\":false,\"rstrip\":true},"
      "{\"id\":11,\"content\":\" b\",\"special\":false,\"normalized\":true}";
  auto a = LoadTokJson("added", SpmJson(voc, merges, added), &err);
  ASSERT_NE(a, nullptr) << err;
  EXPECT_EQ(a->vocab_size(), 12);
  EXPECT_EQ(Enc(*a, "a [X]  a", false), (Ids{3, 7, 10, 6}));
  EXPECT_EQ(Enc(*a, "a  </s>", true), (Ids{6, 2}));
  EXPECT_EQ(Enc(*a, "a  b a"), (Ids{6, 11, 6}));  // pattern "▁▁b" in "▁a▁▁b▁a"
  EXPECT_EQ(Enc(*a, "a b"), (Ids{3, 7, 5}));      // ▁ a▁ b: (a, ▁) has rank 0
  EXPECT_FALSE(a->IsSpecial(10));
  EXPECT_TRUE(a->IsSpecial(2));
  EXPECT_EQ(a->Decode({10, 4}), "[X]a");
}

// A million copies of one merge in a 12 MB tokenizer.json (the issue's
// hostile file), SentencePiece-style.
std::string WriteDuplicateMergesJson(size_t* file_kb) {
  const std::string M = "\u2581";
  std::string j = SpmJson({"<unk>", "<s>", "</s>", M, "a", M + "a"}, {{M, "a"}});
  const std::string one = ",\"" + M + " a\"";
  std::string dup;
  dup.reserve(12u << 20);
  while (dup.size() < (12u << 20)) dup += one;
  j.insert(j.size() - 3, dup);  // before "]}}"
  *file_kb = j.size() / 1024;
  return WriteTokJson("dupmerges", j);
}

// Rejected with an error naming the repeat (or, with a memory-bounded JSON
// reader, the reader's own limit).
TEST(HfSpmTokenizer, MalformedDuplicateMerges) {
  size_t file_kb = 0;
  const std::string path = WriteDuplicateMergesJson(&file_kb);
  std::string err;
  EXPECT_EQ(TokenizerFromFile(path, &err), nullptr);
  const bool repeat = err.find("merges[1] ('\u2581 a') repeats merges[0]") != std::string::npos;
  const bool budget = err.find("memory to parse") != std::string::npos;
  EXPECT_TRUE(repeat || budget) << err;
}

// Peak RSS of that rejection <= 2x the file + 64 MiB (the bounded JSON reader,
// tools/import/json.cpp, keeps the DOM small; measured 76 MiB for the 12 MiB file).
// Host only, and not under ASan (its shadow memory is RSS too).
TEST(HfSpmTokenizer, MalformedDuplicateMergesPeakRss) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "RSS bound not meaningful under AddressSanitizer";
#endif
  const char* emu = std::getenv("LAMINA_EMULATOR");
  if (emu && *emu) GTEST_SKIP() << "host only (RSS under qemu-user is the emulator's)";
  size_t file_kb = 0;
  const std::string path = WriteDuplicateMergesJson(&file_kb);
  // Peak RSS of a forked child running `fn`, in KiB (its own, via wait4).
  auto child_peak_kb = [](bool load, const std::string& p, bool* refused) {
    const pid_t pid = fork();
    if (pid == 0) {
      std::string e;
      _exit(!load || TokenizerFromFile(p, &e) == nullptr ? 0 : 1);
    }
    int status = 0;
    rusage ru{};
    wait4(pid, &status, 0, &ru);
    *refused = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return static_cast<long>(ru.ru_maxrss);
  };
  // A fork starts with the test process's resident pages: count above an idle fork.
  bool refused = false;
  const long idle = child_peak_kb(false, path, &refused);
  const long kb = child_peak_kb(true, path, &refused) - idle;
  EXPECT_TRUE(refused);
  std::printf(
      "[ %zu KiB tokenizer.json with repeated merges: rejected, peak RSS %ld KiB above "
      "an idle fork ]\n",
      file_kb, kb);
  EXPECT_LE(kb, static_cast<long>(2 * file_kb + 64 * 1024));
}

TEST(HfSpmTokenizer, MalformedAndUnsupportedJson) {
  const std::string M = "\u2581";
  const std::vector<std::string> voc = {"<unk>", "<s>", "</s>", M, "a", M + "a"};
  std::string err;
  auto expect_error = [&](const std::string& name, const std::string& j, const char* want) {
    err.clear();
    EXPECT_EQ(LoadTokJson(name, j, &err), nullptr) << name;
    EXPECT_NE(err.find(want), std::string::npos) << name << ": " << err;
  };
  std::string ok = SpmJson(voc, {{M, "a"}});
  ASSERT_NE(LoadTokJson("ok", ok, &err), nullptr) << err;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string j = ok;
    const size_t at = j.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) j.replace(at, from.size(), to);
    return j;
  };
  expect_error("wordpiece", with("\"type\":\"BPE\"", "\"type\":\"WordPiece\""),
               "model.type 'WordPiece' is not supported");
  expect_error("unigram", with("\"type\":\"BPE\"", "\"type\":\"Unigram\""), "--tokenizer none");
  expect_error("nfkc", with("{\"type\":\"Prepend\"", "{\"type\":\"NFKC\"},{\"type\":\"Prepend\""),
               "normalizer 'NFKC'");
  expect_error("whitespace",
               with("\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Whitespace\"}"),
               "pre_tokenizer 'Whitespace'");
  expect_error("dropout", with("\"dropout\":null", "\"dropout\":0.1"), "dropout");
  expect_error("suffix", with("\"end_of_word_suffix\":null", "\"end_of_word_suffix\":\"</w>\""),
               "end_of_word_suffix");
  expect_error("oov_merge", SpmJson(voc, {{M, "a"}, {"a", "a"}}), "merges[1]: result 'aa' not in");
  expect_error("bad_merge", SpmJson(voc, {{M, "a b"}}), "merges[0]: not two tokens");
  expect_error("dup_merge", SpmJson(voc, {{M, "a"}, {M, "a"}}), "merges[1]");
  expect_error("hole", with("\"a\":4", "\"a\":7"), "id not in [0, vocab size)");
  expect_error("unk", with("\"unk_token\":\"<unk>\"", "\"unk_token\":\"<nope>\""),
               "unk_token '<nope>'");
  expect_error("single_word", with("\"id\":0,", "\"id\":0,\"single_word\":true,"), "single_word");
  expect_error("nodecoder",
               with("\"type\":\"Replace\",\"pattern\":{\"String\":\"\u2581\"}",
                    "\"type\":\"Replace\",\"pattern\":{\"String\":\"x\"}"),
               "decoder 'Replace'");
  // The byte-level (Llama 3) path rejects a repeated merge too.
  if (test::FileExists(SharedDir() + "/tokenizers/llama3/tokenizer.json")) {
    std::string l3 = ReadAll(SharedDir() + "/tokenizers/llama3/tokenizer.json");
    const size_t m = l3.find("\"merges\"");
    ASSERT_NE(m, std::string::npos);
    const size_t open = l3.find('[', m);
    // Duplicate the first merge entry (string or [a, b] form).
    size_t e = open + 1;
    while (l3[e] == ' ' || l3[e] == '\n') ++e;
    size_t end = e;
    if (l3[e] == '"') {
      end = l3.find('"', e + 1) + 1;
    } else {
      end = l3.find(']', e) + 1;
    }
    l3.insert(end, "," + l3.substr(e, end - e));
    expect_error("dup_l3", l3, "repeats merges[0]");
  }
}

}  // namespace
}  // namespace lamina
