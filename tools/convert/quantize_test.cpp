// q4 quantizers: f16-representable scales, the search never loses to RTN, and
// GPTQ beats RTN's reconstruction error ||W X - Q X|| on correlated inputs.
#include "tools/convert/quantize.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/ref/fp16.h"

namespace lamina::convert {
namespace {

bool IsF16(float s) { return F16ToF32(F32ToF16(s)) == s; }

double GroupError(const float* w, const float* imp, int n, float s, const int8_t* q) {
  double e = 0;
  for (int i = 0; i < n; ++i) {
    const double d = static_cast<double>(w[i]) - static_cast<double>(s) * q[i];
    e += (imp ? imp[i] : 1.0) * d * d;
  }
  return e;
}

TEST(Quantize, F16ScalesAndRanges) {
  EXPECT_EQ(F16Scale(0.f), kF16MinScale);
  EXPECT_EQ(F16Scale(std::nanf("")), kF16MinScale);
  EXPECT_EQ(F16Scale(1e9f), kF16MaxScale);
  EXPECT_EQ(F16Scale(-1e9f), -kF16MaxScale);
  EXPECT_EQ(F16Scale(0.1f), F16ToF32(F32ToF16(0.1f)));
  EXPECT_GE(F16ScaleUp(0.1f), 0.1f);
  EXPECT_TRUE(IsF16(F16ScaleUp(0.1f)));
  EXPECT_LT(F16ScaleUp(0.1f) - 0.1f, 0.1f / 1024);
  EXPECT_EQ(F16ScaleUp(0.5f), 0.5f);
  EXPECT_EQ(F16ScaleUp(FLT_EPSILON), FLT_EPSILON);
}

TEST(Quantize, RtnAndSearchGroups) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 0.02f);
  std::uniform_real_distribution<float> ud(0.f, 2.f);
  double e_rtn = 0, e_search = 0;
  for (int t = 0; t < 2000; ++t) {
    const int n = t % 7 == 0 ? 1 + t % 32 : 32;
    float w[32], imp[32];
    for (int i = 0; i < n; ++i) {
      w[i] = nd(rng) * (t % 5 == 0 ? 100.f : 1.f);
      imp[i] = ud(rng);
    }
    if (t % 11 == 0) w[t % n] *= 8.f;  // an outlier
    int8_t qr[32], qs[32], qi[32];
    const float sr = QuantizeGroupQ4Rtn(w, n, qr);
    const float ss = QuantizeGroupQ4Search(w, nullptr, n, qs);
    const float si = QuantizeGroupQ4Search(w, imp, n, qi);
    for (float s : {sr, ss, si}) {
      ASSERT_TRUE(IsF16(s)) << s;
      ASSERT_NE(s, 0.f);
    }
    float amax = 0;
    for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
    ASSERT_EQ(sr, F16ScaleUp(std::max(amax / 7.5f, FLT_EPSILON)));
    for (int i = 0; i < n; ++i) {
      ASSERT_GE(qs[i], -8);
      ASSERT_LE(qs[i], 7);
      ASSERT_GE(qi[i], -8);
      ASSERT_LE(qi[i], 7);
      // RTN: every value within half a step; each value is the nearest one.
      ASSERT_LE(std::fabs(w[i] - sr * qr[i]), 0.5f * sr * 1.0001f);
      ASSERT_EQ(qs[i], std::max(-8.f, std::min(7.f, std::nearbyint(w[i] / ss))));
    }
    // The search includes RTN's scale: never worse under its own importance.
    float sq[32];
    for (int i = 0; i < n; ++i) sq[i] = w[i] * w[i];
    EXPECT_LE(GroupError(w, sq, n, ss, qs), GroupError(w, sq, n, sr, qr) * (1 + 1e-12));
    EXPECT_LE(GroupError(w, imp, n, si, qi), GroupError(w, imp, n, sr, qr) * (1 + 1e-12));
    e_rtn += GroupError(w, nullptr, n, sr, qr);
    e_search += GroupError(w, nullptr, n, ss, qs);
  }
  // And clearly better in plain squared error on Gaussian weights.
  EXPECT_LT(e_search, 0.9 * e_rtn) << e_search << " vs " << e_rtn;
  // A zero group: zero values, a nonzero scale.
  float z[32] = {};
  int8_t q[32];
  EXPECT_GT(QuantizeGroupQ4Search(z, nullptr, 32, q), 0.f);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(q[i], 0);
}

TEST(Quantize, RowsFromPlanOrMethod) {
  const uint64_t N = 4, K = 40, G = 2;
  std::vector<float> f(N * K);
  for (size_t i = 0; i < f.size(); ++i) f[i] = std::sin(static_cast<float>(i));
  std::vector<int8_t> q(N * K);
  std::vector<float> sc(N * G);
  QuantizeRowsQ4(Q4Method::kRtn, nullptr, "x", 0, N, K, f.data(), q.data(), sc.data());
  int8_t g[32];
  EXPECT_EQ(sc[1 * G + 1], QuantizeGroupQ4Rtn(&f[1 * K + 32], 8, g));
  Q4Plan plan;
  Q4Matrix& m = plan["x"];
  m.N = N;
  m.K = K;
  m.q.assign(N * K, 3);
  m.scales.assign(N * G, 0.5f);
  QuantizeRowsQ4(Q4Method::kSearch, &plan, "x", 2, 2, K, f.data(), q.data(), sc.data());
  EXPECT_EQ(q[0], 3);
  EXPECT_EQ(sc[3], 0.5f);
  QuantizeRowsQ4(Q4Method::kSearch, &plan, "y", 0, 1, K, f.data(), q.data(), sc.data());
  EXPECT_EQ(sc[0], QuantizeGroupQ4Search(f.data(), nullptr, 32, g));
}

// ||(W - Q) X^T||_F^2 over T tokens: X [T][K], W and Q [N][K].
double OutputError(const std::vector<float>& W, const std::vector<float>& Q,
                   const std::vector<float>& X, int N, int K, int T) {
  double e = 0;
  for (int n = 0; n < N; ++n)
    for (int t = 0; t < T; ++t) {
      double d = 0;
      for (int k = 0; k < K; ++k)
        d += (static_cast<double>(W[n * K + k]) - Q[n * K + k]) * X[t * K + k];
      e += d * d;
    }
  return e;
}

TEST(Quantize, GptqBeatsRtnOnCorrelatedInputs) {
  const int N = 48, K = 160, T = 600;  // K: 5 groups, two GPTQ blocks (128 + 32)
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  // Correlated inputs: X = Z A with a random mixing A and per-channel scales
  // (a few channels much larger, as in real activations), one dead channel.
  std::vector<float> A(K * K), Z(T * K), X(T * K, 0.f), W(N * K);
  for (auto& a : A) a = nd(rng) / std::sqrt(static_cast<float>(K));
  for (int k = 0; k < K; ++k) A[k * K + k] += 1.f;
  for (auto& z : Z) z = nd(rng);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < K; ++j) {
      float s = 0;
      for (int k = 0; k < K; ++k) s += Z[t * K + k] * A[k * K + j];
      X[t * K + j] = s * (j % 17 == 0 ? 6.f : 1.f) * (j == 5 ? 0.f : 1.f);
    }
  for (auto& w : W) w = 0.05f * nd(rng);
  std::vector<double> H(static_cast<size_t>(K) * K, 0.0);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < K; ++i)
      for (int j = 0; j < K; ++j) H[i * K + j] += double(X[t * K + i]) * X[t * K + j];

  // RTN and search (data-free) dequantized.
  auto dequant = [&](Q4Method m) {
    std::vector<int8_t> q(N * K);
    std::vector<float> sc(N * 5), out(N * K);
    QuantizeRowsQ4(m, nullptr, "w", 0, N, K, W.data(), q.data(), sc.data());
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) out[n * K + k] = sc[n * 5 + k / 32] * q[n * K + k];
    return out;
  };
  const double e_rtn = OutputError(W, dequant(Q4Method::kRtn), X, N, K, T);
  const double e_search = OutputError(W, dequant(Q4Method::kSearch), X, N, K, T);

  for (bool act_order : {false, true}) {
    SCOPED_TRACE(act_order ? "act-order" : "natural order");
    std::vector<double> Hc = H;
    std::vector<float> Wg = W;
    Q4Matrix qm;
    std::string err;
    ASSERT_TRUE(GptqQuantize(Wg.data(), N, K, Hc.data(), 0.01, act_order, &qm, &err)) << err;
    ASSERT_EQ(qm.q.size(), static_cast<size_t>(N * K));
    ASSERT_EQ(qm.scales.size(), static_cast<size_t>(N * 5));
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) {
        const float s = qm.scales[n * 5 + k / 32];
        ASSERT_TRUE(IsF16(s));
        ASSERT_GE(qm.q[n * K + k], -8);
        ASSERT_LE(qm.q[n * K + k], 7);
        // W is replaced by exactly the dequantized values.
        ASSERT_EQ(Wg[n * K + k], s * static_cast<float>(qm.q[n * K + k]));
      }
    for (int n = 0; n < N; ++n) EXPECT_EQ(qm.q[n * K + 5], 0) << "dead input";
    const double e_gptq = OutputError(W, Wg, X, N, K, T);
    std::printf("||WX - QX||^2: rtn %.4g, search %.4g, gptq %.4g (gptq/rtn %.3f)\n", e_rtn,
                e_search, e_gptq, e_gptq / e_rtn);
    EXPECT_LT(e_gptq, 0.7 * e_rtn);
    EXPECT_LT(e_gptq, e_search);
  }
}

TEST(QuantizeMalformed, GptqRejectsANonPositiveDefiniteHessian) {
  const int N = 4, K = 32;
  std::vector<float> W(N * K, 0.1f);
  std::vector<double> H(K * K, 0.0);
  for (int i = 0; i < K; ++i) H[i * K + i] = 1.0;
  H[0 * K + 1] = H[1 * K + 0] = 50.0;  // indefinite
  Q4Matrix q;
  std::string err;
  EXPECT_FALSE(GptqQuantize(W.data(), N, K, H.data(), 0.01, false, &q, &err));
  EXPECT_NE(err.find("positive definite"), std::string::npos) << err;
}

// A NaN or infinite weight (the converters reject them earlier; the quantizers
// must still not hit UB): finite nonzero f16 scales, values in range.
TEST(QuantizeMalformed, NonFiniteWeightsStayDefined) {
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    float w[32];
    for (int i = 0; i < 32; ++i) w[i] = 0.01f * static_cast<float>(i - 16);
    w[3] = bad;
    int8_t q[32];
    for (float s : {QuantizeGroupQ4Rtn(w, 32, q), QuantizeGroupQ4Search(w, nullptr, 32, q)}) {
      EXPECT_TRUE(std::isfinite(s));
      EXPECT_NE(s, 0.f);
      EXPECT_TRUE(IsF16(s));
    }
    for (int i = 0; i < 32; ++i) {
      EXPECT_GE(q[i], -8);
      EXPECT_LE(q[i], 7);
    }
  }
}

}  // namespace
}  // namespace lamina::convert
