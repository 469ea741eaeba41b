// Context::EmbedTokens + EvalLayer (lamina-convert --calib runs the model one
// block at a time over cached hidden states) compute what Eval computes: the
// input of every linear of every block, as the observer sees it, is the same
// bit for bit, whatever the chunking, for float and q4 models.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

using engine::Context;
using engine::EvalStatus;
using engine::Model;

// (layer, linear) -> the observed inputs, rows of every call appended.
using Observed = std::map<std::pair<int, int>, std::vector<float>>;

std::unique_ptr<Context> NewCtx(const Model& m, int n_batch, Observed* seen) {
  engine::ContextOptions o;
  o.n_ctx = 128;
  o.n_batch = n_batch;
  o.n_threads = TestThreads(2);
  o.kv_type = kern::KvType::kF32;
  std::string err;
  std::unique_ptr<Context> c = Context::Create(m, o, &err);
  EXPECT_TRUE(c) << err;
  if (c)
    c->SetLinearInputObserver([seen](int layer, int linear, const float* x, int M, int K) {
      std::vector<float>& v = (*seen)[{layer, linear}];
      v.insert(v.end(), x, x + static_cast<size_t>(M) * K);
    });
  return c;
}

void CheckBlockwiseMatchesEval(const TestModelSpec& spec, const std::string& name) {
  const std::string path = TestDataDir("eval_layer") + "/" + name + ".lamina";
  std::string err;
  ASSERT_TRUE(WriteTestModel(spec, path, &err)) << err;
  std::unique_ptr<Model> m = Model::Load(path, engine::ModelOptions(), &err);
  ASSERT_TRUE(m) << err;
  const int n = 77, dim = m->config().dim;
  std::vector<int32_t> toks(n);
  for (int i = 0; i < n; ++i) toks[static_cast<size_t>(i)] = (i * 37 + 5) % m->config().vocab;

  Observed want, got, got_only;
  bool seen_only = false;
  std::unique_ptr<Context> a = NewCtx(*m, 32, &want);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->Eval(toks.data(), n, &err), EvalStatus::kOk) << err;

  // Block by block over all tokens, in chunks of 20 (not Eval's 32).
  std::unique_ptr<Context> b = NewCtx(*m, 20, &got);
  ASSERT_TRUE(b);
  b->SetLinearInputObserver([&](int layer, int linear, const float* x, int M, int K) {
    std::vector<float>& v = (seen_only ? got_only : got)[{layer, linear}];
    v.insert(v.end(), x, x + static_cast<size_t>(M) * K);
  });
  std::vector<float> hs(static_cast<size_t>(n) * dim);
  b->EmbedTokens(toks.data(), n, hs.data());
  for (int l = 0; l < m->config().n_layers; ++l)
    for (int p = 0; p < n; p += 20) {
      const int M = std::min(20, n - p);
      // First observe_only on a copy (the calibration's first run): the
      // same observed inputs, and the row itself stays the block's input.
      std::vector<float> copy(hs.begin() + static_cast<ptrdiff_t>(p) * dim,
                              hs.begin() + static_cast<ptrdiff_t>(p + M) * dim);
      seen_only = true;
      ASSERT_EQ(b->EvalLayer(l, copy.data(), M, p, &err, true), EvalStatus::kOk) << err;
      seen_only = false;
      ASSERT_EQ(b->EvalLayer(l, hs.data() + static_cast<size_t>(p) * dim, M, p, &err),
                EvalStatus::kOk)
          << err;
    }
  EXPECT_EQ(b->n_past(), 0);  // the token bookkeeping is Eval's alone
  ASSERT_EQ(want.size(), static_cast<size_t>(4 * m->config().n_layers));
  for (const Observed* o : {&got, &got_only}) {
    ASSERT_EQ(o->size(), want.size());
    for (const auto& kv : want) {
      const std::vector<float>& g = o->at(kv.first);
      ASSERT_EQ(g.size(), kv.second.size()) << kv.first.first << "/" << kv.first.second;
      EXPECT_EQ(std::memcmp(g.data(), kv.second.data(), g.size() * sizeof(float)), 0)
          << name << (o == &got ? "" : " (observe_only)") << ": layer " << kv.first.first
          << ", linear " << kv.first.second;
    }
  }
}

TEST(EvalLayer, BlockwiseGivesEvalsLinearInputsF32) {
  TestModelSpec s;
  s.ffn = 128;
  s.hadamard = true;  // ffn_down's input after the online Hadamard
  s.n_layers = 3;
  CheckBlockwiseMatchesEval(s, "f32");
}

TEST(EvalLayer, BlockwiseGivesEvalsLinearInputsQ4) {
  TestModelSpec s;
  s.scheme = "q4";
  s.seed = 7;
  CheckBlockwiseMatchesEval(s, "q4");
}

TEST(EvalLayerMalformed, OutOfRangeArgumentsAreInvalid) {
  TestModelSpec s;
  const std::string path = TestDataDir("eval_layer") + "/bad.lamina";
  std::string err;
  ASSERT_TRUE(WriteTestModel(s, path, &err)) << err;
  std::unique_ptr<Model> m = Model::Load(path, engine::ModelOptions(), &err);
  ASSERT_TRUE(m) << err;
  Observed seen;
  std::unique_ptr<Context> c = NewCtx(*m, 16, &seen);
  ASSERT_TRUE(c);
  std::vector<float> x(static_cast<size_t>(32) * m->config().dim, 0.5f);
  const int L = m->config().n_layers;
  EXPECT_EQ(c->EvalLayer(-1, x.data(), 1, 0, &err), EvalStatus::kInvalid);
  EXPECT_EQ(c->EvalLayer(L, x.data(), 1, 0, &err), EvalStatus::kInvalid);
  EXPECT_NE(err.find("block " + std::to_string(L)), std::string::npos) << err;
  EXPECT_EQ(c->EvalLayer(0, x.data(), 0, 0, &err), EvalStatus::kInvalid);
  EXPECT_EQ(c->EvalLayer(0, x.data(), 17, 0, &err), EvalStatus::kInvalid);    // > n_batch
  EXPECT_EQ(c->EvalLayer(0, x.data(), 16, 120, &err), EvalStatus::kInvalid);  // past n_ctx
  EXPECT_EQ(c->EvalLayer(0, x.data(), 1, -1, &err), EvalStatus::kInvalid);
  EXPECT_TRUE(seen.empty());
  // A non-finite input row comes out non-finite: kNumeric names the layer.
  x[3] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(c->EvalLayer(1, x.data(), 2, 0, &err), EvalStatus::kNumeric);
  EXPECT_NE(err.find("layer 1"), std::string::npos) << err;
  // Both rows were overwritten (row 1 attends to row 0); finite again at
  // position 0, the cache row is rewritten and the block is fine.
  std::fill(x.begin(), x.end(), 0.5f);
  EXPECT_EQ(c->EvalLayer(1, x.data(), 2, 0, &err), EvalStatus::kOk) << err;
}

}  // namespace
}  // namespace lamina::test
