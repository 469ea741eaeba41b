#include "engine/grammar.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/testutil.h"
#include "tokenizer/tokenizer.h"
#include "tools/import/tokenizer_import.h"

namespace lamina::engine {
namespace {

// A JSON grammar in the style of llama.cpp's grammars/json.gbnf.
constexpr const char* kJson = R"(# any JSON value
root   ::= value
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::=
  "{" ws (
    string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9]{1,3})? ws
ws ::= | " " | "\n" [ \t]{0,20}
)";

std::shared_ptr<const Grammar> Compile(const std::string& text, std::string* err = nullptr) {
  std::string e;
  auto g = Grammar::Parse(text, "root", &e);
  if (err) *err = e;
  return g;
}

// Whether the whole of `s` is a complete match of the grammar.
bool Matches(const std::shared_ptr<const Grammar>& g, const std::string& s) {
  auto v = std::make_shared<GrammarVocab>(std::vector<std::string>{"x"}, std::vector<int32_t>{});
  GrammarMatcher m(g, v);
  std::string err;
  return m.AcceptBytes(s, &err) && m.CanEnd();
}

TEST(Grammar, ParsesAndMatchesLiteralsClassesAndRepetition) {
  auto g = Compile(
      "root ::= \"a\" [b-d]+ x? (\"e\" | \"f\")* y{2,3} [^xyz] .\n"
      "x ::= \"\\x41\\u00e9\\n\\t\\\"\\\\\"  # a comment\n"
      "y ::= [0-9]\n");
  ASSERT_TRUE(g);
  EXPECT_TRUE(Matches(g, "ab12qz"));
  EXPECT_TRUE(Matches(g, "abcdcA\xC3\xA9\n\t\"\\efe123w\xE2\x82\xAC"));
  EXPECT_FALSE(Matches(g, "a12qz"));     // [b-d]+ needs one
  EXPECT_FALSE(Matches(g, "ab1qz"));     // y{2,3} needs two
  EXPECT_FALSE(Matches(g, "ab1234qz"));  // ... at most three
  EXPECT_FALSE(Matches(g, "ab12xz"));    // [^xyz]
  EXPECT_FALSE(Matches(g, "ab12q"));     // incomplete
  EXPECT_FALSE(Matches(g, "ab12qzz"));   // trailing
}

TEST(Grammar, BoundedRepetitionForms) {
  auto g = Compile("root ::= \"a\"{3} \"b\"{,2} \"c\"{2,} \"d\"{0,1}\n");
  ASSERT_TRUE(g);
  EXPECT_TRUE(Matches(g, "aaacc"));
  EXPECT_TRUE(Matches(g, "aaabbccccd"));
  EXPECT_FALSE(Matches(g, "aacc"));
  EXPECT_FALSE(Matches(g, "aaabbbcc"));
  EXPECT_FALSE(Matches(g, "aaac"));
  EXPECT_FALSE(Matches(g, "aaaccdd"));
}

TEST(Grammar, MultiLineRulesAndAlternativeContinuation) {
  auto g = Compile("root ::= (\n  \"a\"\n  | \"b\"\n)\n  | \"c\"\nother ::= \"z\"\n");
  ASSERT_TRUE(g);
  EXPECT_TRUE(Matches(g, "a"));
  EXPECT_TRUE(Matches(g, "b"));
  EXPECT_TRUE(Matches(g, "c"));
  EXPECT_FALSE(Matches(g, "z"));
}

TEST(Grammar, JsonGrammarAcceptsJsonAndRejectsOthers) {
  auto g = Compile(kJson);
  ASSERT_TRUE(g);
  for (const char* ok : {"{}", "[]", "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\"]}", "\"\"", "0",
                         "{\"k\":{\"n\":[[],{}]}}", "-0.5", "\"\xE6\x97\xA5\""})
    EXPECT_TRUE(Matches(g, ok)) << ok;
  for (const char* bad : {"{", "[1,]", "{\"a\" 1}", "01", "\"\x01\"", "tru", "{\"a\":1,}", "'a'"})
    EXPECT_FALSE(Matches(g, bad)) << bad;
}

TEST(Grammar, RootNameIsSelectable) {
  std::string err;
  auto g = Grammar::Parse("a ::= \"x\"\nb ::= \"y\"\n", "b", &err);
  ASSERT_TRUE(g) << err;
  EXPECT_TRUE(Matches(g, "y"));
  EXPECT_FALSE(Matches(g, "x"));
}

// Syntax errors name line and column.
TEST(Grammar, MalformedSyntaxErrorsGiveLineAndColumn) {
  struct Case {
    const char* text;
    const char* want;
  };
  const Case cases[] = {
      {"root ::= \"abc\n", "line 1 col 14: unterminated string literal"},
      {"root ::= x\n", "line 1 col 10: undefined rule 'x'"},
      {"root ::= \"a\"\nroot ::= \"b\"\n", "line 2 col 1: rule 'root' defined twice"},
      {"root ::= [a-\n", "line 1 col 10: unterminated character class"},
      {"root ::= ( \"a\" \n", "line 1 col 10: unclosed '('"},
      {"root ::= \"a\" )\n", "line 1 col 14: unexpected ')'"},
      {"root = \"a\"\n", "line 1 col 6: expected '::=' after rule name 'root'"},
      {"root ::= *\n", "line 1 col 10: '*' has nothing to repeat"},
      {"root ::= \"a\"{3,1}\n", "line 1 col 18: repetition {m,n} with n < m"},
      {"root ::= \"\\q\"\n", "line 1 col 11: unknown escape '\\q'"},
      {"root ::= [z-a]\n", "line 1 col 14: character range with end below start"},
      {"a ::= \"x\"\n", "no rule 'root'"},
      {"root ::= \"a\"{99999}\n", "repetition count above"},
      {"root ::= \"\\xZZ\"\n", "expected 2 hex digits"},
      {"\n\n  root ::= \"a\" b ::= \"c\"\n",
       "line 3 col 16: a new rule must start on its own line"},
      {"root ::= \"\xFF\"\n", "invalid UTF-8"},
  };
  for (const Case& c : cases) {
    std::string err;
    EXPECT_FALSE(Grammar::Parse(c.text, "root", &err)) << c.text;
    EXPECT_NE(err.find(c.want), std::string::npos) << c.text << " -> " << err;
  }
}

TEST(Grammar, MalformedLeftRecursionIsRefused) {
  std::string err;
  EXPECT_FALSE(Compile("root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]\n", &err));
  EXPECT_NE(err.find("left recursion"), std::string::npos) << err;
  EXPECT_NE(err.find("expr -> expr"), std::string::npos) << err;
  // Through a nullable prefix and an indirect cycle.
  EXPECT_FALSE(Compile("root ::= a\na ::= b? c \"x\"\nb ::= \"y\"\nc ::= a | \"z\"\n", &err));
  EXPECT_NE(err.find("left recursion"), std::string::npos) << err;
  // A repetition of something that can be empty loops forever: refused too.
  EXPECT_FALSE(Compile("root ::= (\"a\"?)*\n", &err));
  EXPECT_NE(err.find("left recursion"), std::string::npos) << err;
  // Right recursion is fine.
  EXPECT_TRUE(Compile("root ::= \"a\" root | \"b\"\n", &err)) << err;
}

// Pathological grammars hit a cap with a clear error instead of exploding.
TEST(Grammar, MalformedPathologicalGrammarsHitCaps) {
  std::string err;
  // Size: nested bounded repetitions multiply.
  std::string big = "root ::=";
  for (int i = 0; i < 110; ++i) big += " \"ab\"{10000}";
  EXPECT_FALSE(Compile(big + "\n", &err));
  EXPECT_NE(err.find("too large"), std::string::npos) << err;
  // Ambiguity: each 'a' doubles the ways to parse.
  auto g = Compile("root ::= x*\nx ::= \"a\" | \"a\" | y\ny ::= \"a\" z\nz ::= \"\" | \"a\"\n");
  ASSERT_TRUE(g);
  auto v = std::make_shared<GrammarVocab>(std::vector<std::string>{"a"}, std::vector<int32_t>{});
  GrammarMatcher m(g, v);
  bool failed = false;
  for (int i = 0; i < 100 && !failed; ++i) failed = !m.AcceptBytes("a", &err);
  // Either it stays bounded (stacks dedupe) or it stops with a clear error.
  if (failed) {
    EXPECT_NE(err.find("grammar:"), std::string::npos) << err;
  }
  // Depth: unbounded nesting stops at the depth cap.
  auto d = Compile("root ::= \"(\" root \")\" | \"x\"\n");
  ASSERT_TRUE(d);
  GrammarMatcher md(d, v);
  bool hit = false;
  for (int i = 0; i < 5000 && !hit; ++i) hit = !md.AcceptBytes("(", &err);
  EXPECT_TRUE(hit);
  EXPECT_NE(err.find("deeper than"), std::string::npos) << err;
}

// The mask equals, token by token, feeding each token's bytes to the parser.
void ExpectMaskMatchesBruteForce(GrammarMatcher* m, const GrammarVocab& v, const char* where) {
  const uint32_t* bits = nullptr;
  std::string err;
  const int n = m->ComputeMask(&bits, &err);
  ASSERT_GE(n, 0) << err;
  int count = 0;
  for (int32_t id = 0; id < v.n_vocab(); ++id) {
    const bool in_mask = (bits[id / 32] >> (id % 32)) & 1u;
    count += in_mask;
    ASSERT_EQ(in_mask, m->Allows(id)) << where << ": token " << id << " '" << v.bytes(id) << "'";
  }
  EXPECT_EQ(count, n) << where;
}

std::vector<std::string> SmallVocab() {
  std::vector<std::string> t = {
      "",         "{",    "}",    "\"",   "\":",      " ",        "\n",     "[",
      "]",        ",",    "a",    "ab",   "true",     "tr",       "ue",     "null",
      "0",        "12",   "-",    ".5",   "e+",       "\\",       "\\u",    "00e9",
      "\"}",      "{\"",  "\xC3", "\xA9", "\xC3\xA9", "\xE6\x97", "\xA5\"", "\xF0\x9F",
      "\x98\x80", "\x80", "\xFF", "x",    ":"};
  return t;
}

TEST(Grammar, MaskMatchesBruteForceOnSmallVocab) {
  auto g = Compile(kJson);
  ASSERT_TRUE(g);
  auto v = std::make_shared<GrammarVocab>(SmallVocab(), std::vector<int32_t>{0});
  GrammarMatcher m(g, v);
  ExpectMaskMatchesBruteForce(&m, *v, "start");
  // Walk a path of tokens that includes a split UTF-8 character.
  const std::vector<std::string> path = {"{\"", "a", "\xC3", "\xA9",     "\":",    " ", "[",
                                         "12",  ",", "\"",   "\xE6\x97", "\xA5\"", "]", "}"};
  std::string err;
  for (const std::string& piece : path) {
    int32_t id = -1;
    for (int32_t i = 0; i < v->n_vocab(); ++i)
      if (v->bytes(i) == piece) id = i;
    ASSERT_GE(id, 0) << piece;
    ASSERT_TRUE(m.AcceptToken(id, &err)) << piece << ": " << err;
    ExpectMaskMatchesBruteForce(&m, *v, piece.c_str());
  }
  EXPECT_TRUE(m.CanEnd());
  // Only now the stop token (0) is allowed.
  const uint32_t* bits = nullptr;
  ASSERT_GE(m.ComputeMask(&bits, &err), 1);
  EXPECT_TRUE(bits[0] & 1u);
  ASSERT_TRUE(m.AcceptToken(0, &err)) << err;
  EXPECT_TRUE(m.Ended());
  EXPECT_EQ(m.ComputeMask(&bits, &err), 0);
  m.Reset();
  EXPECT_FALSE(m.Ended());
  EXPECT_FALSE(m.AcceptToken(0, &err));  // EOS before the grammar can end
  EXPECT_NE(err.find("before the grammar is complete"), std::string::npos) << err;
}

TEST(Grammar, MaskMatchesBruteForceOnLlama3Vocab) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  std::string err;
  auto tok = TokenizerFromFile(test::SharedDir() + "/tokenizers/llama3/tokenizer.model", &err);
  ASSERT_TRUE(tok) << err;
  std::vector<std::string> bytes(static_cast<size_t>(tok->vocab_size()));
  for (int32_t i = 0; i < tok->vocab_size(); ++i)
    if (!tok->IsSpecial(i)) bytes[static_cast<size_t>(i)] = tok->TokenBytes(i);
  auto v = std::make_shared<GrammarVocab>(bytes, tok->stop_ids());
  auto g = Compile(kJson);
  ASSERT_TRUE(g);
  GrammarMatcher m(g, v);
  ExpectMaskMatchesBruteForce(&m, *v, "start");
  // Follow a JSON text tokenized by the real tokenizer; check at a few points
  // (each check feeds all 128k tokens through the byte-level reference).
  std::vector<int32_t> ids;
  ASSERT_TRUE(tok->Encode("{\"name\": \"Zo\xC3\xAB \xE6\x97\xA5\", \"n\": [1, 2.5e-3, true]}",
                          false, false, &ids, &err));
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(m.AcceptToken(ids[i], &err)) << i << ": " << err;
    if (i % 3 == 0) ExpectMaskMatchesBruteForce(&m, *v, tok->TokenBytes(ids[i]).c_str());
  }
  EXPECT_TRUE(m.CanEnd());
}

// Random walks: at each step pick an allowed token at random, check the mask.
TEST(Grammar, MaskMatchesBruteForceOnRandomWalks) {
  auto g = Compile(kJson);
  ASSERT_TRUE(g);
  auto v = std::make_shared<GrammarVocab>(SmallVocab(), std::vector<int32_t>{0});
  std::mt19937 rng(7);
  for (int walk = 0; walk < 20; ++walk) {
    GrammarMatcher m(g, v);
    std::string text;
    for (int step = 0; step < 40 && !m.Ended(); ++step) {
      ExpectMaskMatchesBruteForce(&m, *v, "walk");
      const uint32_t* bits = nullptr;
      std::string err;
      const int n = m.ComputeMask(&bits, &err);
      ASSERT_GT(n, 0) << "dead end at step " << step << " after '" << text << "'";
      std::vector<int32_t> allowed;
      for (int32_t id = 0; id < v->n_vocab(); ++id)
        if ((bits[id / 32] >> (id % 32)) & 1u) allowed.push_back(id);
      const int32_t pick = allowed[rng() % allowed.size()];
      ASSERT_TRUE(m.AcceptToken(pick, &err)) << err;
      text += v->bytes(pick);
    }
  }
}

// Single-byte tokens: a lead byte is allowed only if some code point it can
// start (in its shortest form) is; E0 cannot start U+007B.
TEST(Grammar, LeadBytesOnlyWhenTheirCodePointsFit) {
  std::vector<std::string> bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(std::string(1, static_cast<char>(i)));
  auto v = std::make_shared<GrammarVocab>(bytes, std::vector<int32_t>{});
  auto allowed = [&](const char* gbnf) {
    GrammarMatcher m(Compile(gbnf), v);
    const uint32_t* bits = nullptr;
    std::string err;
    m.ComputeMask(&bits, &err);
    std::vector<int> out;
    for (int i = 0; i < 256; ++i)
      if ((bits[i / 32] >> (i % 32)) & 1u) out.push_back(i);
    return out;
  };
  EXPECT_EQ(allowed("root ::= \"{\"\n"), (std::vector<int>{0x7B}));
  EXPECT_EQ(allowed("root ::= [\\u0800-\\u0FFF]\n"), (std::vector<int>{0xE0}));
  EXPECT_EQ(allowed("root ::= [\\U00010000-\\U0001FFFF]\n"), (std::vector<int>{0xF0}));
  EXPECT_EQ(allowed("root ::= [\\u0080-\\u00BF]\n"), (std::vector<int>{0xC2}));
}

TEST(Grammar, RejectsDisallowedTokenAndKeepsState) {
  auto g = Compile("root ::= \"ab\"\n");
  ASSERT_TRUE(g);
  auto v = std::make_shared<GrammarVocab>(std::vector<std::string>{"a", "b", "c", ""},
                                          std::vector<int32_t>{3});
  GrammarMatcher m(g, v);
  std::string err;
  EXPECT_FALSE(m.AcceptToken(1, &err));
  EXPECT_FALSE(m.AcceptToken(99, &err));
  EXPECT_TRUE(m.AcceptToken(0, &err));
  EXPECT_FALSE(m.AcceptToken(2, &err));
  EXPECT_TRUE(m.AcceptToken(1, &err));
  EXPECT_TRUE(m.CanEnd());
  const uint32_t* bits = nullptr;
  EXPECT_EQ(m.ComputeMask(&bits, &err), 1);  // the stop token alone
  EXPECT_EQ(bits[0], 1u << 3);
}

}  // namespace
}  // namespace lamina::engine
