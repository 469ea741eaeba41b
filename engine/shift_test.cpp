// Context shift (Context::Shift, lamina_kv_shift, lamina_generate's
// context_shift policy). The accuracy of re-rotating the moved keys by the
// position delta is measured against a fresh evaluation of the kept tokens:
// layer 0's keys depend only on the token and its position, so there the two
// must agree to rounding (f32 KV: a few f32 ulps; f16 KV: one f16 rounding).
// Later layers differ by construction (the kept tokens were computed while the
// dropped ones were visible), so the logits are compared for the record and
// against a shift that moves the keys without re-rotating them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/rope.h"
#include "kernels/ref/fp16.h"
#include "lamina/lamina.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

using engine::Context;
using engine::ContextOptions;
using engine::EvalStatus;
using engine::Model;

std::unique_ptr<Model> LoadModel(const std::string& scheme) {
  TestModelSpec spec;
  spec.scheme = scheme;
  spec.seed = 21;
  const std::string path = TestDataDir("shift") + "/" + scheme + ".lamina";
  std::string err;
  EXPECT_TRUE(WriteTestModel(spec, path, &err)) << err;
  std::unique_ptr<Model> m = Model::Load(path, engine::ModelOptions(), &err);
  EXPECT_TRUE(m) << err;
  return m;
}

std::unique_ptr<Context> NewCtx(const Model& m, kern::KvType kv, int n_ctx = 128) {
  ContextOptions o;
  o.n_ctx = n_ctx;
  o.n_threads = TestThreads(2);
  o.n_batch = 32;
  o.kv_type = kv;
  std::string err;
  std::unique_ptr<Context> c = Context::Create(m, o, &err);
  EXPECT_TRUE(c) << err;
  return c;
}

float KvAt(const Context& c, int layer, int which, size_t i) {
  const uint8_t* p = c.kv_rows(layer, which);
  if (c.kv_type() == kern::KvType::kF32) return reinterpret_cast<const float*>(p)[i];
  return F16ToF32(reinterpret_cast<const uint16_t*>(p)[i]);
}

std::vector<int32_t> Tokens(int n, int vocab, uint64_t seed) {
  TestRng r(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(r.Next() % vocab);
  return t;
}

struct ShiftCase {
  kern::KvType kv;
  double key_tol;  // max |shifted - fresh| / max |fresh| over layer 0's moved keys
};

void CheckShiftAgainstFresh(const ShiftCase& sc) {
  std::unique_ptr<Model> m = LoadModel("f32");
  ASSERT_TRUE(m);
  const engine::Config& cfg = m->config();
  const int n = 100, keep = 10, discard = 40, kvd = cfg.kv_dim;
  const std::vector<int32_t> t = Tokens(n, cfg.vocab, 3);
  std::vector<int32_t> kept(t.begin(), t.begin() + keep);
  kept.insert(kept.end(), t.begin() + keep + discard, t.end());
  const int nk = static_cast<int>(kept.size());
  std::string err;

  std::unique_ptr<Context> a = NewCtx(*m, sc.kv);
  std::unique_ptr<Context> naive = NewCtx(*m, sc.kv);
  std::unique_ptr<Context> fresh = NewCtx(*m, sc.kv);
  ASSERT_EQ(a->Eval(t.data(), n, &err), EvalStatus::kOk) << err;
  ASSERT_EQ(naive->Eval(t.data(), n, &err), EvalStatus::kOk) << err;
  ASSERT_EQ(fresh->Eval(kept.data(), nk, &err), EvalStatus::kOk) << err;
  // Layer 1's keys before the shift, for a float64 check of the rotation itself.
  std::vector<double> k1(static_cast<size_t>(n) * kvd);
  for (size_t i = 0; i < k1.size(); ++i) k1[i] = KvAt(*a, 1, 0, i);

  ASSERT_FALSE(a->Shift(keep, n - keep + 1));
  ASSERT_FALSE(a->Shift(-1, 4));
  ASSERT_FALSE(a->Shift(keep, 0));
  ASSERT_TRUE(a->Shift(keep, discard));
  EXPECT_EQ(a->n_past(), nk);
  EXPECT_EQ(a->history(), kept);
  ASSERT_NE(a->logits(), nullptr);  // still the last token's logits
  // The same move without re-rotation (what a shift that forgets RoPE does).
  const size_t row = naive->kv_row_bytes();
  for (int l = 0; l < cfg.n_layers; ++l)
    for (int w = 0; w < 2; ++w)
      std::memmove(naive->kv_rows(l, w) + keep * row, naive->kv_rows(l, w) + (keep + discard) * row,
                   (n - keep - discard) * row);
  naive->RestoreTokens(kept.data(), nk, nullptr);

  // Layer 0: values bit-identical, kept keys bit-identical, moved keys to rounding.
  double max_err = 0, max_abs = 0;
  for (int p = 0; p < nk; ++p)
    for (int i = 0; i < kvd; ++i) {
      const size_t idx = static_cast<size_t>(p) * kvd + i;
      ASSERT_EQ(KvAt(*a, 0, 1, idx), KvAt(*fresh, 0, 1, idx)) << "value row " << p;
      const float ka = KvAt(*a, 0, 0, idx), kf = KvAt(*fresh, 0, 0, idx);
      if (p < keep) {
        ASSERT_EQ(ka, kf) << "kept key row " << p;
      }
      max_err = std::max(max_err, std::fabs(static_cast<double>(ka) - kf));
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(kf)));
    }
  const double rel = max_err / max_abs;
  // Layer 1: the stored keys rotated by -discard in float64.
  const std::vector<double> f = engine::RopeFrequencies(cfg);
  double rot_err = 0;
  for (int p = keep; p < nk; ++p)
    for (int h = 0; h < kvd / cfg.head_dim; ++h)
      for (int j = 0; j < cfg.head_dim / 2; ++j) {
        const size_t src = static_cast<size_t>(p + discard) * kvd + h * cfg.head_dim + 2 * j;
        const size_t dst = static_cast<size_t>(p) * kvd + h * cfg.head_dim + 2 * j;
        const double ang = -static_cast<double>(discard) * f[j];
        const double x = k1[src] * std::cos(ang) - k1[src + 1] * std::sin(ang);
        const double y = k1[src] * std::sin(ang) + k1[src + 1] * std::cos(ang);
        rot_err = std::max(rot_err, std::fabs(x - KvAt(*a, 1, 0, dst)));
        rot_err = std::max(rot_err, std::fabs(y - KvAt(*a, 1, 0, dst + 1)));
      }
  // Next token's logits: shifted vs fresh vs the unrotated move.
  const int32_t next = t[5];
  ASSERT_EQ(a->Eval(&next, 1, &err), EvalStatus::kOk) << err;
  ASSERT_EQ(fresh->Eval(&next, 1, &err), EvalStatus::kOk) << err;
  ASSERT_EQ(naive->Eval(&next, 1, &err), EvalStatus::kOk) << err;
  double d_shift = 0, d_naive = 0, l_abs = 0;
  for (int v = 0; v < cfg.vocab; ++v) {
    d_shift = std::max(d_shift, std::fabs(double(a->logits()[v]) - fresh->logits()[v]));
    d_naive = std::max(d_naive, std::fabs(double(naive->logits()[v]) - fresh->logits()[v]));
    l_abs = std::max(l_abs, std::fabs(double(fresh->logits()[v])));
  }
  std::printf(
      "shift %s KV: layer-0 keys max|shifted-fresh| %.3g (%.3g of max|k| %.3g); layer-1 "
      "rotation vs float64 %.3g; next-token logits max|shifted-fresh| %.4g, unrotated move %.4g "
      "(max|logit| %.3g)\n",
      sc.kv == kern::KvType::kF32 ? "f32" : "f16", max_err, rel, max_abs, rot_err, d_shift, d_naive,
      l_abs);
  ::testing::Test::RecordProperty("layer0_key_rel_err", std::to_string(rel));
  ::testing::Test::RecordProperty("logits_shift_vs_fresh", std::to_string(d_shift));
  EXPECT_LE(rel, sc.key_tol);
  EXPECT_LE(rot_err, sc.kv == kern::KvType::kF32 ? 1e-5 * max_abs : 2e-3 * max_abs);
  EXPECT_LT(d_shift, d_naive);
}

// f32 KV: the rotation adds a few f32 roundings (2^-24 each).
TEST(ContextShift, ReRotatedKeysMatchFreshEvaluationF32) {
  CheckShiftAgainstFresh({kern::KvType::kF32, 1e-6});
}
// f16 KV: one extra f16 rounding of each moved key (2^-11 relative, so
// <= 2^-11 of max|k| plus the f32 part): the same error as storing a freshly
// computed key in f16, hence no re-evaluation is needed.
TEST(ContextShift, ReRotatedKeysMatchFreshEvaluationF16) {
  CheckShiftAgainstFresh({kern::KvType::kF16, 1.0 / 1024});
}

struct CtxDel {
  void operator()(lamina_context* c) const { lamina_context_free(c); }
};

// A 512-position context generates 2000 tokens: lamina_generate shifts (keeping
// the first 8 tokens) whenever the cache is full.
TEST(ContextShift, Generate2000TokensIn512Context) {
  TestModelSpec spec;
  spec.scheme = "q4";
  spec.seed = 7;
  const std::string path = TestDataDir("shift") + "/gen.lamina";
  std::string err;
  ASSERT_TRUE(WriteTestModel(spec, path, &err)) << err;
  lamina_model* m = nullptr;
  ASSERT_EQ(lamina_model_load(path.c_str(), nullptr, &m), LAMINA_OK);
  lamina_context_params p = lamina_context_default_params();
  EXPECT_EQ(p.context_shift, 0);  // the default stays an error / a stop
  EXPECT_EQ(p.n_keep, 0);
  p.n_ctx = 512;
  p.n_threads = 1;  // a tiny model: threads would only add synchronisation
  p.context_shift = 1;
  p.n_keep = 8;
  lamina_context* c = nullptr;
  ASSERT_EQ(lamina_context_create(m, &p, &c), LAMINA_OK) << lamina_last_error();
  std::unique_ptr<lamina_context, CtxDel> cp(c);
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.seed = 1;
  lamina_sampler* s = nullptr;
  ASSERT_EQ(lamina_sampler_create(m, &sp, &s), LAMINA_OK);
  const std::vector<int32_t> prompt = Tokens(40, 256, 9);
  struct St {
    size_t n = 0;
    int max_past = 0;
    lamina_context* c;
  } st;
  st.c = c;
  auto cb = [](int32_t t, const char*, size_t, void* u) -> int {
    St* s = static_cast<St*>(u);
    if (t >= 0) ++s->n;
    s->max_past = std::max(s->max_past, lamina_n_past(s->c));
    return 0;
  };
  std::vector<int32_t> first(prompt.begin(), prompt.begin() + 8);
  std::vector<int32_t> next = prompt;
  int calls = 0;
  while (st.n < 2000 && calls++ < 200) {
    lamina_generate_result r;
    ASSERT_EQ(lamina_generate(c, s, next.data(), next.size(), 2000 - st.n, cb, &st, &r), LAMINA_OK)
        << lamina_last_error();
    ASSERT_NE(r.reason, LAMINA_STOP_CONTEXT_FULL);
    next = {65};  // after a stop token, go on with another prompt token
  }
  EXPECT_GE(st.n, 2000u);
  EXPECT_LE(st.max_past, 512);
  EXPECT_GT(lamina_n_past(c), 8);
  // The first n_keep tokens survived every shift.
  std::vector<int32_t> cached(512);
  size_t n_cached = 0;
  ASSERT_EQ(lamina_kv_tokens(c, cached.data(), cached.size(), &n_cached), LAMINA_OK);
  EXPECT_EQ(n_cached, static_cast<size_t>(lamina_n_past(c)));
  EXPECT_TRUE(std::equal(first.begin(), first.end(), cached.begin()));
  EXPECT_EQ(lamina_kv_shift(c, 8, lamina_n_past(c)), LAMINA_ERR_INVALID_ARG);
  EXPECT_EQ(lamina_kv_shift(c, -1, 1), LAMINA_ERR_INVALID_ARG);
  EXPECT_EQ(lamina_kv_shift(c, 0, 0), LAMINA_ERR_INVALID_ARG);
  const int32_t before = lamina_n_past(c);
  ASSERT_EQ(lamina_kv_shift(c, 8, 10), LAMINA_OK);
  EXPECT_EQ(lamina_n_past(c), before - 10);
  EXPECT_NE(lamina_get_logits(c), nullptr);
  // n_keep must be below n_ctx.
  p.n_keep = 512;
  lamina_context* bad = nullptr;
  EXPECT_EQ(lamina_context_create(m, &p, &bad), LAMINA_ERR_INVALID_ARG);
  EXPECT_EQ(bad, nullptr);
  lamina_sampler_free(s);
  cp.reset();
  lamina_model_free(m);
}

// The n_keep prefix is intact after many shifts (engine level: the history).
TEST(ContextShift, KeepsPrefixAcrossShifts) {
  std::unique_ptr<Model> m = LoadModel("q4");
  ASSERT_TRUE(m);
  std::unique_ptr<Context> c = NewCtx(*m, kern::KvType::kF16, 64);
  const std::vector<int32_t> t = Tokens(300, m->config().vocab, 4);
  std::string err;
  for (int i = 0; i < 300; ++i) {
    if (c->n_past() == c->n_ctx()) {
      ASSERT_TRUE(c->Shift(6, (c->n_past() - 6) / 2));
    }
    ASSERT_EQ(c->Eval(&t[i], 1, &err), EvalStatus::kOk) << err;
    const size_t n = std::min<size_t>(6, c->history().size());
    ASSERT_TRUE(std::equal(t.begin(), t.begin() + n, c->history().begin()));
    ASSERT_EQ(c->history().back(), t[i]);
  }
}

}  // namespace
}  // namespace lamina::test

namespace lamina::test {
namespace {

// A prompt that does not fit: an error by default; with context_shift, enough
// of the cache after n_keep is dropped first.
TEST(ContextShift, PromptOverflowShiftsOnlyWhenEnabled) {
  TestModelSpec spec;
  spec.scheme = "q4";
  spec.seed = 7;
  const std::string path = TestDataDir("shift") + "/prompt.lamina";
  std::string err;
  ASSERT_TRUE(WriteTestModel(spec, path, &err)) << err;
  lamina_model* m = nullptr;
  ASSERT_EQ(lamina_model_load(path.c_str(), nullptr, &m), LAMINA_OK);
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.temperature = 0;
  lamina_sampler* s = nullptr;
  ASSERT_EQ(lamina_sampler_create(m, &sp, &s), LAMINA_OK);
  const std::vector<int32_t> t = Tokens(60, 256, 5), prompt = Tokens(30, 256, 6);
  for (int shift = 0; shift < 2; ++shift) {
    lamina_context_params p = lamina_context_default_params();
    p.n_ctx = 64;
    p.n_threads = 1;
    p.context_shift = shift;
    p.n_keep = 4;
    lamina_context* c = nullptr;
    ASSERT_EQ(lamina_context_create(m, &p, &c), LAMINA_OK);
    ASSERT_EQ(lamina_eval(c, t.data(), t.size()), LAMINA_OK);
    lamina_generate_result r;
    const lamina_status st =
        lamina_generate(c, s, prompt.data(), prompt.size(), 2, nullptr, nullptr, &r);
    if (!shift) {
      EXPECT_EQ(st, LAMINA_ERR_CONTEXT_FULL);
      EXPECT_EQ(lamina_n_past(c), 60);
    } else {
      ASSERT_EQ(st, LAMINA_OK) << lamina_last_error();
      // 60 cached + 30 > 64: max(half of 56, 26) = 28 dropped, then 30 + up to 2 added (64: no
      // second shift).
      std::vector<int32_t> cached(64);
      size_t n = 0;
      ASSERT_EQ(lamina_kv_tokens(c, cached.data(), cached.size(), &n), LAMINA_OK);
      EXPECT_EQ(n, 32u + 30u + r.n_generated);
      EXPECT_TRUE(std::equal(t.begin(), t.begin() + 4, cached.begin()));
      EXPECT_TRUE(std::equal(t.begin() + 32, t.end(), cached.begin() + 4));
      EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), cached.begin() + 32));
    }
    lamina_context_free(c);
  }
  lamina_sampler_free(s);
  lamina_model_free(m);
}

// The int8 KV cache shifts too: a moved key row is dequantized, rotated by the
// position delta and quantized again; the kept prefix's rows are untouched and
// the shifted context keeps decoding, within the q8 cache's error of a fresh
// evaluation of the same tokens.
TEST(ContextShift, Q8CacheShiftsAndKeepsDecoding) {
  TestModelSpec spec;
  spec.scheme = "f32";
  spec.seed = 9;
  const std::string path = TestDataDir("shift") + "/q8.lamina";
  std::string err;
  ASSERT_TRUE(WriteTestModel(spec, path, &err)) << err;
  engine::ModelOptions mo;
  mo.kernels = "ref";
  std::unique_ptr<Model> m = Model::Load(path, mo, &err);
  ASSERT_TRUE(m) << err;
  ContextOptions o;
  o.n_ctx = 128;
  o.n_threads = 1;
  o.kv_type = kern::KvType::kQ8;
  std::unique_ptr<Context> a = Context::Create(*m, o, &err), b = Context::Create(*m, o, &err);
  ASSERT_TRUE(a && b) << err;
  const std::vector<int32_t> t = Tokens(100, 256, 3);
  ASSERT_EQ(a->Eval(t.data(), 100, &err), EvalStatus::kOk) << err;
  const size_t row = a->kv_row_bytes();
  std::vector<uint8_t> kept_k(a->kv_rows(0, 0), a->kv_rows(0, 0) + 10 * row);
  ASSERT_TRUE(a->Shift(10, 40));
  EXPECT_EQ(a->n_past(), 60);
  EXPECT_EQ(std::memcmp(a->kv_rows(0, 0), kept_k.data(), kept_k.size()), 0);
  // The same 60 tokens evaluated fresh at positions 0..59.
  std::vector<int32_t> kept(t.begin(), t.begin() + 10);
  kept.insert(kept.end(), t.begin() + 50, t.end());
  ASSERT_EQ(b->Eval(kept.data(), 60, &err), EvalStatus::kOk) << err;
  const int32_t next = 5;
  ASSERT_EQ(a->Eval(&next, 1, &err), EvalStatus::kOk) << err;
  ASSERT_EQ(b->Eval(&next, 1, &err), EvalStatus::kOk) << err;
  double max_d = 0, max_abs = 0;
  for (int i = 0; i < m->config().vocab; ++i) {
    ASSERT_TRUE(std::isfinite(a->logits()[i]));
    max_d = std::max(max_d, std::fabs(double{a->logits()[i]} - b->logits()[i]));
    max_abs = std::max(max_abs, std::fabs(double{b->logits()[i]}));
  }
  std::printf(
      "[ q8 shift: next-token logits differ from a fresh evaluation by %.3g (max |logit| "
      "%.3g) ]\n",
      max_d, max_abs);
  // The kept tokens were computed while the dropped ones were visible, so the
  // logits differ from a fresh evaluation by more than rounding (f16: ~2 of 6.6,
  // see above); a bound against a broken move or rotation (garbage rows).
  EXPECT_LT(max_d, max_abs);
}

}  // namespace
}  // namespace lamina::test
