// libFuzzer harness: GBNF grammars and JSON Schemas. An input starting with
// '{' is a JSON Schema: a successful conversion must compile as GBNF. Any
// other input is GBNF text. A compiled grammar then drives a matcher over a
// small vocabulary for a few steps: each mask must agree, token by token,
// with feeding that token's bytes, and accepting an allowed token must work.
#include <cstdio>
#include <string>
#include <vector>

#include "engine/grammar.h"
#include "tests/fuzz/fuzz_util.h"
#include "tools/convert/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using lamina::engine::Grammar;
  using lamina::engine::GrammarMatcher;
  using lamina::engine::GrammarVocab;
  static const auto vocab = std::make_shared<GrammarVocab>(
      std::vector<std::string>{"",    "a",  "b",    "ab",   "{",        "}",        "\"",   ":",
                               ",",   "[",  "]",    "0",    "12",       " ",        "\n",   "yes",
                               "no",  ".",  "\xC3", "\xA9", "\xC3\xA9", "\xE2\x82", "\xAC", "\xFF",
                               "x\"", "\\", "null", "true", "-"},
      std::vector<int32_t>{0});
  const std::string in(reinterpret_cast<const char*>(data), size);
  std::string gbnf = in, err;
  if (!in.empty() && in[0] == '{') {
    if (!lamina::convert::JsonSchemaToGbnf(in, &gbnf, &err)) {
      LAMINA_FUZZ_CHECK(!err.empty(), "a refused schema says why");
      return 0;
    }
    if (!Grammar::Parse(gbnf, "root", &err))
      std::fprintf(stderr, "%s\n%s\n", err.c_str(), gbnf.c_str());
    LAMINA_FUZZ_CHECK(Grammar::Parse(gbnf, "root", &err) != nullptr,
                      "the converter's output compiles");
  }
  auto g = Grammar::Parse(gbnf, "root", &err);
  if (!g) {
    LAMINA_FUZZ_CHECK(!err.empty(), "a refused grammar says why");
    return 0;
  }
  GrammarMatcher m(g, vocab);
  uint32_t pick = static_cast<uint32_t>(size);
  for (int step = 0; step < 8; ++step) {
    const uint32_t* bits = nullptr;
    const int n = m.ComputeMask(&bits, &err);
    if (n <= 0) return 0;  // dead end, ended, or a cap (err says which)
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < vocab->n_vocab(); ++id) {
      const bool in_mask = (bits[id / 32] >> (id % 32)) & 1u;
      LAMINA_FUZZ_CHECK(in_mask == m.Allows(id), "mask == token-by-token reference");
      if (in_mask) allowed.push_back(id);
    }
    LAMINA_FUZZ_CHECK(static_cast<int>(allowed.size()) == n, "mask count");
    pick = pick * 1103515245u + 12345u;
    LAMINA_FUZZ_CHECK(m.AcceptToken(allowed[pick % allowed.size()], &err), "allowed is accepted");
  }
  return 0;
}
