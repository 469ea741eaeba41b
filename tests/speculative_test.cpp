// Speculative decoding: greedy output identical to plain decoding (every
// drafter, draft length, thread count), the cache left exactly as a plain run
// leaves it, the rejection rule's distribution (chi-square), and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "engine/speculative.h"
#include "lamina/lamina.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"
#include "tools/convert/convert.h"

namespace lamina::test {
namespace {

using engine::AcceptOrResample;
using engine::LookupDraft;
using engine::Pcg32;
using engine::Sampler;

// ------------------------------------------------------------- the pieces

TEST(SpecLookup, LongestMostRecentNgram) {
  // ... 5 6 7 | 1 2 3 9 | 1 2 3 4 5 | 1 2 3  -> "1 2 3" last seen before "4 5"
  const std::vector<int32_t> s = {5, 6, 7, 1, 2, 3, 9, 1, 2, 3, 4, 5, 1, 2, 3};
  EXPECT_EQ(LookupDraft(s, 1, 3, 4), (std::vector<int32_t>{4, 5, 1, 2}));
  EXPECT_EQ(LookupDraft(s, 1, 3, 1), (std::vector<int32_t>{4}));
  int matched = -1;
  LookupDraft(s, 1, 3, 4, &matched);
  EXPECT_EQ(matched, 3);  // the length the lookup gate scores
  LookupDraft({8, 1, 8, 2, 7, 8}, 1, 3, 2, &matched);
  EXPECT_EQ(matched, 1);
  LookupDraft({1, 2, 3, 4}, 1, 3, 4, &matched);
  EXPECT_EQ(matched, 0);
  // Only unigram matches: the token after the most recent earlier "8".
  EXPECT_EQ(LookupDraft({8, 1, 8, 2, 7, 8}, 1, 3, 2), (std::vector<int32_t>{2, 7}));
  EXPECT_TRUE(LookupDraft({1, 2, 3, 4}, 1, 3, 4).empty());  // no repeat
  EXPECT_TRUE(LookupDraft({1}, 1, 3, 4).empty());
  EXPECT_TRUE(LookupDraft(s, 1, 3, 0).empty());
  // ngram_min 2: a unigram match alone does not count.
  EXPECT_TRUE(LookupDraft({8, 1, 8, 2, 7, 8}, 2, 3, 2).empty());
}

// Chi-square of counts against probabilities (cells with expectation >= 5).
double ChiSquare(const std::vector<double>& p, const std::vector<int>& counts, int n, int* df) {
  double chi = 0;
  *df = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = p[i] * n;
    if (e < 5) continue;
    chi += (counts[i] - e) * (counts[i] - e) / e;
    ++*df;
  }
  return chi;
}

TEST(SpecRejection, OutputIsDistributedAsTarget) {
  // Target p over 6 ids; drafts from a deterministic drafter (q = 1 at d) and
  // from a draft distribution q: the result must follow p either way.
  const int kV = 6;
  Sampler::Cand cands[kV];
  const float p[kV] = {0.4f, 0.25f, 0.15f, 0.1f, 0.06f, 0.04f};
  for (int i = 0; i < kV; ++i) cands[i] = {0.f, (i * 5 + 2) % kV};  // ids in any order
  const float q_dense[kV] = {0.05f, 0.5f, 0.1f, 0.2f, 0.05f, 0.1f};
  std::vector<float> scratch;
  const int n = 200000;
  for (int mode = 0; mode < 2; ++mode) {
    Pcg32 rng(7 + mode), pick(99);
    std::vector<int> counts(kV, 0);
    for (int it = 0; it < n; ++it) {
      int32_t d;
      if (mode == 0) {
        d = static_cast<int32_t>(pick.Next() % kV);  // any deterministic proposal
      } else {                                       // d ~ q
        const float u = pick.Uniform();
        float c = 0;
        d = kV - 1;
        for (int i = 0; i < kV; ++i)
          if (u < (c += q_dense[i])) {
            d = i;
            break;
          }
      }
      const int32_t t = AcceptOrResample(cands, p, kV, d, mode ? q_dense : nullptr, rng, &scratch);
      ASSERT_GE(t, 0);
      ASSERT_LT(t, kV);
      for (int i = 0; i < kV; ++i)
        if (cands[i].id == t) ++counts[i];
    }
    std::vector<double> pd(p, p + kV);
    int df = 0;
    const double chi = ChiSquare(pd, counts, n, &df);
    // df = 5: P(chi2 > 25.7) = 1e-4. A wrong rule (e.g. accepting every
    // draft) gives chi-square in the tens of thousands here.
    EXPECT_LT(chi, 25.7) << "mode " << mode;
  }
}

// ------------------------------------------------------------ whole models

struct Loaded {
  lamina_model* m = nullptr;
  ~Loaded() { lamina_model_free(m); }
};

std::string MakeModel(const std::string& name, TestModelSpec s) {
  const std::string path = TestDataDir("spec") + "/" + name + ".lamina";
  std::string err;
  EXPECT_TRUE(WriteTestModel(s, path, &err)) << err;
  return path;
}

lamina_context* NewContext(lamina_model* m, int threads, int n_ctx = 512) {
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = n_ctx;
  cp.n_threads = TestThreads(threads);
  cp.n_batch = 32;
  lamina_context* c = nullptr;
  EXPECT_EQ(lamina_context_create(m, &cp, &c), LAMINA_OK) << lamina_last_error();
  return c;
}

int Collect(int32_t tok, const char*, size_t, void* u) {
  if (tok >= 0) static_cast<std::vector<int32_t>*>(u)->push_back(tok);
  return 0;
}

// The logits after evaluating one more token (empty when the context of n_ctx
// is full): equal bits mean equal caches.
std::vector<float> NextLogits(lamina_model* m, lamina_context* c, int n_ctx) {
  const int32_t extra = 7;
  if (lamina_n_past(c) >= n_ctx || lamina_eval(c, &extra, 1) != LAMINA_OK) return {};
  lamina_model_info mi;
  lamina_model_get_info(m, &mi);
  const float* l = lamina_get_logits(c);
  return std::vector<float>(l, l + mi.vocab_size);
}

struct GenRun {
  std::vector<int32_t> tokens;
  lamina_generate_result res{};
  lamina_speculative_stats stats{};
  std::vector<float> next_logits;  // after evaluating one more token (cache check)
};

// Plain (params == nullptr) or speculative generation from `prompt`.
GenRun Generate(lamina_model* m, const std::vector<int32_t>& prompt, size_t n, float temp,
                uint64_t seed, const lamina_speculative_params* params, int threads = 1) {
  GenRun r;
  lamina_context* c = NewContext(m, threads);
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.temperature = temp;
  sp.seed = seed;
  lamina_sampler* s = nullptr;
  EXPECT_EQ(lamina_sampler_create(m, &sp, &s), LAMINA_OK);
  if (params) {
    EXPECT_EQ(lamina_generate_speculative(c, s, prompt.data(), prompt.size(), n, params, Collect,
                                          &r.tokens, &r.res, &r.stats),
              LAMINA_OK)
        << lamina_last_error();
  } else {
    EXPECT_EQ(lamina_generate(c, s, prompt.data(), prompt.size(), n, Collect, &r.tokens, &r.res),
              LAMINA_OK);
  }
  // The cache must hold exactly prompt + emitted tokens: one more token gives
  // bit-identical logits either way.
  EXPECT_EQ(lamina_n_past(c), static_cast<int32_t>(prompt.size() + r.tokens.size()));
  r.next_logits = NextLogits(m, c, 512);
  lamina_sampler_free(s);
  lamina_context_free(c);
  return r;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A prompt with repeats (lookup has something to match).
std::vector<int32_t> RepeatingPrompt() {
  std::vector<int32_t> p = {256};  // BOS of the byte tokenizer
  for (int r = 0; r < 3; ++r)
    for (int32_t t : {72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 46, 32}) p.push_back(t);
  return p;
}

TEST(SpecGreedy, LookupAndDraftModelMatchPlainExactly) {
  TestModelSpec ts;
  ts.scheme = "q4";
  ts.seed = 11;
  Loaded target, draft_same, draft_other;
  ASSERT_EQ(lamina_model_load(MakeModel("target", ts).c_str(), nullptr, &target.m), LAMINA_OK);
  TestModelSpec ds = ts;
  ds.scheme = "q8";  // the same weights, quantized differently: high acceptance
  ASSERT_EQ(lamina_model_load(MakeModel("draft-q8", ds).c_str(), nullptr, &draft_same.m),
            LAMINA_OK);
  ds.seed = 12;  // an unrelated model of the same vocabulary: low acceptance
  ASSERT_EQ(lamina_model_load(MakeModel("draft-other", ds).c_str(), nullptr, &draft_other.m),
            LAMINA_OK);
  const auto prompt = RepeatingPrompt();
  const size_t n = 80;
  const GenRun plain = Generate(target.m, prompt, n, 0.f, 1, nullptr);
  ASSERT_FALSE(plain.tokens.empty());
  struct Cfg {
    int which;  // 0 lookup, 1 q8 twin, 2 unrelated model, 3 lookup + q8 twin
    int dmax, threads;
  };
  std::vector<Cfg> cfgs;
  for (int which = 0; which < 4; ++which)
    for (int dmax : {1, 3, 8}) cfgs.push_back({which, dmax, 1});
  cfgs.push_back({0, 4, 3});
  cfgs.push_back({1, 4, 3});
  for (const Cfg& cfg : cfgs) {
    lamina_speculative_params p = lamina_speculative_default_params();
    p.draft_max = cfg.dmax;
    lamina_context* dctx = nullptr;
    if (cfg.which == 0) p.lookup = 1;
    if (cfg.which >= 1) {
      dctx = NewContext(cfg.which == 2 ? draft_other.m : draft_same.m, cfg.threads);
      p.draft = dctx;
      p.lookup = cfg.which == 3;  // lookup first, then the draft model
    }
    const GenRun spec = Generate(target.m, prompt, n, 0.f, 1, &p, cfg.threads);
    EXPECT_EQ(spec.tokens, plain.tokens)
        << "drafter " << cfg.which << " draft_max " << cfg.dmax << " threads " << cfg.threads;
    EXPECT_EQ(spec.res.reason, plain.res.reason);
    EXPECT_TRUE(SameBits(spec.next_logits, plain.next_logits)) << "drafter " << cfg.which;
    EXPECT_EQ(spec.stats.generated, spec.tokens.size());
    EXPECT_LE(spec.stats.accepted, spec.stats.drafted);
    if (cfg.which == 1) {  // the q8 twin agrees almost always: far fewer passes
      EXPECT_GT(spec.stats.accepted, spec.stats.drafted / 2);
      EXPECT_LT(spec.stats.target_passes, spec.tokens.size());
    }
    lamina_context_free(dctx);
  }
}

// ------------------------------------------ stop strings and context shift

struct TextRun {
  std::vector<int32_t> tokens;
  std::string text;  // everything the callback received
  lamina_generate_result res{};
  int32_t n_past = 0;
  std::vector<float> next_logits;  // after one more token (cache check)
};

int CollectText(int32_t tok, const char* piece, size_t n, void* u) {
  TextRun* r = static_cast<TextRun*>(u);
  if (tok >= 0) r->tokens.push_back(tok);
  if (piece) r->text.append(piece, n);
  return 0;
}

// lamina_generate_ex (spec == nullptr) or lamina_generate_speculative_ex,
// greedy, with stop strings, in a context of n_ctx (shift: context_shift on,
// n_keep kept). draft_model: a draft context of the same n_ctx is made for it.
TextRun RunEx(lamina_model* m, const std::vector<int32_t>& prompt, size_t n,
              const std::vector<const char*>& stops, const lamina_speculative_params* spec,
              lamina_model* draft_model = nullptr, int n_ctx = 512, bool shift = false,
              int n_keep = 0) {
  TextRun r;
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = n_ctx;
  cp.n_threads = 1;
  cp.n_batch = 32;
  cp.context_shift = shift ? 1 : 0;
  cp.n_keep = n_keep;
  lamina_context* c = nullptr;
  EXPECT_EQ(lamina_context_create(m, &cp, &c), LAMINA_OK) << lamina_last_error();
  lamina_context* d = nullptr;
  if (draft_model) {
    cp.context_shift = 0;  // the target's shift drives the draft's
    EXPECT_EQ(lamina_context_create(draft_model, &cp, &d), LAMINA_OK) << lamina_last_error();
  }
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.temperature = 0.f;
  lamina_sampler* s = nullptr;
  EXPECT_EQ(lamina_sampler_create(m, &sp, &s), LAMINA_OK);
  lamina_generate_params gp = lamina_generate_default_params();
  gp.max_tokens = n;
  gp.stop = stops.empty() ? nullptr : stops.data();
  gp.n_stop = stops.size();
  gp.callback = CollectText;
  gp.user = &r;
  if (spec) {
    lamina_speculative_params p = *spec;
    p.draft = d;
    lamina_speculative_stats st;
    EXPECT_EQ(
        lamina_generate_speculative_ex(c, s, prompt.data(), prompt.size(), &gp, &p, &r.res, &st),
        LAMINA_OK)
        << lamina_last_error();
    EXPECT_EQ(st.generated, r.tokens.size());
  } else {
    EXPECT_EQ(lamina_generate_ex(c, s, prompt.data(), prompt.size(), &gp, &r.res), LAMINA_OK)
        << lamina_last_error();
  }
  r.n_past = lamina_n_past(c);
  r.next_logits = NextLogits(m, c, n_ctx);
  lamina_sampler_free(s);
  lamina_context_free(d);
  lamina_context_free(c);
  return r;
}

// Every drafter setting the stop-string and shift tests compare: lookup, a
// draft model (RunEx makes its context), both; draft lengths 1, 3, 8.
struct SpecSetting {
  lamina_speculative_params p;
  bool draft;
  std::string Name() const {
    return "lookup " + std::to_string(p.lookup) + " draft " + std::to_string(draft) +
           " draft_max " + std::to_string(p.draft_max);
  }
};
std::vector<SpecSetting> SpecSettings() {
  std::vector<SpecSetting> v;
  for (int dmax : {1, 3, 8})
    for (int mode = 0; mode < 3; ++mode) {
      lamina_speculative_params p = lamina_speculative_default_params();
      p.draft_max = dmax;
      p.lookup = mode != 1;  // 0: lookup, 1: draft model, 2: both
      v.push_back({p, mode >= 1});
    }
  return v;
}

void ExpectSameRun(const TextRun& spec, const TextRun& plain, const std::string& what) {
  EXPECT_EQ(spec.tokens, plain.tokens) << what;
  EXPECT_EQ(spec.text, plain.text) << what;
  EXPECT_EQ(spec.res.reason, plain.res.reason) << what;
  EXPECT_EQ(spec.res.n_generated, plain.res.n_generated) << what;
  EXPECT_EQ(spec.n_past, plain.n_past) << what;
  EXPECT_TRUE(SameBits(spec.next_logits, plain.next_logits)) << what;
}

TEST(SpecStopStrings, SameTextReasonAndCacheAsPlain) {
  TestModelSpec ts;
  ts.scheme = "q4";
  ts.seed = 11;
  Loaded target, draft;
  ASSERT_EQ(lamina_model_load(MakeModel("stop-target", ts).c_str(), nullptr, &target.m), LAMINA_OK);
  ts.scheme = "q8";
  ASSERT_EQ(lamina_model_load(MakeModel("stop-draft", ts).c_str(), nullptr, &draft.m), LAMINA_OK);
  const auto prompt = RepeatingPrompt();
  const TextRun free_run = RunEx(target.m, prompt, 80, {}, nullptr);
  ASSERT_GE(free_run.text.size(), 40u);
  // Stops cut from the text (so they occur, spanning tokens), one that never
  // occurs (held-back prefixes, then released), and one longer than a token.
  const std::string mid = free_run.text.substr(25, 3), late = free_run.text.substr(30, 6);
  const std::string early = free_run.text.substr(2, 2);
  const std::vector<std::vector<const char*>> stop_sets = {
      {mid.c_str()}, {late.c_str(), "\x01never"}, {"\x01never", early.c_str()}, {"\x01never"}};
  for (const auto& stops : stop_sets) {
    const TextRun plain = RunEx(target.m, prompt, 80, stops, nullptr);
    if (stops.size() == 1 && std::string(stops[0]) == "\x01never") {
      EXPECT_EQ(plain.text, free_run.text);
      EXPECT_EQ(plain.res.reason, LAMINA_STOP_LENGTH);
    } else {
      EXPECT_EQ(plain.res.reason, LAMINA_STOP_STRING);
    }
    for (const SpecSetting& c : SpecSettings()) {
      const TextRun spec = RunEx(target.m, prompt, 80, stops, &c.p, c.draft ? draft.m : nullptr);
      ExpectSameRun(spec, plain, "stop '" + std::string(stops[0]) + "' " + c.Name());
    }
  }
}

TEST(SpecContextShift, ShiftsTargetAndDraftLikePlain) {
  TestModelSpec ts;
  ts.scheme = "q4";
  ts.seed = 11;
  Loaded target, draft;
  ASSERT_EQ(lamina_model_load(MakeModel("shift-target", ts).c_str(), nullptr, &target.m),
            LAMINA_OK);
  ts.scheme = "q8";
  ASSERT_EQ(lamina_model_load(MakeModel("shift-draft", ts).c_str(), nullptr, &draft.m), LAMINA_OK);
  const auto prompt = RepeatingPrompt();  // 40 tokens in a context of 64
  const int n_ctx = 64, n_keep = 5;
  // Shift on: 150 tokens through several shifts, exactly as plain.
  const TextRun plain = RunEx(target.m, prompt, 150, {}, nullptr, nullptr, n_ctx, true, n_keep);
  ASSERT_EQ(plain.tokens.size(), 150u);
  EXPECT_EQ(plain.res.reason, LAMINA_STOP_LENGTH);
  for (const SpecSetting& c : SpecSettings()) {
    const TextRun spec =
        RunEx(target.m, prompt, 150, {}, &c.p, c.draft ? draft.m : nullptr, n_ctx, true, n_keep);
    ExpectSameRun(spec, plain, "shift: " + c.Name());
  }
  // Shift off: both stop at the full context with the same tokens.
  const TextRun full = RunEx(target.m, prompt, 150, {}, nullptr, nullptr, n_ctx, false);
  EXPECT_EQ(full.res.reason, LAMINA_STOP_CONTEXT_FULL);
  EXPECT_EQ(full.n_past, n_ctx);
  for (const SpecSetting& c : SpecSettings()) {
    const TextRun spec =
        RunEx(target.m, prompt, 150, {}, &c.p, c.draft ? draft.m : nullptr, n_ctx, false);
    ExpectSameRun(spec, full, "no shift: " + c.Name());
  }
}

TEST(SpecSampling, SameSeedSameTokensAndTargetDistribution) {
  TestModelSpec ts;
  ts.seed = 21;
  ts.n_layers = 1;
  Loaded target, draft;
  ASSERT_EQ(lamina_model_load(MakeModel("s-target", ts).c_str(), nullptr, &target.m), LAMINA_OK);
  ts.seed = 22;
  ASSERT_EQ(lamina_model_load(MakeModel("s-draft", ts).c_str(), nullptr, &draft.m), LAMINA_OK);
  lamina_context* dctx = NewContext(draft.m, 1);
  lamina_speculative_params p = lamina_speculative_default_params();
  p.draft = dctx;
  p.draft_max = 1;
  const std::vector<int32_t> prompt = {256, 65, 66};
  const GenRun a = Generate(target.m, prompt, 30, 1.f, 5, &p);
  const GenRun b = Generate(target.m, prompt, 30, 1.f, 5, &p);
  EXPECT_EQ(a.tokens, b.tokens);

  // The second token of a 2-token generation comes from the rejection rule
  // (draft_max 1: t, then the draft of the token after it). Its distribution
  // given the first must be the target's: chi-square against the exact
  // softmax of plain logits.
  lamina_context* c = NewContext(target.m, 1);
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.temperature = 1.f;
  sp.top_k = 0;
  sp.top_p = 1.f;
  sp.min_p = 0.f;
  std::map<int32_t, std::vector<int32_t>> second;  // first token -> second tokens
  const int runs = 2000;
  for (int it = 0; it < runs; ++it) {
    sp.seed = 1000 + it;
    lamina_sampler* s = nullptr;
    ASSERT_EQ(lamina_sampler_create(target.m, &sp, &s), LAMINA_OK);
    lamina_kv_clear(c);
    std::vector<int32_t> got;
    lamina_generate_result res;
    ASSERT_EQ(lamina_generate_speculative(c, s, prompt.data(), prompt.size(), 2, &p, Collect, &got,
                                          &res, nullptr),
              LAMINA_OK)
        << lamina_last_error();
    if (got.size() == 2) second[got[0]].push_back(got[1]);
    lamina_sampler_free(s);
  }
  // The most frequent first token.
  int32_t t0 = -1;
  size_t best = 0;
  for (auto& [t, v] : second)
    if (v.size() > best) best = v.size(), t0 = t;
  ASSERT_GE(best, 200u);
  // Exact target distribution after prompt + t0 (all sampler filters off).
  lamina_kv_clear(c);
  std::vector<int32_t> ctx_tokens = prompt;
  ctx_tokens.push_back(t0);
  ASSERT_EQ(lamina_eval(c, ctx_tokens.data(), ctx_tokens.size()), LAMINA_OK);
  lamina_model_info mi;
  lamina_model_get_info(target.m, &mi);
  const float* l = lamina_get_logits(c);
  double mx = l[0];
  for (int i = 1; i < mi.vocab_size; ++i) mx = std::max(mx, static_cast<double>(l[i]));
  std::vector<double> pr(mi.vocab_size);
  double sum = 0;
  for (int i = 0; i < mi.vocab_size; ++i) sum += pr[i] = std::exp(l[i] - mx);
  for (double& x : pr) x /= sum;
  std::vector<int> counts(mi.vocab_size, 0);
  for (int32_t t : second[t0]) ++counts[t];
  // Merge the cells with small expectation into one (chi-square validity).
  std::vector<double> pm;
  std::vector<int> cm;
  double rest_p = 0;
  int rest_c = 0;
  const int n = static_cast<int>(second[t0].size());
  for (int i = 0; i < mi.vocab_size; ++i) {
    if (pr[i] * n >= 5) {
      pm.push_back(pr[i]);
      cm.push_back(counts[i]);
    } else {
      rest_p += pr[i];
      rest_c += counts[i];
    }
  }
  pm.push_back(rest_p);
  cm.push_back(rest_c);
  int df = 0;
  const double chi = ChiSquare(pm, cm, n, &df);
  ASSERT_GE(df, 1);
  // Wilson-Hilferty 1e-4 upper quantile of chi-square(df).
  const double z = 3.719, k = df;
  const double limit = k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
  EXPECT_LT(chi, limit) << "df " << df << " over " << n << " samples";
  lamina_context_free(c);
  lamina_context_free(dctx);
}

TEST(SpecMalformed, BadArgumentsAndOtherVocabularyAreRefused) {
  TestModelSpec ts;
  Loaded a, b;
  ASSERT_EQ(lamina_model_load(MakeModel("v300", ts).c_str(), nullptr, &a.m), LAMINA_OK);
  ts.vocab = 400;
  ASSERT_EQ(lamina_model_load(MakeModel("v400", ts).c_str(), nullptr, &b.m), LAMINA_OK);
  lamina_context* c = NewContext(a.m, 1);
  lamina_context* other = NewContext(b.m, 1);
  lamina_sampler* s = nullptr;
  ASSERT_EQ(lamina_sampler_create(a.m, nullptr, &s), LAMINA_OK);
  const int32_t prompt[2] = {256, 65};
  lamina_speculative_params p = lamina_speculative_default_params();
  EXPECT_EQ(lamina_generate_speculative(c, s, prompt, 2, 4, &p, nullptr, nullptr, nullptr, nullptr),
            LAMINA_ERR_INVALID_ARG);  // no drafter
  EXPECT_NE(std::string(lamina_last_error()).find("no drafter"), std::string::npos);
  p.draft = other;
  EXPECT_EQ(lamina_generate_speculative(c, s, prompt, 2, 4, &p, nullptr, nullptr, nullptr, nullptr),
            LAMINA_ERR_INVALID_ARG);
  EXPECT_NE(std::string(lamina_last_error()).find("vocabulary"), std::string::npos)
      << lamina_last_error();
  p.draft = c;
  EXPECT_EQ(lamina_generate_speculative(c, s, prompt, 2, 4, &p, nullptr, nullptr, nullptr, nullptr),
            LAMINA_ERR_INVALID_ARG);
  p.draft = nullptr;
  p.lookup = 1;
  p.draft_max = 0;
  EXPECT_EQ(lamina_generate_speculative(c, s, prompt, 2, 4, &p, nullptr, nullptr, nullptr, nullptr),
            LAMINA_ERR_INVALID_ARG);
  p.draft_max = 4;
  EXPECT_EQ(
      lamina_generate_speculative(c, s, prompt, 2, 4, nullptr, nullptr, nullptr, nullptr, nullptr),
      LAMINA_ERR_INVALID_ARG);
  EXPECT_EQ(lamina_n_past(c), 0);  // nothing evaluated
  lamina_sampler_free(s);
  lamina_context_free(other);
  lamina_context_free(c);
}

// ------------------------------------------------------------- stories260K

constexpr const char* kStories = "models/stories260K";

std::string ConvertStories(const std::string& weights) {
  const std::string out = TestDataDir("spec-stories") + "/stories-" + weights + ".lamina";
  convert::ConvertOptions o;
  o.weights = weights;
  o.quiet = true;
  o.tokenizer_path = SharedDir() + "/" + kStories + "/tok512.bin";
  std::string err;
  EXPECT_TRUE(
      convert::ConvertLlama2c(SharedDir() + "/" + kStories + "/stories260K.bin", out, o, &err))
      << err;
  return out;
}

TEST(SpecStories260K, GreedyTextIdenticalWithLookupAndDraft) {
  LAMINA_REQUIRE_SHARED(std::string(kStories) + "/stories260K.bin");
  Loaded f32, q8;
  ASSERT_EQ(lamina_model_load(ConvertStories("f32").c_str(), nullptr, &f32.m), LAMINA_OK);
  ASSERT_EQ(lamina_model_load(ConvertStories("q8").c_str(), nullptr, &q8.m), LAMINA_OK);
  for (const char* text : {"Once upon a time", "Lily and Ben", "The dog"}) {
    int32_t ids[64];
    size_t n = 0;
    ASSERT_EQ(lamina_tokenize(f32.m, text, std::strlen(text), 1, 0, ids, 64, &n), LAMINA_OK);
    const std::vector<int32_t> prompt(ids, ids + n);
    const GenRun plain = Generate(f32.m, prompt, 200, 0.f, 1, nullptr);
    lamina_speculative_params p = lamina_speculative_default_params();
    p.lookup = 1;
    const GenRun look = Generate(f32.m, prompt, 200, 0.f, 1, &p);
    EXPECT_EQ(look.tokens, plain.tokens) << text;
    EXPECT_TRUE(SameBits(look.next_logits, plain.next_logits)) << text;
    lamina_context* d = NewContext(q8.m, 1);
    p.draft = d;
    const GenRun both = Generate(f32.m, prompt, 200, 0.f, 1, &p);
    EXPECT_EQ(both.tokens, plain.tokens) << text;
    EXPECT_LT(both.stats.target_passes, both.tokens.size()) << text;
    lamina_context_free(d);
    // Stop strings on real text: a piece of the story's second half.
    const TextRun free_run = RunEx(f32.m, prompt, 200, {}, nullptr);
    const std::string stop = free_run.text.substr(free_run.text.size() / 2, 5);
    const TextRun plain_stop = RunEx(f32.m, prompt, 200, {stop.c_str()}, nullptr);
    EXPECT_EQ(plain_stop.res.reason, LAMINA_STOP_STRING) << text;
    lamina_speculative_params lp = lamina_speculative_default_params();
    lp.lookup = 1;
    ExpectSameRun(RunEx(f32.m, prompt, 200, {stop.c_str()}, &lp), plain_stop,
                  std::string(text) + " stop '" + stop + "'");
    std::printf(
        "[spec] \"%s\": %zu tokens; lookup: %llu passes, %llu/%llu accepted; "
        "lookup+q8 draft: %llu passes, %llu/%llu accepted\n",
        text, plain.tokens.size(), static_cast<unsigned long long>(look.stats.target_passes),
        static_cast<unsigned long long>(look.stats.accepted),
        static_cast<unsigned long long>(look.stats.drafted),
        static_cast<unsigned long long>(both.stats.target_passes),
        static_cast<unsigned long long>(both.stats.accepted),
        static_cast<unsigned long long>(both.stats.drafted));
  }
}

}  // namespace
}  // namespace lamina::test
