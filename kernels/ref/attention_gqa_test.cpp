// Attention (AttentionKernel::run) of every available tier bit-identical to
// ref::Attention (memcmp) for GQA group sizes 1, 2, 3, 4 and 8, f32 and f16
// KV caches, head_dim with and without a % 8 / % 4 tail, and EVERY head slice
// [h0, h1) — slices that start or end inside a group included (the NEON
// kernel shares K/V rows across the heads of a group within a slice), plus
// long contexts (n_pos up to 24577). Checks the kernel writes only heads
// [h0, h1) of out and nothing past the scratch contract
// (kAttentionScratchRows * n_pos floats). Builds on every host (tiers via the
// dispatch API).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/kv_q8.h"
#include "kernels/ref/ref.h"

namespace lamina::ref {
namespace {

using kern::KvType;

struct Case {
  int n_heads, n_kv, head_dim, n_pos;
  bool all_slices;  // every [h0, h1); else the full range and some 2-way splits
};

struct Data {
  size_t kv_stride, q8_stride;  // floats / f16 per row; bytes per Q8 row
  std::vector<float> q, kf, vf;
  std::vector<uint16_t> kh, vh;
  std::vector<uint8_t> k8, v8;
};

Data MakeData(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  Data d;
  d.kv_stride = static_cast<size_t>(c.n_kv) * c.head_dim + 5;  // padded rows
  d.q.resize(static_cast<size_t>(c.n_heads) * c.head_dim);
  d.kf.resize(c.n_pos * d.kv_stride);
  d.vf.resize(c.n_pos * d.kv_stride);
  for (auto& v : d.q) v = 2.f * nd(rng);
  for (auto& v : d.kf) v = nd(rng);
  for (auto& v : d.vf) v = nd(rng);
  // Zero rows (Q8 scale 0) at every 7th position's kv head 0.
  for (int p = 3; p < c.n_pos; p += 7)
    for (int i = 0; i < c.head_dim; ++i)
      d.kf[p * d.kv_stride + i] = d.vf[p * d.kv_stride + i] = 0.f;
  d.q8_stride = KvQ8RowBytes(c.n_kv, c.head_dim) + 3;  // padded, odd
  d.k8.resize(c.n_pos * d.q8_stride);
  d.v8.resize(c.n_pos * d.q8_stride);
  StoreKvQ8Rows(d.kf.data(), d.kv_stride, c.n_pos, c.n_kv, c.head_dim, d.k8.data(), d.q8_stride);
  StoreKvQ8Rows(d.vf.data(), d.kv_stride, c.n_pos, c.n_kv, c.head_dim, d.v8.data(), d.q8_stride);
  d.kh.resize(d.kf.size());
  d.vh.resize(d.vf.size());
  for (size_t i = 0; i < d.kf.size(); ++i) d.kh[i] = F32ToF16(d.kf[i]), d.vh[i] = F32ToF16(d.vf[i]);
  return d;
}

std::vector<std::pair<int, int>> Slices(const Case& c) {
  std::vector<std::pair<int, int>> s;
  if (c.all_slices) {
    for (int h0 = 0; h0 < c.n_heads; ++h0)
      for (int h1 = h0 + 1; h1 <= c.n_heads; ++h1) s.emplace_back(h0, h1);
  } else {
    s.emplace_back(0, c.n_heads);
    for (int m : {1, 2, 3, 5, c.n_heads - 1})  // cuts inside and between groups
      if (m < c.n_heads) s.emplace_back(0, m), s.emplace_back(m, c.n_heads);
  }
  return s;
}

void CheckTier(kern::Tier t, const Case& c, KvType kt, const Data& d) {
  const bool q8 = kt == KvType::kQ8;
  const void* kc = kt == KvType::kF32 ? static_cast<const void*>(d.kf.data())
                   : q8               ? static_cast<const void*>(d.k8.data())
                                      : d.kh.data();
  const void* vc = kt == KvType::kF32 ? static_cast<const void*>(d.vf.data())
                   : q8               ? static_cast<const void*>(d.v8.data())
                                      : d.vh.data();
  const size_t stride = q8 ? d.q8_stride : d.kv_stride;
  const size_t hd = c.head_dim;
  std::vector<float> sr(c.n_pos * kern::kAttentionScratchRows), want(c.n_heads * hd);
  Attention(d.q.data(), kc, vc, kt, stride, c.n_pos, c.n_heads, c.n_kv, c.head_dim, 0, c.n_heads,
            sr.data(), want.data());
  const auto run = kern::Kernels(t).attention.run;
  for (auto [h0, h1] : Slices(c)) {
    const std::string where = std::string(kern::TierName(t)) + " kv=" +
                              (q8                   ? "q8"
                               : kt == KvType::kF16 ? "f16"
                                                    : "f32") +
                              " heads=" + std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv) +
                              " head_dim=" + std::to_string(hd) +
                              " n_pos=" + std::to_string(c.n_pos) + " slice=[" +
                              std::to_string(h0) + "," + std::to_string(h1) + ")";
    const size_t ns = static_cast<size_t>(c.n_pos) * kern::kAttentionScratchRows;
    std::vector<float> scratch(ns + 1, -3.f), got(c.n_heads * hd, -7.f);
    run(d.q.data(), kc, vc, kt, stride, c.n_pos, c.n_heads, c.n_kv, c.head_dim, h0, h1,
        scratch.data(), got.data());
    ASSERT_EQ(scratch[ns], -3.f) << where << ": wrote past the scratch contract";
    for (int h = 0; h < c.n_heads; ++h) {
      const float* g = got.data() + h * hd;
      if (h >= h0 && h < h1) {
        ASSERT_EQ(0, std::memcmp(g, want.data() + h * hd, hd * sizeof(float)))
            << where << " head " << h;
      } else {
        for (size_t i = 0; i < hd; ++i) ASSERT_EQ(g[i], -7.f) << where << ": wrote head " << h;
      }
    }
  }
}

void CheckAllTiers(const std::vector<Case>& cases) {
  int tiers = 0;
  for (kern::Tier t :
       {kern::Tier::kNeon, kern::Tier::kDotprod, kern::Tier::kI8mm, kern::Tier::kSve}) {
    if (!kern::TierAvailable(t)) continue;
    ++tiers;
    uint32_t seed = 700;
    for (const Case& c : cases) {
      const Data d = MakeData(c, ++seed);
      for (KvType kt : {KvType::kF32, KvType::kF16, KvType::kQ8}) {
        CheckTier(t, c, kt, d);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
  if (tiers == 0) GTEST_SKIP() << "only the ref tier on this CPU/build";
}

TEST(AttentionGqa, EveryTierEveryGroupAndSliceBitIdenticalToRef) {
  std::vector<Case> cases;
  // group = n_heads / n_kv: 1, 2, 3, 4, 8.
  for (auto [nh, nkv] : {std::pair{4, 4}, {4, 2}, {6, 2}, {8, 2}, {8, 1}})
    for (int head_dim : {128, 64, 36, 13, 8})
      for (int n_pos : {1, 2, 3, 7, 33}) cases.push_back({nh, nkv, head_dim, n_pos, true});
  CheckAllTiers(cases);
}

TEST(AttentionGqa, LlamaShapeBitIdenticalToRef) {
  // Llama 3.2 1B/3B: group 4, head_dim 64/128; slices as the engine's threads cut them.
  CheckAllTiers({{32, 8, 64, 130, false}, {24, 8, 128, 67, false}});
}

TEST(AttentionGqa, LongContextsBitIdenticalToRef) {
  // Long score rows (scratch rows of a 4-head pass far apart), 1-, 2- and
  // 4-head groups: still exact, nothing written past the scratch contract.
  CheckAllTiers({{5, 1, 8, 8193, false}, {4, 1, 8, 12289, false}, {2, 1, 4, 24577, false}});
}

TEST(AttentionGqa, Q8LongContextEveryHeadDim) {
  // Q8 over head_dim 8..128 (the 16 / 8 / scalar K steps of the integer dot)
  // at a few thousand positions, groups 4, 3 and 1.
  std::vector<Case> cases;
  for (int head_dim : {8, 16, 24, 40, 64, 72, 128}) cases.push_back({8, 2, head_dim, 2051, false});
  cases.push_back({6, 2, 128, 3001, false});
  cases.push_back({2, 2, 64, 4099, false});
  CheckAllTiers(cases);
}

TEST(AttentionGqa, Q8ZeroAndNonFiniteRowsMatchRef) {
  // A K/V row of all zeros has scale 0 and q 0; a NaN / Inf row stores scale
  // NaN and q 0: ref defines the (NaN) result, every tier reproduces its bits.
  const int hd = 16, n_kv = 1, n_pos = 9;
  const size_t rs = KvQ8RowBytes(n_kv, hd);
  std::vector<float> x(n_pos * hd, 0.5f), q(2 * hd, 0.25f);
  for (int i = 0; i < hd; ++i) x[i] = 0.f;  // row 0: zeros
  std::vector<uint8_t> k8(n_pos * rs), v8(n_pos * rs);
  StoreKvQ8Rows(x.data(), hd, n_pos, n_kv, hd, k8.data(), rs);
  EXPECT_EQ(KvQ8Scale(k8.data(), n_kv, hd, 0), 0.f);
  for (size_t i = 0; i < static_cast<size_t>(hd); ++i) EXPECT_EQ(k8[i], 0);
  x[5 * hd + 3] = std::numeric_limits<float>::infinity();
  StoreKvQ8Rows(x.data(), hd, n_pos, n_kv, hd, v8.data(), rs);
  EXPECT_TRUE(std::isnan(KvQ8Scale(v8.data() + 5 * rs, n_kv, hd, 0)));
  for (int i = 0; i < hd; ++i) EXPECT_EQ(v8[5 * rs + i], 0);
  std::vector<float> sr(n_pos * kern::kAttentionScratchRows), want(2 * hd);
  Attention(q.data(), k8.data(), k8.data(), KvType::kQ8, rs, n_pos, 2, n_kv, hd, 0, 2, sr.data(),
            want.data());
  for (float w : want) EXPECT_TRUE(std::isfinite(w));
  Attention(q.data(), k8.data(), v8.data(), KvType::kQ8, rs, n_pos, 2, n_kv, hd, 0, 2, sr.data(),
            want.data());
  for (float w : want) EXPECT_TRUE(std::isnan(w));
  for (kern::Tier t :
       {kern::Tier::kNeon, kern::Tier::kDotprod, kern::Tier::kI8mm, kern::Tier::kSve}) {
    if (!kern::TierAvailable(t)) continue;
    std::vector<float> got(2 * hd);
    kern::Kernels(t).attention.run(q.data(), k8.data(), v8.data(), KvType::kQ8, rs, n_pos, 2, n_kv,
                                   hd, 0, 2, sr.data(), got.data());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
        << kern::TierName(t);
  }
}

TEST(AttentionGqa, Q8QuantizerRoundTrip) {
  // |x - q * d| <= d / 2 for finite rows; q in [-127, 127]; the amax element
  // maps to +-127 (f16 scale rounding aside: within one step).
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 3.f);
  for (int n : {1, 7, 64, 128}) {
    std::vector<float> x(n);
    for (auto& v : x) v = nd(rng);
    std::vector<int8_t> q(n);
    const float d = QuantizeSym8(x.data(), n, true, q.data());
    EXPECT_EQ(d, F16ToF32(F32ToF16(d)));
    int qmax = 0;
    for (int i = 0; i < n; ++i) {
      EXPECT_LE(std::fabs(x[i] - q[i] * d), d * 0.5f + 1e-6f) << n << " " << i;
      qmax = std::max(qmax, std::abs(static_cast<int>(q[i])));
    }
    EXPECT_GE(qmax, 126);
  }
}

}  // namespace
}  // namespace lamina::ref
