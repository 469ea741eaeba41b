// lamina-convert --calib's pipeline (calibrate.h) and its Hessians
// (hessian.h). The pipeline runs the model once, block by block over cached
// hidden states; it must give exactly what the straightforward pipeline gives
// (a whole-model forward pass per block through Context::Eval, each block
// seeing the already-quantized earlier ones), and the same for any thread
// count.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"
#include "tools/convert/calibrate.h"
#include "tools/convert/hessian.h"

namespace lamina::convert {
namespace {

using test::TestRng;

std::vector<float> RandomRows(int M, int K, uint64_t seed) {
  TestRng rng(seed);
  std::vector<float> x(static_cast<size_t>(M) * K);
  for (float& v : x) v = rng.Normal() * (1.f + static_cast<float>(rng.Next() % 4));
  return x;
}

// Against double sums of the same products, and bit for bit the same for any
// thread count and kernel tier.
TEST(Hessian, MatchesDoubleSumsAndIsExactAcrossThreadsAndTiers) {
  const int K = 100, chunks[3] = {37, 8, 64};
  std::vector<std::vector<float>> xs;
  for (int i = 0; i < 3; ++i) xs.push_back(RandomRows(chunks[i], K, 11 + i));
  std::vector<double> want(static_cast<size_t>(K) * K, 0.0);
  for (int i = 0; i < 3; ++i)
    for (int m = 0; m < chunks[i]; ++m)
      for (int r = 0; r < K; ++r)
        for (int c = 0; c <= r; ++c)
          want[static_cast<size_t>(r) * K + c] +=
              static_cast<double>(xs[i][static_cast<size_t>(m) * K + r]) *
              xs[i][static_cast<size_t>(m) * K + c];
  kern::Tier best;
  char e[128];
  ASSERT_TRUE(kern::SelectTier(nullptr, &best, e, sizeof e)) << e;
  std::vector<double> first;
  for (const kern::Tier tier : {kern::Tier::kRef, best})
    for (const int nt : {1, test::TestThreads(2), test::TestThreads(3)}) {
      engine::ThreadPool pool(nt);
      HessianAccumulator acc(K, kern::Kernels(tier));
      for (int i = 0; i < 3; ++i) acc.Add(xs[i].data(), chunks[i], pool);
      const std::vector<double>& h = acc.H();
      for (int r = 0; r < K; ++r)
        for (int c = 0; c < K; ++c) {
          const size_t i = static_cast<size_t>(r) * K + c;
          if (c > r) {
            ASSERT_EQ(h[i], 0.0) << r << "," << c;  // upper triangle untouched
          } else {
            ASSERT_NEAR(h[i], want[i], 1e-5 * (std::fabs(want[i]) + std::sqrt(want[r * K + r])))
                << r << "," << c;
          }
        }
      if (first.empty()) first = h;
      EXPECT_EQ(std::memcmp(h.data(), first.data(), h.size() * sizeof(double)), 0)
          << kern::TierName(tier) << ", " << nt << " threads";
    }
}

constexpr int kSlotOf[7] = {0, 0, 0, 1, 2, 2, 3};

// The straightforward pipeline: per block, reload the model file (earlier
// blocks already rewritten with their quantized values), run Eval over every
// window, accumulate block l's Hessians, GPTQ its linears, write them back.
Q4Plan ReferencePlan(const std::string& path, const std::vector<int32_t>& ids,
                     const CalibOptions& o) {
  Q4Plan plan;
  std::string err;
  for (int l = 0;; ++l) {
    std::unique_ptr<engine::Model> m = engine::Model::Load(path, engine::ModelOptions(), &err);
    EXPECT_TRUE(m) << err;
    if (!m || l == m->config().n_layers) break;
    const engine::Config& c = m->config();
    engine::ContextOptions co;
    co.n_ctx = o.window;
    co.n_batch = o.window;  // one chunk per window, as the cached pipeline
    co.n_threads = 1;
    co.kv_type = kern::KvType::kF32;
    std::unique_ptr<engine::Context> ctx = engine::Context::Create(*m, co, &err);
    EXPECT_TRUE(ctx) << err;
    engine::ThreadPool pool(1);
    const int widths[4] = {c.dim, c.q_dim, c.dim, c.ffn_dim};
    std::vector<std::unique_ptr<HessianAccumulator>> acc;
    for (int s = 0; s < 4; ++s) acc.emplace_back(new HessianAccumulator(widths[s], m->kernels()));
    ctx->SetLinearInputObserver([&](int layer, int linear, const float* x, int M, int) {
      if (layer == l) acc[kSlotOf[linear]]->Add(x, M, pool);
    });
    for (size_t w = 0; w + o.window <= ids.size(); w += o.window) {
      std::vector<int32_t> win(ids.begin() + w, ids.begin() + w + o.window);
      const Tokenizer* tk = m->tokenizer();
      const int32_t bos = tk ? tk->bos_id() : c.bos_id;
      if (bos >= 0) win[0] = bos;
      ctx->Clear();
      EXPECT_EQ(ctx->Eval(win.data(), o.window, &err), engine::EvalStatus::kOk) << err;
    }
    for (int li = 0; li < 7; ++li) {
      const std::string name = "blk." + std::to_string(l) + "." + format::kLinearNames[li];
      const format::TensorEntry* t = m->file().Find(name);
      const uint64_t N = t->shape[0], K = t->shape[1];
      std::vector<double> h = acc[kSlotOf[li]]->H();
      for (uint64_t i = 0; i < K; ++i)
        for (uint64_t j = i + 1; j < K; ++j) h[i * K + j] = h[j * K + i];
      std::vector<float> w(N * K);
      std::memcpy(w.data(), m->file().Data(*t), w.size() * sizeof(float));
      EXPECT_TRUE(GptqQuantize(w.data(), N, K, h.data(), o.damp, o.act_order, &plan[name], &err))
          << err;
      std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
      f.seekp(static_cast<std::streamoff>(t->offset));
      f.write(reinterpret_cast<const char*>(w.data()), static_cast<std::streamsize>(w.size() * 4));
    }
  }
  return plan;
}

void ExpectSamePlans(const Q4Plan& a, const Q4Plan& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& kv : a) {
    const auto it = b.find(kv.first);
    ASSERT_NE(it, b.end()) << what << ": " << kv.first;
    EXPECT_EQ(kv.second.q, it->second.q) << what << ": " << kv.first;
    EXPECT_EQ(kv.second.scales, it->second.scales) << what << ": " << kv.first;
  }
}

std::string CopyOf(const std::string& src, const std::string& dst) {
  std::ifstream in(src, std::ios::binary);
  std::ofstream out(dst, std::ios::binary);
  out << in.rdbuf();
  return dst;
}

TEST(Calibrate, BlockwiseEqualsWholeModelPerBlockForAnyThreadCount) {
  test::TestModelSpec spec;
  spec.n_layers = 3;
  spec.ffn = 128;
  spec.hadamard = true;  // ffn_down's H is of its input after the online Hadamard
  spec.seed = 5;
  const std::string dir = test::TestDataDir("calibrate");
  const std::string f32 = dir + "/f32.lamina";
  std::string err;
  ASSERT_TRUE(test::WriteTestModel(spec, f32, &err)) << err;
  TestRng rng(3);
  std::vector<int32_t> ids(3 * 48 + 17);  // 3 windows of 48 and a partial one
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.Next() % 258);
  CalibOptions o;
  o.window = 48;
  o.quiet = true;
  const Q4Plan want = ReferencePlan(CopyOf(f32, dir + "/ref.lamina"), ids, o);
  ASSERT_EQ(want.size(), 21u);
  for (const int nt : {1, test::TestThreads(2), test::TestThreads(3)}) {
    o.threads = nt;
    Q4Plan got;
    ASSERT_TRUE(CalibrateGptqIds(CopyOf(f32, dir + "/c.lamina"), ids, "ids", o, &got, &err)) << err;
    ExpectSamePlans(want, got, std::to_string(nt) + " threads");
  }
  // --calib-tokens: the first window only, and no longer the same plan.
  o.max_tokens = 48;
  Q4Plan one;
  ASSERT_TRUE(CalibrateGptqIds(CopyOf(f32, dir + "/c.lamina"), ids, "ids", o, &one, &err)) << err;
  ASSERT_EQ(one.size(), want.size());
  EXPECT_NE(one.at("blk.2.ffn_down").q, want.at("blk.2.ffn_down").q);
}

TEST(CalibrateMalformed, ShortOrOutOfVocabularyIds) {
  test::TestModelSpec spec;
  const std::string f32 = test::TestDataDir("calibrate_bad") + "/f32.lamina";
  std::string err;
  ASSERT_TRUE(test::WriteTestModel(spec, f32, &err)) << err;
  CalibOptions o;
  o.window = 32;
  o.quiet = true;
  Q4Plan plan;
  std::vector<int32_t> ids(31, 65);
  EXPECT_FALSE(CalibrateGptqIds(f32, ids, "my-source", o, &plan, &err));
  EXPECT_NE(err.find("my-source: 31 tokens, shorter than one window of 32"), std::string::npos)
      << err;
  ids.assign(40, 65);
  ids[35] = 300;  // the vocabulary is 300 ids
  EXPECT_FALSE(CalibrateGptqIds(f32, ids, "my-source", o, &plan, &err));
  EXPECT_NE(err.find("my-source: token id 300 outside the vocabulary"), std::string::npos) << err;
  EXPECT_TRUE(plan.empty());
}

}  // namespace
}  // namespace lamina::convert
