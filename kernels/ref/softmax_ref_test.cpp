// ref::Softmax (lamina's own expf, fixed 8-way summation order): accuracy
// against softmax computed in double, and every available tier's softmax
// bit-identical to ref (memcmp) over lengths 1..70, 127..129, 4096 and input
// kinds (random, wide ranges, all-equal, -inf entries, +inf / NaN).
// Builds on every host (tiers via the dispatch API).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/expf_ref.h"
#include "kernels/ref/ref.h"

namespace lamina::ref {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

enum class Kind { kNormal, kWide, kEqual, kNegInf, kTiny };

std::vector<float> Logits(int n, uint32_t seed, Kind kind) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 3.f);
  std::uniform_real_distribution<float> wide(-1e4f, 1e4f);
  std::vector<float> v(n);
  for (float& x : v) {
    switch (kind) {
      case Kind::kNormal:
        x = nd(rng);
        break;
      case Kind::kWide:
        x = wide(rng);
        break;
      case Kind::kEqual:
        x = 2.5f;
        break;
      case Kind::kNegInf:
        x = rng() % 3 == 0 ? -kInf : nd(rng);
        break;
      case Kind::kTiny:  // spread < 1 ulp of exp: exercises the summation order
        x = 1.f + static_cast<float>(rng() % 64) * 0x1p-23f;
        break;
    }
  }
  if (kind == Kind::kNegInf && n > 1) v[rng() % n] = 0.5f;  // at least one finite
  if (kind == Kind::kNegInf && n == 1) v[0] = -1.f;
  return v;
}

TEST(SoftmaxRef, MatchesDoubleSoftmax) {
  for (int n : {1, 2, 7, 8, 9, 64, 129, 4096}) {
    for (Kind kind : {Kind::kNormal, Kind::kWide, Kind::kEqual, Kind::kNegInf}) {
      const std::vector<float> in = Logits(n, 10 + n, kind);
      std::vector<float> got = in;
      Softmax(got.data(), n);
      double m = -kInf;
      for (float x : in) m = std::max(m, static_cast<double>(x));
      std::vector<double> e(n);
      double sum = 0;
      for (int i = 0; i < n; ++i) sum += e[i] = std::exp(static_cast<double>(in[i]) - m);
      double total = 0;
      for (int i = 0; i < n; ++i) {
        const double want = e[i] / sum;
        total += got[i];
        // ~1 ulp expf + 1 ulp per sum level, relative, plus an absolute floor
        // for results near the underflow of expf (x - m < -87).
        EXPECT_NEAR(got[i], want, want * 3e-5 + 1e-37)
            << "n=" << n << " kind=" << static_cast<int>(kind) << " i=" << i;
      }
      EXPECT_NEAR(total, 1.0, 3e-5) << "n=" << n;
    }
  }
}

TEST(SoftmaxRef, SpecialCases) {
  std::vector<float> one = {-3.f};
  Softmax(one.data(), 1);
  EXPECT_EQ(one[0], 1.f);
  std::vector<float> eq(37, 4.f);
  Softmax(eq.data(), 37);
  for (float x : eq) EXPECT_EQ(x, eq[0]);
  EXPECT_NEAR(eq[0], 1.0 / 37, 1e-7);
  std::vector<float> masked = {1.f, -kInf, 1.f, -kInf};
  Softmax(masked.data(), 4);
  EXPECT_EQ(masked[0], 0.5f);
  EXPECT_EQ(masked[1], 0.f);
  EXPECT_EQ(masked[2], 0.5f);
  EXPECT_EQ(masked[3], 0.f);
  std::vector<float> nan = {1.f, std::numeric_limits<float>::quiet_NaN(), 2.f};
  Softmax(nan.data(), 3);
  for (float x : nan) EXPECT_TRUE(std::isnan(x));
}

TEST(SoftmaxRef, SumOrderIsTheDocumentedOne) {
  // 9 values whose exp sum depends on the order: the ref must equal the
  // 8-partial-sum order written out here.
  std::vector<float> in = {0.f, -16.f, -16.5f, -17.f, -15.f, -16.25f, -17.5f, -14.f, -15.5f};
  const int n = static_cast<int>(in.size());
  std::vector<float> e(n);
  float s[8] = {};
  for (int i = 0; i < n; ++i) s[i % 8] += e[i] = ExpfRef(in[i] - 0.f);
  const float sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  std::vector<float> got = in;
  Softmax(got.data(), n);
  for (int i = 0; i < n; ++i) EXPECT_EQ(got[i], e[i] * (1.f / sum)) << i;
}

TEST(SoftmaxRef, EveryTierIsBitIdenticalToRef) {
  int tiers = 0;
  for (kern::Tier t :
       {kern::Tier::kNeon, kern::Tier::kDotprod, kern::Tier::kI8mm, kern::Tier::kSve}) {
    if (!kern::TierAvailable(t)) continue;
    ++tiers;
    const auto run = kern::Kernels(t).softmax.run;
    std::vector<int> lengths;
    for (int n = 1; n <= 70; ++n) lengths.push_back(n);
    for (int n : {127, 128, 129, 4096}) lengths.push_back(n);
    for (int n : lengths)
      for (Kind kind : {Kind::kNormal, Kind::kWide, Kind::kEqual, Kind::kNegInf, Kind::kTiny}) {
        std::vector<float> want = Logits(n, 1000 + n, kind), got = want;
        want.push_back(-7.f), got.push_back(-7.f);  // guard: not written
        Softmax(want.data(), n);
        run(got.data(), n);
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), (n + 1) * sizeof(float)))
            << kern::TierName(t) << " n=" << n << " kind=" << static_cast<int>(kind);
      }
    // +inf / NaN anywhere: every output NaN in both (payloads unspecified).
    for (int n : {1, 9, 130}) {
      for (float bad : {kInf, std::numeric_limits<float>::quiet_NaN()}) {
        for (int pos : {0, n - 1, n / 2}) {
          std::vector<float> got = Logits(n, 5, Kind::kNormal);
          got[pos] = bad;
          run(got.data(), n);
          for (int i = 0; i < n; ++i)
            ASSERT_TRUE(std::isnan(got[i])) << kern::TierName(t) << " n=" << n << " i=" << i;
        }
      }
    }
  }
  if (tiers == 0) GTEST_SKIP() << "only the ref tier on this CPU/build";
}

}  // namespace
}  // namespace lamina::ref
