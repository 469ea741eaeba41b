// stories260K (karpathy llama2.c, from ../shared): converted with f32 weights,
// greedy generation with run.c's semantics must reproduce run.c's text exactly
// for the three prompts of reference_greedy_runc.txt (256 steps). Converted to
// q8 / q4, the number of tokens that agree with the f32 run is reported and
// held above a floor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "lamina/lamina.h"
#include "tests/testutil.h"
#include "tools/convert/convert.h"

namespace lamina::test {
namespace {

constexpr const char* kDir = "models/stories260K";

struct Case {
  std::string prompt, text;
  int steps = 0;
};

// Sections "### prompt=[P] temp=0 steps=S (karpathy run.c)\n<text>\n\n".
std::vector<Case> ReadReference(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string all = ss.str();
  std::vector<Case> cases;
  size_t pos = 0;
  while ((pos = all.find("### prompt=[", pos)) != std::string::npos) {
    Case c;
    const size_t pe = all.find("] temp=0 steps=", pos);
    const size_t le = all.find('\n', pos);
    if (pe == std::string::npos || le == std::string::npos) break;
    c.prompt = all.substr(pos + 12, pe - (pos + 12));
    c.steps = std::atoi(all.c_str() + pe + 15);
    size_t next = all.find("\n### prompt=[", le);
    if (next == std::string::npos) next = all.size();
    c.text = all.substr(le + 1, next - (le + 1));
    while (!c.text.empty() && (c.text.back() == '\n' || c.text.back() == ' ')) c.text.pop_back();
    cases.push_back(c);
    pos = next;
  }
  return cases;
}

std::string Convert(const std::string& weights) {
  const std::string out = TestDataDir("stories") + "/stories260K-" + weights + ".lamina";
  convert::ConvertOptions o;
  o.weights = weights;
  o.quiet = true;
  o.tokenizer_path = SharedDir() + "/" + kDir + "/tok512.bin";
  std::string err;
  EXPECT_TRUE(convert::ConvertLlama2c(SharedDir() + "/" + kDir + "/stories260K.bin", out, o, &err))
      << err;
  return out;
}

// run.c's generate(): BOS + prompt, `steps` positions, greedy, stop at BOS (1).
// Returns the emitted ids (prompt tokens after BOS included) and their text.
std::vector<int32_t> RunC(lamina_model* m, const std::string& prompt, int steps,
                          std::string* text) {
  int32_t ids[1024];
  size_t n = 0;
  EXPECT_EQ(lamina_tokenize(m, prompt.data(), prompt.size(), 1, 0, ids, 1024, &n), LAMINA_OK)
      << lamina_last_error();
  std::vector<int32_t> prompt_ids(ids, ids + n);
  EXPECT_EQ(prompt_ids.at(0), 1);
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = steps;
  cp.n_threads = 1;
  cp.kv_type = LAMINA_KV_F32;
  lamina_context* ctx = nullptr;
  EXPECT_EQ(lamina_context_create(m, &cp, &ctx), LAMINA_OK) << lamina_last_error();
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.temperature = 0;
  lamina_sampler* s = nullptr;
  EXPECT_EQ(lamina_sampler_create(m, &sp, &s), LAMINA_OK);
  std::vector<int32_t> out(prompt_ids.begin() + 1, prompt_ids.end());
  // The prompt in one batch (bit-identical to run.c's one-by-one, tested elsewhere).
  EXPECT_EQ(lamina_eval(ctx, prompt_ids.data(), prompt_ids.size()), LAMINA_OK);
  int pos = static_cast<int>(prompt_ids.size());  // positions evaluated
  // run.c: forward at positions 0..steps-1, each followed by one printed token
  // (the sample of the last position too); BOS (1) ends the text.
  for (;;) {
    int32_t next;
    EXPECT_EQ(lamina_sample(s, ctx, &next), LAMINA_OK);
    if (next == 1) break;
    out.push_back(next);
    if (pos >= steps) break;
    EXPECT_EQ(lamina_eval(ctx, &next, 1), LAMINA_OK) << lamina_last_error();
    ++pos;
  }
  lamina_detokenizer* d = nullptr;
  EXPECT_EQ(lamina_detokenizer_create(m, &d), LAMINA_OK);
  text->clear();
  lamina_detokenizer_push(d, 1);
  for (int32_t t : out) *text += lamina_detokenizer_push(d, t);
  *text += lamina_detokenizer_flush(d);
  while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
  lamina_detokenizer_free(d);
  lamina_sampler_free(s);
  lamina_context_free(ctx);
  return out;
}

// Logits of every position of `ids` (one batch) with KV cache type kv.
std::vector<float> AllLogits(lamina_model* m, const std::vector<int32_t>& ids, lamina_kv_type kv,
                             int vocab, uint64_t* kv_bytes) {
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = static_cast<int32_t>(ids.size());
  cp.n_batch = cp.n_ctx;
  cp.n_threads = 1;
  cp.logits_all = 1;
  cp.kv_type = kv;
  lamina_context* ctx = nullptr;
  EXPECT_EQ(lamina_context_create(m, &cp, &ctx), LAMINA_OK) << lamina_last_error();
  if (!ctx) return {};
  lamina_context_info ci;
  EXPECT_EQ(lamina_context_get_info(ctx, &ci), LAMINA_OK);
  EXPECT_EQ(ci.kv_type, kv);
  *kv_bytes = ci.kv_bytes;
  EXPECT_EQ(lamina_eval(ctx, ids.data(), ids.size()), LAMINA_OK) << lamina_last_error();
  std::vector<float> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const float* l = lamina_get_logits_ith(ctx, static_cast<int32_t>(i));
    EXPECT_NE(l, nullptr);
    if (l) out.insert(out.end(), l, l + vocab);
  }
  lamina_context_free(ctx);
  return out;
}

// KL(softmax(a) || softmax(b)) in double.
double Kl(const float* a, const float* b, int n) {
  double ma = a[0], mb = b[0];
  for (int i = 1; i < n; ++i) ma = std::max<double>(ma, a[i]), mb = std::max<double>(mb, b[i]);
  double sa = 0, sb = 0;
  for (int i = 0; i < n; ++i) sa += std::exp(a[i] - ma), sb += std::exp(b[i] - mb);
  const double la = ma + std::log(sa), lb = mb + std::log(sb);
  double kl = 0;
  for (int i = 0; i < n; ++i) {
    const double lpa = a[i] - la, lpb = b[i] - lb;
    kl += std::exp(lpa) * (lpa - lpb);
  }
  return kl;
}

// The int8 KV cache (--kv q8) against the f32 one on real text (run.c's three
// stories, every position's next-token distribution): mean KL <= 1e-3
// (docs/PERFORMANCE.md records the figure this prints).
TEST(Stories260K, KvQ8KlFromF32OnStories) {
  LAMINA_REQUIRE_SHARED(std::string(kDir) + "/stories260K.bin");
  const std::vector<Case> cases =
      ReadReference(SharedDir() + "/" + kDir + "/reference_greedy_runc.txt");
  ASSERT_EQ(cases.size(), 3u);
  lamina_model* m = nullptr;
  ASSERT_EQ(lamina_model_load(Convert("f32").c_str(), nullptr, &m), LAMINA_OK)
      << lamina_last_error();
  std::unique_ptr<lamina_model, void (*)(lamina_model*)> own(m, lamina_model_free);
  lamina_model_info mi;
  ASSERT_EQ(lamina_model_get_info(m, &mi), LAMINA_OK);
  const int vocab = mi.vocab_size;
  double sum = 0, worst = 0, sum16 = 0;
  size_t n = 0, agree = 0;
  uint64_t b32 = 0, b8 = 0, b16 = 0;
  for (const Case& c : cases) {
    int32_t ids[1024];
    size_t nt = 0;
    ASSERT_EQ(lamina_tokenize(m, c.text.data(), c.text.size(), 1, 0, ids, 1024, &nt), LAMINA_OK);
    const std::vector<int32_t> t(ids, ids + std::min<size_t>(nt, 512));
    const std::vector<float> a = AllLogits(m, t, LAMINA_KV_F32, vocab, &b32);
    const std::vector<float> b = AllLogits(m, t, LAMINA_KV_Q8, vocab, &b8);
    const std::vector<float> h = AllLogits(m, t, LAMINA_KV_F16, vocab, &b16);
    ASSERT_EQ(h.size(), a.size());
    ASSERT_EQ(a.size(), t.size() * vocab);
    ASSERT_EQ(b.size(), a.size());
    EXPECT_NE(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << "q8 changed nothing";
    for (size_t i = 0; i < t.size(); ++i) {
      const float* pa = a.data() + i * vocab;
      const float* pb = b.data() + i * vocab;
      const double kl = Kl(pa, pb, vocab);
      EXPECT_GE(kl, -1e-9);
      sum += kl;
      sum16 += Kl(pa, h.data() + i * vocab, vocab);
      worst = std::max(worst, kl);
      ++n;
      agree += std::max_element(pa, pa + vocab) - pa == std::max_element(pb, pb + vocab) - pb;
    }
  }
  const double mean = sum / static_cast<double>(n);
  std::printf(
      "[ kv q8    ] stories260K, %zu positions: mean KL(f32 || q8) %.3g (max %.3g; "
      "f16: %.3g), argmax agrees at %zu/%zu; kv_bytes q8 / f16 %.4f, f32 / f16 %.1f\n",
      n, mean, worst, sum16 / static_cast<double>(n), agree, n,
      static_cast<double>(b8) / static_cast<double>(b16),
      static_cast<double>(b32) / static_cast<double>(b16));
  EXPECT_LE(mean, 1e-3);
}

TEST(Stories260K, F32GreedyMatchesRunC) {
  LAMINA_REQUIRE_SHARED(std::string(kDir) + "/stories260K.bin");
  const std::vector<Case> cases =
      ReadReference(SharedDir() + "/" + kDir + "/reference_greedy_runc.txt");
  ASSERT_EQ(cases.size(), 3u);
  lamina_model* m = nullptr;
  ASSERT_EQ(lamina_model_load(Convert("f32").c_str(), nullptr, &m), LAMINA_OK)
      << lamina_last_error();
  for (const Case& c : cases) {
    ASSERT_EQ(c.steps, 256);
    std::string text;
    RunC(m, c.prompt, c.steps, &text);
    EXPECT_EQ(text, c.text) << "prompt [" << c.prompt << "]";
  }
  lamina_model_free(m);
}

TEST(Stories260K, QuantizedAgreementFloor) {
  LAMINA_REQUIRE_SHARED(std::string(kDir) + "/stories260K.bin");
  lamina_model* f32 = nullptr;
  ASSERT_EQ(lamina_model_load(Convert("f32").c_str(), nullptr, &f32), LAMINA_OK);
  std::string t;
  const std::vector<int32_t> ref = RunC(f32, "Once upon a time", 256, &t);
  lamina_model_free(f32);
  // Floors: measured agreement (leading tokens identical to the f32 run) at
  // the time of writing minus a margin; see the printed figures.
  struct Q {
    const char* scheme;
    size_t floor;
  } qs[] = {{"q8", 55}, {"q4", 16}};
  for (const Q& q : qs) {
    lamina_model* m = nullptr;
    ASSERT_EQ(lamina_model_load(Convert(q.scheme).c_str(), nullptr, &m), LAMINA_OK)
        << lamina_last_error();
    const std::vector<int32_t> got = RunC(m, "Once upon a time", 256, &t);
    size_t prefix = 0, same = 0;
    while (prefix < got.size() && prefix < ref.size() && got[prefix] == ref[prefix]) ++prefix;
    for (size_t i = 0; i < got.size() && i < ref.size(); ++i) same += got[i] == ref[i];
    std::printf("[stories260K %s] %zu leading tokens of %zu agree with f32 (%zu same position)\n",
                q.scheme, prefix, ref.size(), same);
    EXPECT_GE(prefix, q.floor) << q.scheme;
    lamina_model_free(m);
  }
}

}  // namespace
}  // namespace lamina::test
