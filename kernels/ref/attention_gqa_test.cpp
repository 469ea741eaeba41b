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

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/ref.h"

namespace lamina::ref {
namespace {

using kern::KvType;

struct Case {
  int n_heads, n_kv, head_dim, n_pos;
  bool all_slices;  // every [h0, h1); else the full range and some 2-way splits
};

struct Data {
  size_t kv_stride;
  std::vector<float> q, kf, vf;
  std::vector<uint16_t> kh, vh;
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
  const void* kc = kt == KvType::kF32 ? static_cast<const void*>(d.kf.data()) : d.kh.data();
  const void* vc = kt == KvType::kF32 ? static_cast<const void*>(d.vf.data()) : d.vh.data();
  const size_t hd = c.head_dim;
  std::vector<float> sr(c.n_pos * kern::kAttentionScratchRows), want(c.n_heads * hd);
  Attention(d.q.data(), kc, vc, kt, d.kv_stride, c.n_pos, c.n_heads, c.n_kv, c.head_dim, 0,
            c.n_heads, sr.data(), want.data());
  const auto run = kern::Kernels(t).attention.run;
  for (auto [h0, h1] : Slices(c)) {
    const std::string where =
        std::string(kern::TierName(t)) + " kv=" + (kt == KvType::kF16 ? "f16" : "f32") +
        " heads=" + std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv) +
        " head_dim=" + std::to_string(hd) + " n_pos=" + std::to_string(c.n_pos) + " slice=[" +
        std::to_string(h0) + "," + std::to_string(h1) + ")";
    const size_t ns = static_cast<size_t>(c.n_pos) * kern::kAttentionScratchRows;
    std::vector<float> scratch(ns + 1, -3.f), got(c.n_heads * hd, -7.f);
    run(d.q.data(), kc, vc, kt, d.kv_stride, c.n_pos, c.n_heads, c.n_kv, c.head_dim, h0, h1,
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
      for (KvType kt : {KvType::kF32, KvType::kF16}) {
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
    for (int head_dim : {64, 36, 13, 8})
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

}  // namespace
}  // namespace lamina::ref
