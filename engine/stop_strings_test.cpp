// Stop strings: the filter that holds back a possible stop-string start
// (StopStringFilter), and lamina_generate_ex end to end on a small model with
// the byte tokenizer (every byte is a token, so every stop string of two or
// more bytes spans tokens).
#include "engine/stop_strings.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "lamina/lamina.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

using engine::StopStringFilter;

// Feeds `pieces` one by one; returns everything emitted (plus the flushed tail
// when nothing matched) and whether a stop string matched.
std::string Filter(const std::vector<std::string>& stops, const std::vector<std::string>& pieces,
                   bool* matched, std::vector<std::string>* emitted = nullptr) {
  StopStringFilter f(stops);
  std::string out;
  *matched = false;
  for (const std::string& p : pieces) {
    bool m = false;
    const std::string e = f.Push(p, &m);
    if (emitted) emitted->push_back(e);
    out += e;
    if (m) {
      *matched = true;
      return out;
    }
  }
  return out + f.Flush();
}

TEST(StopStrings, SpanningTokensIsNeverEmitted) {
  bool m;
  std::vector<std::string> em;
  EXPECT_EQ(Filter({"END"}, {"Hello E", "N", "D and more"}, &m, &em), "Hello ");
  EXPECT_TRUE(m);
  // "E" and then "EN" are held back, never emitted before the match decides.
  ASSERT_EQ(em.size(), 3u);
  EXPECT_EQ(em[0], "Hello ");
  EXPECT_EQ(em[1], "");
  EXPECT_EQ(em[2], "");
}

TEST(StopStrings, AtTheVeryStart) {
  bool m;
  EXPECT_EQ(Filter({"ab"}, {"a", "b", "c"}, &m), "");
  EXPECT_TRUE(m);
  EXPECT_EQ(Filter({"abc"}, {"abcdef"}, &m), "");
  EXPECT_TRUE(m);
}

TEST(StopStrings, NeverMatchedHeldTailIsFlushed) {
  bool m;
  std::vector<std::string> em;
  // The text ends in "St", a prefix of "Stop": held, then flushed at the end.
  EXPECT_EQ(Filter({"Stop"}, {"Go", "S", "t"}, &m, &em), "GoSt");
  EXPECT_FALSE(m);
  EXPECT_EQ(em[0] + em[1] + em[2], "Go");
  // A held prefix that turns out not to match is released with the next piece.
  EXPECT_EQ(Filter({"Stop"}, {"S", "ta", "y"}, &m, &em), "Stay");
  EXPECT_FALSE(m);
}

TEST(StopStrings, MultipleStopStringsEarliestWins) {
  bool m;
  EXPECT_EQ(Filter({"world", "lo w"}, {"hel", "lo world"}, &m), "hel");
  EXPECT_TRUE(m);
  EXPECT_EQ(Filter({"xyz", "o"}, {"hell", "o world"}, &m), "hell");
  EXPECT_TRUE(m);
  // Overlapping candidates: "aab" must still match after "aa" was held.
  EXPECT_EQ(Filter({"aab", "zz"}, {"a", "a", "a", "b"}, &m), "a");
  EXPECT_TRUE(m);
  // The longest held tail over all stop strings.
  std::vector<std::string> em;
  EXPECT_EQ(Filter({"xab", "bcd"}, {"1xab"}, &m, &em), "1");
  EXPECT_TRUE(m);
  EXPECT_EQ(Filter({"abcz", "bcy"}, {"1abc", "q"}, &m, &em), "1abcq");
  EXPECT_FALSE(m);
  EXPECT_EQ(em[0], "1");  // "abc" is held (prefix of "abcz"), not just "bc"
}

TEST(StopStrings, Utf8MultibyteBoundaries) {
  bool m;
  std::vector<std::string> em;
  // "€" is 3 bytes; the stop string starts with it. The held tail starts at
  // a character boundary, so emitted text never splits a character.
  EXPECT_EQ(Filter({"\u20acX"}, {"ab\u20ac", "Y\u20ac", "X"}, &m, &em), "ab\u20acY");
  EXPECT_TRUE(m);
  EXPECT_EQ(em[0], "ab");
  EXPECT_EQ(em[1], "\u20acY");
  // A multibyte stop string spread over pieces of whole characters.
  EXPECT_EQ(Filter({"\u00e9\U0001F600"}, {"caf", "\u00e9", "\U0001F600!"}, &m), "caf");
  EXPECT_TRUE(m);
  // Same leading bytes, different character: no match, all text flushed.
  EXPECT_EQ(Filter({"\u00e9t\u00e9"}, {"\u00e9", "t", "\u00e8"}, &m), "\u00e9t\u00e8");
  EXPECT_FALSE(m);
}

// ---------------------------------------------------------------- C API

struct Gen {
  std::string text;  // every piece, concatenated
  std::vector<int32_t> ids;
  lamina_generate_result r{};
  lamina_status st = LAMINA_OK;
  int32_t n_past = 0;
};

class StopStringsApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TestModelSpec s;
    s.scheme = "f32";
    s.vocab = 258;  // exactly the byte tokenizer: every id decodes to text
    s.seed = 11;
    const std::string path = TestDataDir("stop") + "/byte.lamina";
    std::string err;
    ASSERT_TRUE(WriteTestModel(s, path, &err)) << err;
    ASSERT_EQ(lamina_model_load(path.c_str(), nullptr, &model_), LAMINA_OK) << lamina_last_error();
  }
  static void TearDownTestSuite() {
    lamina_model_free(model_);
    model_ = nullptr;
  }

  // A fresh context and sampler (same seed) each time: identical token streams.
  static Gen Run(const std::vector<std::string>& stops, size_t max_tokens = 48) {
    Gen g;
    lamina_context_params cp = lamina_context_default_params();
    cp.n_ctx = 128;
    cp.n_threads = 1;
    lamina_context* ctx = nullptr;
    EXPECT_EQ(lamina_context_create(model_, &cp, &ctx), LAMINA_OK);
    lamina_sampler_params sp = lamina_sampler_default_params();
    sp.temperature = 1.0f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    sp.seed = 5;
    lamina_sampler* smp = nullptr;
    EXPECT_EQ(lamina_sampler_create(model_, &sp, &smp), LAMINA_OK);
    std::vector<const char*> sv;
    for (const std::string& s : stops) sv.push_back(s.c_str());
    lamina_generate_params gp = lamina_generate_default_params();
    gp.max_tokens = max_tokens;
    gp.stop = sv.data();
    gp.n_stop = sv.size();
    gp.user = &g;
    gp.callback = [](int32_t t, const char* piece, size_t len, void* u) -> int {
      Gen* g = static_cast<Gen*>(u);
      if (t >= 0) g->ids.push_back(t);
      if (piece) g->text.append(piece, len);
      return 0;
    };
    const int32_t prompt[] = {256, 'O', 'n', 'c', 'e'};
    g.st = lamina_generate_ex(ctx, smp, prompt, 5, &gp, &g.r);
    g.n_past = lamina_n_past(ctx);
    lamina_sampler_free(smp);
    lamina_context_free(ctx);
    return g;
  }

  static lamina_model* model_;
};
lamina_model* StopStringsApi::model_ = nullptr;

TEST_F(StopStringsApi, MatchesAcrossTokensAtStartAndNever) {
  const Gen ref = Run({});
  ASSERT_EQ(ref.st, LAMINA_OK);
  ASSERT_EQ(ref.r.reason, LAMINA_STOP_LENGTH) << "pick another seed: the reference hit EOS";
  ASSERT_GE(ref.text.size(), 24u);
  // Same as lamina_generate (the old entry point).
  {
    const Gen again = Run({});
    EXPECT_EQ(again.text, ref.text);
  }
  // A 3-byte stop string from the middle: 3 tokens with the byte tokenizer.
  const std::string mid = ref.text.substr(10, 3);
  const size_t at = ref.text.find(mid);
  Gen g = Run({mid});
  ASSERT_EQ(g.st, LAMINA_OK);
  EXPECT_EQ(g.r.reason, LAMINA_STOP_STRING);
  EXPECT_EQ(g.text, ref.text.substr(0, at));
  // Every emitted token (including the one completing the match) is evaluated.
  EXPECT_EQ(g.n_past, 5 + static_cast<int32_t>(g.r.n_generated));
  EXPECT_EQ(g.ids.size(), g.r.n_generated);
  EXPECT_LT(g.r.n_generated, ref.r.n_generated);

  // At the very start: nothing emitted.
  g = Run({ref.text.substr(0, 2)});
  EXPECT_EQ(g.r.reason, LAMINA_STOP_STRING);
  EXPECT_EQ(g.text, "");

  // Never matched, but the text ends with a prefix of the stop string: the
  // held tail is delivered at the end (token == -1 call), text unchanged.
  const std::string tail = ref.text.substr(ref.text.size() - 2);
  g = Run({tail + "\x01\x02 never"});
  EXPECT_EQ(g.r.reason, LAMINA_STOP_LENGTH);
  EXPECT_EQ(g.text, ref.text);

  // Multiple stop strings: the earliest occurrence wins.
  const std::string early = ref.text.substr(4, 2), late = ref.text.substr(15, 4);
  g = Run({late, early});
  EXPECT_EQ(g.r.reason, LAMINA_STOP_STRING);
  EXPECT_EQ(g.text, ref.text.substr(0, std::min(ref.text.find(early), ref.text.find(late))));
}

TEST_F(StopStringsApi, MalformedStopStringsAreErrors) {
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = 256;
  cp.n_threads = 1;
  lamina_context* ctx = nullptr;
  ASSERT_EQ(lamina_context_create(model_, &cp, &ctx), LAMINA_OK);
  lamina_sampler* smp = nullptr;
  ASSERT_EQ(lamina_sampler_create(model_, nullptr, &smp), LAMINA_OK);
  const int32_t prompt[] = {256};
  lamina_generate_params gp = lamina_generate_default_params();
  gp.n_stop = 1;  // stop == NULL
  EXPECT_EQ(lamina_generate_ex(ctx, smp, prompt, 1, &gp, nullptr), LAMINA_ERR_INVALID_ARG);
  const char* empty[] = {""};
  gp.stop = empty;
  EXPECT_EQ(lamina_generate_ex(ctx, smp, prompt, 1, &gp, nullptr), LAMINA_ERR_INVALID_ARG);
  const char* null_entry[] = {nullptr};
  gp.stop = null_entry;
  EXPECT_EQ(lamina_generate_ex(ctx, smp, prompt, 1, &gp, nullptr), LAMINA_ERR_INVALID_ARG);
  const std::string big(LAMINA_MAX_STOP_STRING_BYTES + 1, 'x');
  const char* too_long[] = {big.c_str()};
  gp.stop = too_long;
  EXPECT_EQ(lamina_generate_ex(ctx, smp, prompt, 1, &gp, nullptr), LAMINA_ERR_INVALID_ARG);
  std::vector<const char*> many(LAMINA_MAX_STOP_STRINGS + 1, "x");
  gp.stop = many.data();
  gp.n_stop = many.size();
  EXPECT_EQ(lamina_generate_ex(ctx, smp, prompt, 1, &gp, nullptr), LAMINA_ERR_INVALID_ARG);
  EXPECT_EQ(lamina_n_past(ctx), 0);  // nothing evaluated
  // params == NULL: the defaults (128 tokens, no stop strings).
  lamina_generate_result r;
  EXPECT_EQ(lamina_generate_ex(ctx, smp, prompt, 1, nullptr, &r), LAMINA_OK);
  EXPECT_LE(r.n_generated, 128u);
  lamina_sampler_free(smp);
  lamina_context_free(ctx);
}

}  // namespace
}  // namespace lamina::test
