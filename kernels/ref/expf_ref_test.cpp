// lamina's reference expf (kernels/ref/expf_ref.h): accuracy against exp in
// double over the float range, the special values it specifies, and every
// available tier's SiluMul bit-identical to ref::SiluMul (memcmp), NaN/±inf/
// subnormal lanes included. Builds on every host (tiers via the dispatch API).
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/expf_ref.h"
#include "kernels/ref/ref.h"

namespace lamina::ref {
namespace {

float FromBits(uint32_t u) { return BitsF32(u); }

/// Error of y against the exact value e in units of the float spacing at e
/// (for subnormal e: units of 2^-149).
double UlpError(float y, double e) {
  int ex;
  std::frexp(e, &ex);  // e = m * 2^ex, m in [0.5, 1)
  const double ulp = std::ldexp(1.0, std::max(ex - 24, -149));
  return std::fabs(static_cast<double>(y) - e) / ulp;
}

TEST(ExpfRef, MaxErrorUnder2UlpOverTheFloatRange) {
  // Every 2477th bit pattern across [-104, 89] in both signs, plus every float
  // in windows at the overflow and underflow edges.
  std::vector<float> xs;
  for (uint32_t u = 0; u < 0x42B20000u; u += 2477) xs.push_back(FromBits(u));  // [0, 89]
  for (uint32_t u = 0x80000000u; u < 0xC2D00000u; u += 2477)
    xs.push_back(FromBits(u));  // [-104, 0]
  for (float x = 88.0f; x < 89.f; x = std::nextafter(x, 90.f)) xs.push_back(x);
  for (float x = -88.0f; x > -88.1f; x = std::nextafter(x, -90.f)) xs.push_back(x);
  for (float x = -103.0f; x > -104.5f; x = std::nextafter(x, -105.f)) xs.push_back(x);
  ASSERT_GT(xs.size(), 1000000u);  // ~1.2e6
  double max_normal = 0, max_sub = 0;
  float worst = 0;
  for (float x : xs) {
    const float y = ExpfRef(x);
    const double e = std::exp(static_cast<double>(x));
    if (e > static_cast<double>(FLT_MAX) * (1 + 0x1p-23)) {
      ASSERT_EQ(y, std::numeric_limits<float>::infinity()) << x;
      continue;
    }
    if (e >= static_cast<double>(FLT_MIN)) {
      ASSERT_TRUE(std::isfinite(y)) << x;
      const double err = UlpError(y, e);
      if (err > max_normal) max_normal = err, worst = x;
    } else {
      max_sub = std::max(max_sub, UlpError(y, e));
    }
  }
  RecordProperty("max_ulp_normal", std::to_string(max_normal));
  std::printf(
      "ExpfRef: %zu points, max error %.4f ulp (normal results, at x=%a), %.4f ulp of "
      "2^-149 (subnormal results)\n",
      xs.size(), max_normal, static_cast<double>(worst), max_sub);
  EXPECT_LE(max_normal, 2.0);
  EXPECT_LE(max_sub, 1.0);
}

TEST(ExpfRef, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(ExpfRef(0.f), 1.f);
  EXPECT_EQ(ExpfRef(-0.f), 1.f);
  EXPECT_EQ(ExpfRef(inf), inf);
  EXPECT_EQ(ExpfRef(FLT_MAX), inf);
  EXPECT_EQ(ExpfRef(89.f), inf);
  EXPECT_EQ(ExpfRef(88.75f), inf);
  EXPECT_TRUE(std::isfinite(ExpfRef(88.72f)));  // near FLT_MAX, finite
  EXPECT_LE(UlpError(ExpfRef(88.72f), std::exp(static_cast<double>(88.72f))), 1.0);
  const float z = ExpfRef(-inf);
  EXPECT_EQ(z, 0.f);
  EXPECT_FALSE(std::signbit(z));
  EXPECT_EQ(ExpfRef(-FLT_MAX), 0.f);
  EXPECT_EQ(ExpfRef(-104.f), 0.f);
  EXPECT_GT(ExpfRef(-103.f), 0.f);  // subnormal, not flushed
  EXPECT_LT(ExpfRef(-103.f), FLT_MIN);
  EXPECT_EQ(ExpfRef(FLT_TRUE_MIN), 1.f);
  EXPECT_EQ(ExpfRef(-FLT_TRUE_MIN), 1.f);
  EXPECT_LE(UlpError(ExpfRef(1.f), std::exp(1.0)), 1.0);
  EXPECT_TRUE(std::isnan(ExpfRef(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(ExpfRef(-std::numeric_limits<float>::quiet_NaN())));
}

TEST(ExpfRef, PinnedBitsOnEveryPlatform) {
  // ExpfRef is meant to give the same bits everywhere (host x86-64 and every
  // Arm tier): FNV-1a over the results for every 9973rd float bit pattern
  // (NaNs, infinities and subnormals included), pinned to the values measured
  // on x86-64 (-O0, -O2, -mfma) and aarch64. A libm fmaf or a compiler flag
  // that changes one result changes the hash.
  uint64_t he = 1469598103934665603ull, hs = he, n = 0;
  for (uint64_t u = 0; u < (1ull << 32); u += 9973, ++n) {
    float x;
    const uint32_t b = static_cast<uint32_t>(u);
    std::memcpy(&x, &b, 4);
    he = (he ^ F32Bits(ExpfRef(x))) * 1099511628211ull;
    hs = (hs ^ F32Bits(SiluMulRef1(x, 1.25f))) * 1099511628211ull;
  }
  EXPECT_EQ(n, 430660u);
  EXPECT_EQ(he, 0x150411b1fb169f04ull);
  EXPECT_EQ(hs, 0x1df4cc84b8ba103full);
}

TEST(ExpfRef, SiluMulRefMatchesDoubleFormula) {
  // The ref SiluMul (not vacuous on hosts where only ref exists): a few ulp
  // of silu(g) * u computed in double.
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 4.f);
  const int n = 4096;
  std::vector<float> g(n), u(n), out;
  for (int i = 0; i < n; ++i) g[i] = nd(rng), u[i] = nd(rng);
  out = g;
  SiluMul(out.data(), u.data(), n);
  for (int i = 0; i < n; ++i) {
    const double gd = g[i], e = gd / (1 + std::exp(-gd)) * u[i];
    EXPECT_LE(UlpError(out[i], e), 4.0) << "g=" << g[i] << " u=" << u[i];
  }
}

std::vector<float> SiluInputs(int n, uint32_t seed, bool specials) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 3.f);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  if (specials) {
    const float inf = std::numeric_limits<float>::infinity();
    const float sp[] = {0.f,
                        -0.f,
                        inf,
                        -inf,
                        std::numeric_limits<float>::quiet_NaN(),
                        -std::numeric_limits<float>::quiet_NaN(),
                        88.7f,
                        -88.7f,
                        89.5f,
                        -89.5f,
                        103.5f,
                        -103.5f,
                        120.f,
                        -120.f,
                        1e30f,
                        -1e30f,
                        FLT_MAX,
                        -FLT_MAX,
                        FLT_MIN,
                        -FLT_MIN,
                        FLT_TRUE_MIN,
                        -FLT_TRUE_MIN,
                        1e-40f,
                        -1e-40f,
                        0.5f * 0.6931472f,
                        -0.3465736f};
    const int ns = static_cast<int>(sizeof(sp) / sizeof(sp[0]));
    for (int i = 0; i < n; ++i)
      if (rng() % 3 == 0) v[i] = sp[rng() % ns];
  }
  return v;
}

TEST(ExpfRef, EveryTierSiluMulIsBitIdenticalToRef) {
  int tiers = 0;
  for (kern::Tier t :
       {kern::Tier::kNeon, kern::Tier::kDotprod, kern::Tier::kI8mm, kern::Tier::kSve}) {
    if (!kern::TierAvailable(t)) continue;
    ++tiers;
    const auto run = kern::Kernels(t).silu_mul.run;
    std::vector<int> lengths;
    for (int n = 0; n <= 67; ++n) lengths.push_back(n);
    lengths.push_back(8192);
    for (int n : lengths)
      for (bool specials : {false, true}) {
        const std::vector<float> g = SiluInputs(n, 100 + n, specials);
        const std::vector<float> u = SiluInputs(n, 900 + n, specials);
        std::vector<float> want = g, got = g;
        want.push_back(-7.f), got.push_back(-7.f);  // guard: not written
        SiluMul(want.data(), u.data(), n);
        run(got.data(), u.data(), n);
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), (n + 1) * sizeof(float)))
            << kern::TierName(t) << " n=" << n << " specials=" << specials;
      }
    // Dense bit-pattern sweep of the gate through a multiple-of-8 length.
    std::vector<float> g, u;
    for (uint32_t b = 0; b < 0xFFFFFFFFu - 40009u; b += 40009u) g.push_back(FromBits(b));
    g.resize(g.size() / 8 * 8 + 5);  // plus a tail
    u.assign(g.size(), 1.f);
    for (size_t i = 0; i < u.size(); i += 3) u[i] = -0.75f;
    std::vector<float> want = g, got = g;
    SiluMul(want.data(), u.data(), static_cast<int>(g.size()));
    run(got.data(), u.data(), static_cast<int>(g.size()));
    ASSERT_EQ(0, std::memcmp(want.data(), got.data(), g.size() * sizeof(float)))
        << kern::TierName(t);
  }
  if (tiers == 0) GTEST_SKIP() << "only the ref tier on this CPU/build";
}

}  // namespace
}  // namespace lamina::ref
