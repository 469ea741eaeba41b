// Kernel exactness tests: every available tier's EXACT ops are bit-identical
// to kernels/ref over a table of shapes and thread slices; the ref itself is
// checked against an independent naive formula (so these tests are not
// vacuous on hosts where only ref exists).
//
// $LAMINA_EXPECT_TIERS (e.g. "ref,neon" under qemu -cpu cortex-a72), when set,
// must equal the set of available tiers: the QEMU CPU matrix proves each tier
// is really tested where the higher ones are absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/kv_q8.h"
#include "kernels/ref/ref.h"
#include "loader/format.h"
#include "loader/pack.h"
#if defined(__x86_64__)
#include "kernels/x86/x86_kernels.h"
#endif

namespace lamina::kern {
namespace {

constexpr Tier kAllTiers[] = {Tier::kRef, Tier::kNeon, Tier::kDotprod, Tier::kI8mm,
                              Tier::kSve, Tier::kAvx2, Tier::kAvxVnni, Tier::kAvx512Vnni};

std::vector<Tier> Available() {
  std::vector<Tier> v;
  for (Tier t : kAllTiers)
    if (TierAvailable(t)) v.push_back(t);
  return v;
}

/// 64-byte aligned byte buffer.
struct Buf {
  std::vector<uint8_t> v;
  uint8_t* p = nullptr;
  explicit Buf(size_t n, uint8_t fill = 0) : v(n + 64, fill) {
    p = v.data() + ((64 - reinterpret_cast<uintptr_t>(v.data()) % 64) % 64);
  }
};

size_t Kp32(int K) { return format::RoundUp(static_cast<uint64_t>(K), 32); }

enum class ActMode { kRandom, kPositive, kNegative, kZero, kOutliers, kTies };

std::vector<float> MakeActs(int M, int K, ActMode mode, std::mt19937* rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(M) * K);
  for (int m = 0; m < M; ++m) {
    for (int k = 0; k < K; ++k) {
      float v = nd(*rng);
      switch (mode) {
        case ActMode::kRandom:
          break;
        case ActMode::kPositive:
          v = std::fabs(v) + 0.01f;
          break;
        case ActMode::kNegative:
          v = -std::fabs(v) - 0.01f;
          break;
        case ActMode::kZero:
          v = 0.f;
          break;
        case ActMode::kOutliers:
          v = (k % 37 == 5) ? v * 300.f : v * 0.01f;
          break;
        case ActMode::kTies:  // values that land on .5 after scaling often
          v = static_cast<float>(static_cast<int>((*rng)() % 511) - 255) * 0.5f;
          break;
      }
      x[static_cast<size_t>(m) * K + k] = v;
    }
    if (mode == ActMode::kTies && K > 1) {  // pin min/max so scale = 1
      x[static_cast<size_t>(m) * K] = -127.5f;
      x[static_cast<size_t>(m) * K + 1] = 127.5f;
    }
  }
  return x;
}

/// Quantized value (m, k) in a tier's QActs::data (the documented layouts:
/// "pairs" for i8mm and sve, plain row-major [M][Kp] for the others — the x86
/// tiers' "plain + sums" starts with the plain rows; SumsOfX86 checks the rest).
int QValue(Tier t, const QActs& qa, int m, int k) {
  const size_t Kp = Kp32(qa.K);
  const int8_t* d = static_cast<const int8_t*>(qa.data);
  if ((t == Tier::kI8mm || t == Tier::kSve) && !(qa.M % 2 == 1 && m == qa.M - 1))
    return d[static_cast<size_t>(m / 2) * 2 * Kp + 16 * (k / 8) + 8 * (m % 2) + k % 8];
  return d[static_cast<size_t>(m) * Kp + k];
}

bool IsX86(Tier t) { return t == Tier::kAvx2 || t == Tier::kAvxVnni || t == Tier::kAvx512Vnni; }

/// The x86 tiers' "plain + sums" extras: 8 * sum(q) per group, sum(q) per row.
::testing::AssertionResult SumsOfX86(const QActs& qa) {
#if defined(__x86_64__)
  const size_t Kp = Kp32(qa.K), G = Kp / 32;
  const auto* base = static_cast<const uint8_t*>(qa.data);
  const auto* qs = reinterpret_cast<const int32_t*>(base + x86::QSumOffset(qa.M, qa.K));
  const auto* qt = reinterpret_cast<const int32_t*>(base + x86::QTotOffset(qa.M, qa.K));
  for (int m = 0; m < qa.M; ++m) {
    int32_t tot = 0;
    for (size_t g = 0; g < G; ++g) {
      int32_t s = 0;
      for (int k = 0; k < 32; ++k) s += static_cast<const int8_t*>(qa.data)[m * Kp + 32 * g + k];
      tot += s;
      if (qs[m * G + g] != 8 * s)
        return ::testing::AssertionFailure() << "group sum m=" << m << " g=" << g;
    }
    if (qt[m] != tot) return ::testing::AssertionFailure() << "row sum m=" << m;
  }
  return ::testing::AssertionSuccess();
#else
  (void)qa;
  return ::testing::AssertionFailure() << "not an x86-64 build";
#endif
}

struct Quantized {
  Buf data;
  std::vector<float> scale, zp;
  QActs qa;
  Quantized(const KernelSet& ks, const std::vector<float>& x, int M, int K, int m_split = 1)
      : data(ks.quantize_acts.data_bytes(M, K), 0xAB), scale(M, -1.f), zp(M, -999.f) {
    qa = {data.p, scale.data(), zp.data(), M, K};
    // Quantize in m_split slices (threads may split tokens too).
    for (int s = 0; s < m_split; ++s) {
      const int m0 = M * s / m_split, m1 = M * (s + 1) / m_split;
      ks.quantize_acts.run(x.data(), K, m0, m1, &qa);
    }
  }
};

std::vector<std::pair<int, int>> Slices(int N, int parts) {
  const int nb = (N + 3) / 4;
  std::vector<std::pair<int, int>> s;
  int prev = 0;
  for (int i = 1; i <= parts; ++i) {
    const int e = std::min(N, (nb * i / parts) * 4);
    const int end = i == parts ? N : e;
    if (end > prev) s.push_back({prev, end});
    prev = std::max(prev, end);
  }
  return s;
}

struct Q4Mat {
  int N, K;
  std::vector<uint8_t> packed;
  std::vector<int8_t> vals;
  std::vector<float> scales;
};

Q4Mat MakeQ4(int N, int K, std::mt19937* rng) {
  Q4Mat w{N, K, {}, {}, {}};
  const int G = (K + 31) / 32;
  w.vals.resize(static_cast<size_t>(N) * K);
  w.scales.resize(static_cast<size_t>(N) * G);
  std::uniform_int_distribution<int> vd(-8, 7);
  std::uniform_real_distribution<float> sd(-0.05f, 0.05f);
  for (auto& v : w.vals) v = static_cast<int8_t>(vd(*rng));
  for (int i = 0; i < N * K / 7; ++i) w.vals[(*rng)() % w.vals.size()] = -8;  // extremes
  for (auto& s : w.scales) s = sd(*rng);
  w.packed.resize(pack::Q4GBytes(N, K));
  pack::PackQ4G(w.vals.data(), w.scales.data(), N, K, w.packed.data());
  return w;
}

/// The same kind of matrix in the Q4G_R4K8_F16S layout (scales rounded to
/// f16 first, so `packed_f32` holds the identical matrix in Q4G_R4K8).
struct Q4F16SMat {
  int N, K;
  std::vector<uint8_t> packed, packed_f32;
  std::vector<int8_t> vals;
  std::vector<float> scales;
};

Q4F16SMat MakeQ4F16S(int N, int K, std::mt19937* rng) {
  Q4Mat w = MakeQ4(N, K, rng);
  for (auto& s : w.scales) s = F16ToF32(F32ToF16(s));
  Q4F16SMat f{N, K, std::vector<uint8_t>(pack::Q4GF16SBytes(N, K)), {}, w.vals, w.scales};
  EXPECT_TRUE(pack::PackQ4GF16S(w.vals.data(), w.scales.data(), N, K, f.packed.data()));
  f.packed_f32.resize(pack::Q4GBytes(N, K));
  pack::PackQ4G(w.vals.data(), w.scales.data(), N, K, f.packed_f32.data());
  return f;
}

struct Q8Mat {
  int N, K;
  std::vector<uint8_t> packed;
  std::vector<int8_t> vals;
  std::vector<float> scales;
};

Q8Mat MakeQ8(int N, int K, std::mt19937* rng) {
  Q8Mat w{N, K, {}, {}, {}};
  w.vals.resize(static_cast<size_t>(N) * K);
  w.scales.resize(N);
  std::uniform_int_distribution<int> vd(-128, 127);
  std::uniform_real_distribution<float> sd(0.001f, 0.02f);
  for (auto& v : w.vals) v = static_cast<int8_t>(vd(*rng));
  for (auto& s : w.scales) s = sd(*rng);
  w.packed.resize(pack::Q8CBytes(N, K));
  pack::PackQ8C(w.vals.data(), w.scales.data(), N, K, w.packed.data());
  return w;
}

::testing::AssertionResult SameBits(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(a + i, b + i, 4) != 0)
      return ::testing::AssertionFailure()
             << "first difference at " << i << ": " << a[i] << " vs ref " << b[i];
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------- dispatch

TEST(Dispatch, RefAlwaysAvailableAndSelectable) {
  EXPECT_TRUE(TierAvailable(Tier::kRef));
  Tier t = Tier::kSve;
  char err[256] = "";
  ASSERT_TRUE(SelectTier("ref", &t, err, sizeof err)) << err;
  EXPECT_EQ(t, Tier::kRef);
  EXPECT_EQ(Kernels(Tier::kRef).tier, Tier::kRef);
}

TEST(Dispatch, AutoPicksBestAvailable) {
  Tier t = Tier::kRef;
  char err[256] = "";
  ASSERT_TRUE(SelectTier("auto", &t, err, sizeof err)) << err;
  EXPECT_TRUE(TierAvailable(t));
  EXPECT_EQ(Kernels(t).tier, t);
  const CpuFeatures& f = DetectCpu();
  if (TierAvailable(AutoTier(f))) {
    EXPECT_EQ(t, AutoTier(f));
  }
  // $LAMINA_EXPECT_AUTO: the tier the QEMU CPU matrix expects (tests/cmake/kernels.cmake).
  if (const char* e = std::getenv("LAMINA_EXPECT_AUTO")) {
    EXPECT_STREQ(TierName(t), e);
  }
  std::printf("cpu: neon=%d dotprod=%d i8mm=%d sve=%d sve_bytes=%d; auto tier: %s\n", f.neon,
              f.dotprod, f.i8mm, f.sve, f.sve_vector_bytes, TierName(t));
}

TEST(Dispatch, AutoTierPolicy) {
  auto cpu = [](bool dot, bool mm, int sve_bytes) {
    CpuFeatures f;
    f.neon = true;
    f.dotprod = dot;
    f.i8mm = mm;
    f.sve = sve_bytes > 0;
    f.sve_vector_bytes = sve_bytes;
    return f;
  };
  EXPECT_EQ(AutoTier(CpuFeatures{}), Tier::kRef);
  EXPECT_EQ(AutoTier(cpu(false, false, 0)), Tier::kNeon);     // Cortex-A72
  EXPECT_EQ(AutoTier(cpu(true, false, 0)), Tier::kDotprod);   // Cortex-A76 (Pi 5, RK3588)
  EXPECT_EQ(AutoTier(cpu(true, true, 0)), Tier::kI8mm);       // i8mm without SVE
  EXPECT_EQ(AutoTier(cpu(true, true, 16)), Tier::kI8mm);      // Neoverse V2, Cortex-X/A7xx
  EXPECT_EQ(AutoTier(cpu(true, true, 32)), Tier::kSve);       // Neoverse V1 (Graviton3)
  EXPECT_EQ(AutoTier(cpu(true, true, 64)), Tier::kSve);       // QEMU -cpu max
  EXPECT_EQ(AutoTier(cpu(true, false, 32)), Tier::kDotprod);  // SVE without I8MM
}

TEST(Dispatch, AutoTierPolicyX86) {
  auto cpu = [](bool avx2, bool fma_f16c, bool avxvnni, bool avx512) {
    CpuFeatures f;
    f.avx2 = avx2;
    f.fma = f.f16c = fma_f16c;
    f.avxvnni = avxvnni;
    f.avx512f = f.avx512bw = f.avx512vl = f.avx512vnni = avx512;
    return f;
  };
  EXPECT_EQ(AutoTier(cpu(false, true, false, false)), Tier::kRef);       // AVX only (Sandy Bridge)
  EXPECT_EQ(AutoTier(cpu(true, false, false, false)), Tier::kRef);       // AVX2 without FMA/F16C
  EXPECT_EQ(AutoTier(cpu(true, true, false, false)), Tier::kAvx2);       // Haswell, Zen 1-3
  EXPECT_EQ(AutoTier(cpu(true, true, true, false)), Tier::kAvxVnni);     // Alder Lake, Arrow Lake
  EXPECT_EQ(AutoTier(cpu(true, true, false, true)), Tier::kAvx512Vnni);  // Ice Lake, Zen 4
  EXPECT_EQ(AutoTier(cpu(true, true, true, true)), Tier::kAvx512Vnni);   // Sapphire Rapids, Zen 5
  CpuFeatures no_vnni = cpu(true, true, false, true);
  no_vnni.avx512vnni = false;  // Skylake-SP: AVX-512 without VNNI
  EXPECT_EQ(AutoTier(no_vnni), Tier::kAvx2);
  CpuFeatures no_bw = cpu(true, true, false, true);
  no_bw.avx512bw = false;
  EXPECT_EQ(AutoTier(no_bw), Tier::kAvx2);
}

#if defined(__x86_64__)
// On an x86-64 build every x86 tier the CPU has is available, and "auto" takes
// the widest (this host class has all three; see LAMINA_EXPECT_TIERS too).
TEST(Dispatch, X86TiersFollowCpuFeatures) {
  const CpuFeatures& f = DetectCpu();
  const bool base = f.avx2 && f.fma && f.f16c;
  EXPECT_EQ(TierAvailable(Tier::kAvx2), base);
  EXPECT_EQ(TierAvailable(Tier::kAvxVnni), base && f.avxvnni);
  EXPECT_EQ(TierAvailable(Tier::kAvx512Vnni),
            base && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni);
  EXPECT_FALSE(TierAvailable(Tier::kNeon));
  std::printf("cpu: avx2=%d fma=%d f16c=%d avxvnni=%d avx512f=%d bw=%d vl=%d vnni=%d\n", f.avx2,
              f.fma, f.f16c, f.avxvnni, f.avx512f, f.avx512bw, f.avx512vl, f.avx512vnni);
}
#endif

TEST(Dispatch, UnknownAndUnavailableNamesAreClearErrors) {
  Tier t = Tier::kRef;
  char err[512] = "";
  EXPECT_FALSE(SelectTier("avx512", &t, err, sizeof err));
  EXPECT_NE(std::string(err).find("avx512"), std::string::npos) << err;
  for (Tier c : kAllTiers) {
    err[0] = 0;
    const bool ok = SelectTier(TierName(c), &t, err, sizeof err);
    EXPECT_EQ(ok, TierAvailable(c)) << TierName(c);
    if (!ok) {
      EXPECT_NE(std::string(err).find("not available"), std::string::npos) << err;
    }
  }
}

TEST(Dispatch, EnvironmentOverride) {
  const char* old = std::getenv("LAMINA_KERNELS");
  const std::string saved = old ? old : "";
  Tier t = Tier::kSve;
  char err[256] = "";
  setenv("LAMINA_KERNELS", "ref", 1);
  EXPECT_TRUE(SelectTier(nullptr, &t, err, sizeof err));
  EXPECT_EQ(t, Tier::kRef);
  setenv("LAMINA_KERNELS", "bogus", 1);
  EXPECT_FALSE(SelectTier(nullptr, &t, err, sizeof err));
  EXPECT_TRUE(SelectTier("ref", &t, err, sizeof err));  // explicit name wins
  if (old)
    setenv("LAMINA_KERNELS", saved.c_str(), 1);
  else
    unsetenv("LAMINA_KERNELS");
}

TEST(Dispatch, ExpectedTiersOnThisCpu) {
  const char* e = std::getenv("LAMINA_EXPECT_TIERS");
  if (!e || !*e) GTEST_SKIP() << "LAMINA_EXPECT_TIERS not set";
  std::string got;
  for (Tier t : Available()) got += (got.empty() ? "" : ",") + std::string(TierName(t));
  EXPECT_EQ(got, std::string(e));
}

TEST(Dispatch, SveVectorLength) {
  const CpuFeatures& f = DetectCpu();
  if (!f.sve) {
    EXPECT_EQ(f.sve_vector_bytes, 0);
    return;
  }
  EXPECT_GE(f.sve_vector_bytes, 16);
  EXPECT_EQ(f.sve_vector_bytes % 16, 0);
  if (const char* e = std::getenv("LAMINA_EXPECT_SVE_BYTES")) {
    EXPECT_EQ(f.sve_vector_bytes, std::atoi(e));
  }
}

// ------------------------------------------- ref vs independent formulas

TEST(RefQuantizeActs, MatchesNaiveFormula) {
  std::mt19937 rng(1);
  for (ActMode mode : {ActMode::kRandom, ActMode::kPositive, ActMode::kNegative, ActMode::kZero,
                       ActMode::kOutliers}) {
    const int M = 3, K = 77;
    const auto x = MakeActs(M, K, mode, &rng);
    Quantized q(RefKernels(), x, M, K);
    for (int m = 0; m < M; ++m) {
      double mn = 0, mx = 0;
      for (int k = 0; k < K; ++k) {
        mn = std::min(mn, static_cast<double>(x[m * K + k]));
        mx = std::max(mx, static_cast<double>(x[m * K + k]));
      }
      const double s = std::max((mx - mn) / 255.0, static_cast<double>(FLT_EPSILON));
      EXPECT_NEAR(q.scale[m], s, s * 1e-6);
      EXPECT_EQ(q.zp[m], std::nearbyint(q.zp[m]));
      EXPECT_GE(q.zp[m], -128.f);
      EXPECT_LE(q.zp[m], 127.f);
      if (mode == ActMode::kPositive) {
        EXPECT_EQ(q.zp[m], -128.f);
      }
      if (mode == ActMode::kNegative) {
        EXPECT_EQ(q.zp[m], 127.f);
      }
      for (int k = 0; k < K; ++k) {
        const int v = QValue(Tier::kRef, q.qa, m, k);
        const double deq = (v - q.zp[m]) * static_cast<double>(q.scale[m]);
        EXPECT_NEAR(deq, x[m * K + k], 0.5001 * q.scale[m]) << "m=" << m << " k=" << k;
      }
      for (int k = K; k < static_cast<int>(Kp32(K)); ++k)
        EXPECT_EQ(QValue(Tier::kRef, q.qa, m, k), 0);
    }
  }
}

TEST(RefMatmulQ4G, MatchesDequantizedDot) {
  std::mt19937 rng(2);
  for (int K : {32, 40, 96}) {
    const int N = 5, M = 3;
    const Q4Mat w = MakeQ4(N, K, &rng);
    const auto x = MakeActs(M, K, ActMode::kRandom, &rng);
    Quantized q(RefKernels(), x, M, K);
    std::vector<float> y(M * N);
    ref::MatmulQ4G(q.qa, w.packed.data(), N, K, 0, N, y.data(), N);
    const int G = (K + 31) / 32;
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double acc = 0, mag = 0;
        for (int k = 0; k < K; ++k) {
          const double wk = w.vals[n * K + k] * static_cast<double>(w.scales[n * G + k / 32]);
          const double xk = (QValue(Tier::kRef, q.qa, m, k) - q.zp[m]) * double{q.scale[m]};
          acc += wk * xk;
          mag += std::fabs(wk * xk);
        }
        EXPECT_NEAR(y[m * N + n], acc, 1e-5 * mag + 1e-30) << "K=" << K << " m=" << m;
      }
  }
}

TEST(RefMatmulQ4GF16S, SameBitsAsF32ScaleLayout) {
  // The f16-scale layout is defined as the f32 one with widened scales.
  std::mt19937 rng(4);
  for (int K : {32, 40, 96, 2080})
    for (int N : {1, 5, 8}) {
      const Q4F16SMat w = MakeQ4F16S(N, K, &rng);
      for (int n = 0; n < N; ++n)
        for (int k = 0; k < K; ++k)
          ASSERT_EQ(pack::Q4GF16SValue(w.packed.data(), N, K, n, k), w.vals[n * K + k]);
      for (int n = 0; n < N; ++n)
        for (int g = 0; g < (K + 31) / 32; ++g)
          ASSERT_EQ(pack::Q4GF16SScale(w.packed.data(), N, K, n, g),
                    w.scales[n * ((K + 31) / 32) + g]);
      for (int M : {1, 3}) {
        const auto x = MakeActs(M, K, ActMode::kRandom, &rng);
        Quantized q(RefKernels(), x, M, K);
        std::vector<float> y16(M * N), y32(M * N);
        ref::MatmulQ4GF16S(q.qa, w.packed.data(), N, K, 0, N, y16.data(), N);
        ref::MatmulQ4G(q.qa, w.packed_f32.data(), N, K, 0, N, y32.data(), N);
        ASSERT_TRUE(SameBits(y16.data(), y32.data(), y16.size())) << "N=" << N << " K=" << K;
      }
    }
}

TEST(PackQ4GF16S, RefusesScalesF16CannotHold) {
  const int N = 4, K = 32;
  std::vector<int8_t> vals(N * K, 1);
  std::vector<float> scales(N, 0.5f);
  std::vector<uint8_t> out(pack::Q4GF16SBytes(N, K));
  EXPECT_TRUE(pack::PackQ4GF16S(vals.data(), scales.data(), N, K, out.data()));
  scales[2] = 0.1f;  // not an f16 value
  EXPECT_FALSE(pack::PackQ4GF16S(vals.data(), scales.data(), N, K, out.data()));
  scales[2] = 1e6f;  // beyond f16's range
  EXPECT_FALSE(pack::PackQ4GF16S(vals.data(), scales.data(), N, K, out.data()));
}

TEST(RefMatmulQ8C, MatchesDequantizedDot) {
  std::mt19937 rng(3);
  const int N = 7, M = 2, K = 72;
  const Q8Mat w = MakeQ8(N, K, &rng);
  const auto x = MakeActs(M, K, ActMode::kRandom, &rng);
  Quantized q(RefKernels(), x, M, K);
  std::vector<float> y(M * N);
  ref::MatmulQ8C(q.qa, w.packed.data(), N, K, 0, N, y.data(), N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double acc = 0, mag = 0;
      for (int k = 0; k < K; ++k) {
        const double t = w.vals[n * K + k] * double{w.scales[n]} *
                         (QValue(Tier::kRef, q.qa, m, k) - q.zp[m]) * double{q.scale[m]};
        acc += t;
        mag += std::fabs(t);
      }
      EXPECT_NEAR(y[m * N + n], acc, 1e-5 * mag);
    }
}

// -------------------------------------------------- tiers vs ref (EXACT)

class TierTest : public ::testing::TestWithParam<Tier> {
 protected:
  void SetUp() override {
    if (!TierAvailable(GetParam())) GTEST_SKIP() << TierName(GetParam()) << " not available";
  }
  const KernelSet& ks() const { return Kernels(GetParam()); }
};

TEST_P(TierTest, QuantizeActsExact) {
  std::mt19937 rng(10);
  for (ActMode mode : {ActMode::kRandom, ActMode::kPositive, ActMode::kNegative, ActMode::kZero,
                       ActMode::kOutliers, ActMode::kTies})
    for (int K : {1, 3, 8, 31, 32, 40, 172, 2048})
      for (int M : {1, 2, 3, 5}) {
        const auto x = MakeActs(M, K, mode, &rng);
        Quantized r(RefKernels(), x, M, K);
        Quantized t(ks(), x, M, K, M > 2 ? 2 : 1);
        ASSERT_GE(ks().quantize_acts.data_bytes(M, K), static_cast<size_t>(M) * Kp32(K));
        for (int m = 0; m < M; ++m) {
          ASSERT_EQ(std::memcmp(&r.scale[m], &t.scale[m], 4), 0) << "K=" << K << " m=" << m;
          ASSERT_EQ(std::memcmp(&r.zp[m], &t.zp[m], 4), 0) << "K=" << K << " m=" << m;
          for (int k = 0; k < static_cast<int>(Kp32(K)); ++k)
            ASSERT_EQ(QValue(GetParam(), t.qa, m, k), QValue(Tier::kRef, r.qa, m, k))
                << "mode=" << static_cast<int>(mode) << " K=" << K << " M=" << M << " m=" << m
                << " k=" << k;
        }
        if (IsX86(GetParam())) {
          ASSERT_TRUE(SumsOfX86(t.qa)) << "K=" << K << " M=" << M;
        }
      }
}

struct Shape {
  int N, K;
  std::vector<int> Ms;
};

const std::vector<Shape>& MatmulShapes() {
  // M covers the GEMM tiles' tails: the i8mm GEMM takes token pairs in tiles
  // of 6, then 4, then 1, and a lone last token through the GEMV (so e.g.
  // 20 = 6+4, 24 = 6+6, 33 = 6+6+4+lone, 35 = 6+6+4+1+lone).
  static const std::vector<Shape> s = {
      {1, 32, {1, 2, 3, 20, 21}},
      {3, 64, {1, 2, 7}},
      {4, 32, {1, 8}},
      {5, 40, {1, 2, 3, 17}},
      {9, 64, {9, 11, 12, 13, 23, 27}},
      {13, 96, {1, 3, 7, 8, 17, 20, 21, 24, 25, 33, 35}},
      {16, 172, {1, 2, 8, 17}},
      {36, 64, {1, 3, 8, 17}},
      {21, 2048, {1, 2, 3}},
      {12, 128, {1, 2, 13}},  // G = 4: f16-scale GEMV's 4-group asm loop, no tail
      {9, 224, {1, 3, 4}},    // G = 7: 4 in asm, 3 in the C++ tail
      {36, 2048, {24, 33}},
      {8, 2080, {1, 7}},
  };
  return s;
}

template <typename Mat, typename Make, typename RefFn, typename RunFn>
void CheckMatmul(const KernelSet& ks, Make make, RefFn ref_fn, RunFn run_fn, uint32_t seed) {
  std::mt19937 rng(seed);
  int iter = 0;
  for (const Shape& sh : MatmulShapes()) {
    const Mat w = make(sh.N, sh.K, &rng);
    for (int M : sh.Ms) {
      const ActMode mode = static_cast<ActMode>(iter++ % 5);
      const auto x = MakeActs(M, sh.K, mode, &rng);
      Quantized qr(RefKernels(), x, M, sh.K);
      Quantized qt(ks, x, M, sh.K);
      const size_t ldy = sh.N + 3;
      std::vector<float> yr(M * ldy, -7.f);
      ref_fn(qr.qa, w.packed.data(), sh.N, sh.K, 0, sh.N, yr.data(), ldy);
      for (int parts = 1; parts <= 5; ++parts) {
        std::vector<float> yt(M * ldy, -7.f);
        for (auto [n0, n1] : Slices(sh.N, parts))
          run_fn(qt.qa, w.packed.data(), sh.N, sh.K, n0, n1, yt.data(), ldy);
        ASSERT_TRUE(SameBits(yt.data(), yr.data(), yt.size()))
            << "N=" << sh.N << " K=" << sh.K << " M=" << M << " slices=" << parts;
      }
    }
  }
}

TEST_P(TierTest, MatmulQ4GExact) {
  CheckMatmul<Q4Mat>(ks(), MakeQ4, ref::MatmulQ4G, ks().matmul_q4g.run, 20);
}

TEST_P(TierTest, MatmulQ4GF16SExact) {
  CheckMatmul<Q4F16SMat>(ks(), MakeQ4F16S, ref::MatmulQ4GF16S, ks().matmul_q4g_f16s.run, 25);
}

TEST_P(TierTest, MatmulQ8CExact) {
  CheckMatmul<Q8Mat>(ks(), MakeQ8, ref::MatmulQ8C, ks().matmul_q8c.run, 30);
}

TEST_P(TierTest, MatmulQ4GEmptyK) {
  // K == 0 (no groups): a packed row block is just its 16-byte corrections.
  // The asm loops run at least one group, so every path (GEMV for M == 1 and
  // a lone last token, every GEMM tile) must route around them.
  alignas(64) int8_t data[64] = {};
  float scale[13], zp[13];
  for (int m = 0; m < 13; ++m) {
    scale[m] = 0.5f + m;
    zp[m] = static_cast<float>(m - 6);
  }
  for (int N : {4, 8, 13}) {
    const int blocks = (N + 3) / 4;
    std::vector<uint8_t> w(16 * blocks, 0);
    for (int M : {1, 2, 3, 8, 12, 13}) {
      QActs a{data, scale, zp, M, 0};
      std::vector<float> yr(M * N, -7.f), yt(M * N, -7.f);
      ref::MatmulQ4G(a, w.data(), N, 0, 0, N, yr.data(), N);
      ks().matmul_q4g.run(a, w.data(), N, 0, 0, N, yt.data(), N);
      ASSERT_TRUE(SameBits(yt.data(), yr.data(), yt.size())) << "N=" << N << " M=" << M;
    }
  }
}

TEST_P(TierTest, MatmulQ4GExtremeScales) {
  // Scales spanning many binades (incl. tiny and large): the x16 / SCVTF #4
  // epilogue must stay exact.
  std::mt19937 rng(40);
  const int N = 8, K = 256, M = 3;
  Q4Mat w = MakeQ4(N, K, &rng);
  for (size_t i = 0; i < w.scales.size(); ++i)
    w.scales[i] = std::ldexp(w.scales[i] + 0.01f, static_cast<int>(i % 60) - 40);
  pack::PackQ4G(w.vals.data(), w.scales.data(), N, K, w.packed.data());
  const auto x = MakeActs(M, K, ActMode::kOutliers, &rng);
  Quantized qr(RefKernels(), x, M, K), qt(ks(), x, M, K);
  std::vector<float> yr(M * N), yt(M * N);
  ref::MatmulQ4G(qr.qa, w.packed.data(), N, K, 0, N, yr.data(), N);
  ks().matmul_q4g.run(qt.qa, w.packed.data(), N, K, 0, N, yt.data(), N);
  EXPECT_TRUE(SameBits(yt.data(), yr.data(), yt.size()));
}

TEST_P(TierTest, MatmulQ4GF16SEmptyK) {
  // K == 0: a Q4G_R4K8_F16S row block is its 16-byte corrections only.
  alignas(64) int8_t data[64] = {};
  float scale[13], zp[13];
  for (int m = 0; m < 13; ++m) {
    scale[m] = 0.5f + m;
    zp[m] = static_cast<float>(m - 6);
  }
  for (int N : {4, 8, 13}) {
    std::vector<uint8_t> w(pack::Q4GF16SBytes(N, 0), 0);
    ASSERT_EQ(w.size(), 16u * ((N + 3) / 4));
    for (int M : {1, 2, 3, 8, 12, 13}) {
      QActs a{data, scale, zp, M, 0};
      std::vector<float> yr(M * N, -7.f), yt(M * N, -7.f);
      ref::MatmulQ4GF16S(a, w.data(), N, 0, 0, N, yr.data(), N);
      ks().matmul_q4g_f16s.run(a, w.data(), N, 0, 0, N, yt.data(), N);
      ASSERT_TRUE(SameBits(yt.data(), yr.data(), yt.size())) << "N=" << N << " M=" << M;
    }
  }
}

TEST_P(TierTest, MatmulQ4GF16SExtremeScales) {
  // f16 scales over f16's whole range: subnormals (down to 2^-24), the
  // largest finite value and negative scales; FCVTL widening must be exact.
  std::mt19937 rng(41);
  const int N = 12, K = 288;
  Q4F16SMat w = MakeQ4F16S(N, K, &rng);
  for (size_t i = 0; i < w.scales.size(); ++i) {
    const float s =
        std::ldexp(1.f + static_cast<float>(i % 7) / 8.f, static_cast<int>(i % 41) - 24);
    w.scales[i] = F16ToF32(F32ToF16((i % 3 == 0 ? -s : s)));
  }
  w.scales[0] = 65504.f;
  w.scales[1] = std::ldexp(1.f, -24);
  ASSERT_TRUE(pack::PackQ4GF16S(w.vals.data(), w.scales.data(), N, K, w.packed.data()));
  ASSERT_EQ(pack::Q4GF16SScale(w.packed.data(), N, K, 0, 1), std::ldexp(1.f, -24));
  for (int M : {1, 2, 3, 13}) {
    const auto x = MakeActs(M, K, ActMode::kOutliers, &rng);
    Quantized qr(RefKernels(), x, M, K), qt(ks(), x, M, K);
    std::vector<float> yr(M * N), yt(M * N);
    ref::MatmulQ4GF16S(qr.qa, w.packed.data(), N, K, 0, N, yr.data(), N);
    ks().matmul_q4g_f16s.run(qt.qa, w.packed.data(), N, K, 0, N, yt.data(), N);
    EXPECT_TRUE(SameBits(yt.data(), yr.data(), yt.size())) << "M=" << M;
  }
}

TEST_P(TierTest, MatmulQ4GF16SVocabOutputLayer) {
  // A q4g output layer of Llama 3's vocabulary (128256 rows), decode (one
  // token) and a 3-token prefill tail, split into row ranges as the thread
  // pool does; K = 160 (G = 5) runs the asm group loop and its C++ tail.
  std::mt19937 rng(42);
  const int N = 128256, K = 160;
  const Q4F16SMat w = MakeQ4F16S(N, K, &rng);
  for (int M : {1, 3}) {
    const auto x = MakeActs(M, K, ActMode::kRandom, &rng);
    Quantized qr(RefKernels(), x, M, K), qt(ks(), x, M, K);
    std::vector<float> yr(static_cast<size_t>(M) * N, -7.f), yt(yr.size(), -7.f);
    ref::MatmulQ4GF16S(qr.qa, w.packed.data(), N, K, 0, N, yr.data(), N);
    for (auto [n0, n1] : Slices(N, 4))
      ks().matmul_q4g_f16s.run(qt.qa, w.packed.data(), N, K, n0, n1, yt.data(), N);
    ASSERT_TRUE(SameBits(yt.data(), yr.data(), yt.size())) << "M=" << M;
  }
}

TEST_P(TierTest, MatmulFloatExact) {
  std::mt19937 rng(50);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int wtype : {0, 1, 2})
    for (int K : {1, 7, 8, 9, 64, 173, 529})   // 529: two K chunks of 256 and a tail
      for (int N : {1, 3, 5, 13, 31, 37, 50})  // row tiles of 14 / 9 / 8 / 6 / 5 / 4 / 2 / 1
        for (int M = 1; M <= 13; ++M) {        // token tiles of 1..6 and their tails
          if (K == 529 && M % 4 != 1 && M != 6) continue;  // keep the big-K cases few
          std::vector<float> x(M * K), wf(N * K);
          for (auto& v : x) v = nd(rng);
          for (auto& v : wf) v = nd(rng);
          std::vector<uint16_t> w16(N * K);
          for (int i = 0; i < N * K; ++i) w16[i] = wtype == 1 ? F32ToF16(wf[i]) : F32ToBF16(wf[i]);
          const void* w = wtype == 0 ? static_cast<const void*>(wf.data()) : w16.data();
          std::vector<float> yr(M * N), yt(M * N, -7.f);
          ref::MatmulFloat(x.data(), K, M, w, wtype, N, K, 0, N, yr.data(), N);
          // any n0 is allowed for float: split at odd points
          const int cut = N / 2;
          if (cut > 0) ks().matmul_float.run(x.data(), K, M, w, wtype, N, K, 0, cut, yt.data(), N);
          ks().matmul_float.run(x.data(), K, M, w, wtype, N, K, cut, N, yt.data(), N);
          ASSERT_TRUE(SameBits(yt.data(), yr.data(), yt.size()))
              << "wtype=" << wtype << " K=" << K << " N=" << N << " M=" << M;
        }
}

TEST_P(TierTest, ElementwiseOpsExact) {
  std::mt19937 rng(60);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int n = 2048 + 7;
  std::vector<float> x(n), w(n), a(n), b(n);
  for (auto& v : x) v = nd(rng);
  for (auto& v : w) v = nd(rng);
  ks().rmsnorm.run(a.data(), x.data(), w.data(), n, 1e-5f);
  ref::RmsNorm(b.data(), x.data(), w.data(), n, 1e-5f);
  EXPECT_TRUE(SameBits(a.data(), b.data(), n)) << "rmsnorm";
  a = x;
  b = x;
  ks().silu_mul.run(a.data(), w.data(), n);
  ref::SiluMul(b.data(), w.data(), n);
  EXPECT_TRUE(SameBits(a.data(), b.data(), n)) << "silu_mul";
  a = x;
  b = x;
  ks().softmax.run(a.data(), n);
  ref::Softmax(b.data(), n);
  EXPECT_TRUE(SameBits(a.data(), b.data(), n)) << "softmax";
  // Every power of two to 16384 (each pass structure of the SIMD versions);
  // 8192: Llama 3.2's ffn width.
  for (int hn = 1; hn <= 16384; hn *= 2) {
    a.resize(hn);
    for (int i = 0; i < hn; ++i)
      a[i] = x[i % x.size()] * (1.f + 0.001f * static_cast<float>(i % 97));
    b = a;
    ks().hadamard.run(a.data(), hn);
    ref::Hadamard(b.data(), hn);
    EXPECT_TRUE(SameBits(a.data(), b.data(), hn)) << "hadamard n=" << hn;
  }
  // ±inf inputs (inf - inf: NaN lanes appear mid-transform).
  a[5] = std::numeric_limits<float>::infinity();
  a[77] = -a[5];
  a[4000] = a[5];
  b = a;
  ks().hadamard.run(a.data(), 16384);
  ref::Hadamard(b.data(), 16384);
  EXPECT_TRUE(SameBits(a.data(), b.data(), 16384)) << "hadamard with inf";
  a.assign(x.begin(), x.begin() + 256);
  b = a;
  ks().rope.run(a.data(), 4, 64, w.data(), w.data() + 100);
  ref::Rope(b.data(), 4, 64, w.data(), w.data() + 100);
  EXPECT_TRUE(SameBits(a.data(), b.data(), 256)) << "rope";
}

// Random K / V caches of `rows` positions in every KV type (f32 / f16 rows
// of n_kv * head_dim + 3 floats, Q8 rows one byte longer than packed).
struct TestKv {
  int kv_stride;
  size_t q8_stride;
  std::vector<float> kf, vf;
  std::vector<uint16_t> kh, vh;
  std::vector<uint8_t> k8, v8;
  TestKv(int rows, int n_kv, int head_dim, std::mt19937* rng)
      : kv_stride(n_kv * head_dim + 3), q8_stride(ref::KvQ8RowBytes(n_kv, head_dim) + 1) {
    std::normal_distribution<float> nd(0.f, 1.f);
    kf.resize(static_cast<size_t>(rows) * kv_stride);
    vf.resize(kf.size());
    for (auto& v : kf) v = nd(*rng);
    for (auto& v : vf) v = nd(*rng);
    for (size_t i = 0; i < kf.size(); ++i)
      kh.push_back(F32ToF16(kf[i])), vh.push_back(F32ToF16(vf[i]));
    k8.resize(rows * q8_stride);
    v8.resize(rows * q8_stride);
    ref::StoreKvQ8Rows(kf.data(), kv_stride, rows, n_kv, head_dim, k8.data(), q8_stride);
    ref::StoreKvQ8Rows(vf.data(), kv_stride, rows, n_kv, head_dim, v8.data(), q8_stride);
  }
  size_t Stride(KvType t) const {
    return t == KvType::kQ8 ? q8_stride : static_cast<size_t>(kv_stride);
  }
  const void* K(KvType t) const {
    return t == KvType::kF32  ? static_cast<const void*>(kf.data())
           : t == KvType::kQ8 ? static_cast<const void*>(k8.data())
                              : kh.data();
  }
  const void* V(KvType t) const {
    return t == KvType::kF32  ? static_cast<const void*>(vf.data())
           : t == KvType::kQ8 ? static_cast<const void*>(v8.data())
                              : vh.data();
  }
};

TEST_P(TierTest, AttentionExact) {
  std::mt19937 rng(70);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (KvType kt : {KvType::kF32, KvType::kF16, KvType::kQ8})
    for (int head_dim : {64, 36, 13})
      for (int n_pos : {1, 5, 33}) {
        const int n_heads = 4, n_kv = 2;
        std::vector<float> q(n_heads * head_dim);
        for (auto& v : q) v = nd(rng);
        const TestKv kv(n_pos, n_kv, head_dim, &rng);
        const size_t stride = kv.Stride(kt);
        const void *kc = kv.K(kt), *vc = kv.V(kt);
        std::vector<float> sr(n_pos * kAttentionScratchRows), st(n_pos * kAttentionScratchRows),
            outr(n_heads * head_dim), outt(n_heads * head_dim, -7.f);
        ref::Attention(q.data(), kc, vc, kt, stride, n_pos, n_heads, n_kv, head_dim, 0, n_heads,
                       sr.data(), outr.data());
        ks().attention.run(q.data(), kc, vc, kt, stride, n_pos, n_heads, n_kv, head_dim, 0, 1,
                           st.data(), outt.data());
        ks().attention.run(q.data(), kc, vc, kt, stride, n_pos, n_heads, n_kv, head_dim, 1, n_heads,
                           st.data(), outt.data());
        ASSERT_TRUE(SameBits(outt.data(), outr.data(), outt.size()))
            << "kv=" << static_cast<int>(kt) << " head_dim=" << head_dim << " n_pos=" << n_pos;
      }
}

// run_batch (several query tokens of one pass, causal) against M calls of
// ref::Attention: M = 1..13 tokens, GQA groups of 1 / 2 / 3 / 4 heads, head
// slices that start and end mid-group, first token at position 0 (n_pos 1)
// and later, head_dim a multiple of 8 and not (8, 16, 64, 12, 36), every KV
// type. A tier without run_batch is skipped (the engine loops over run).
TEST_P(TierTest, AttentionBatchExact) {
  if (!ks().attention.run_batch) GTEST_SKIP() << "tier has no batched attention";
  std::mt19937 rng(71);
  std::normal_distribution<float> nd(0.f, 1.f);
  struct Shape {
    int n_heads, n_kv, head_dim;
  };
  for (KvType kt : {KvType::kF32, KvType::kF16, KvType::kQ8})
    for (Shape sh :
         {Shape{8, 4, 8}, Shape{4, 4, 16}, Shape{6, 2, 12}, Shape{8, 2, 64}, Shape{4, 2, 36}})
      for (int n_pos : {1, 2, 9, 40})
        for (int M = 1; M <= 13; ++M) {
          if (sh.head_dim > 16 && M % 4 != 1 && M != 2) continue;  // keep the big heads few
          const int n_heads = sh.n_heads, n_kv = sh.n_kv, hd = sh.head_dim;
          const int rows = n_pos + M - 1, qd = n_heads * hd;
          const size_t ldq = qd + 5, ldo = qd + 2;
          std::vector<float> q(M * ldq);
          for (auto& v : q) v = nd(rng);
          const TestKv kv(rows, n_kv, hd, &rng);
          const size_t stride = kv.Stride(kt);
          const void *kc = kv.K(kt), *vc = kv.V(kt);
          std::vector<float> sr(rows * kAttentionScratchRows), outr(M * ldo, -7.f),
              outt(M * ldo, -7.f);
          for (int m = 0; m < M; ++m)
            ref::Attention(q.data() + m * ldq, kc, vc, kt, stride, n_pos + m, n_heads, n_kv, hd, 0,
                           n_heads, sr.data(), outr.data() + m * ldo);
          // Exactly kAttentionScratchRows * (n_pos + M - 1) floats of
          // scratch, heads split at an odd point (mid-group when group > 1).
          const int cut = n_heads / 2 - 1 > 0 ? n_heads / 2 - 1 : 1;
          std::vector<float> st(rows * kAttentionScratchRows);
          ks().attention.run_batch(q.data(), ldq, M, kc, vc, kt, stride, n_pos, n_heads, n_kv, hd,
                                   0, cut, st.data(), outt.data(), ldo);
          ks().attention.run_batch(q.data(), ldq, M, kc, vc, kt, stride, n_pos, n_heads, n_kv, hd,
                                   cut, n_heads, st.data(), outt.data(), ldo);
          ASSERT_TRUE(SameBits(outt.data(), outr.data(), outt.size()))
              << "kv=" << static_cast<int>(kt) << " heads=" << n_heads << "/" << n_kv
              << " head_dim=" << hd << " n_pos=" << n_pos << " M=" << M;
        }
}

// ---------------------------------------- non-finite activations (EXACT)

// Rows of M x K activations where row m holds a non-finite value when
// bad(m): `v` at column k = (m * 13 + 5) % K (so both the 8-wide vector part
// and the scalar tail of the NEON row loop are hit across K), and a second
// one at K - 1 for m % 3 == 2. Finite rows are random.
std::vector<float> NonFiniteActs(int M, int K, float v, bool every_row, std::mt19937* rng) {
  std::vector<float> x = MakeActs(M, K, ActMode::kRandom, rng);
  for (int m = 0; m < M; ++m) {
    if (!every_row && m % 2 == 0) continue;
    x[static_cast<size_t>(m) * K + (m * 13 + 5) % K] = v;
    if (m % 3 == 2) x[static_cast<size_t>(m) * K + K - 1] = v;
  }
  return x;
}

bool RowFinite(const std::vector<float>& x, int m, int K) {
  for (int k = 0; k < K; ++k)
    if (!std::isfinite(x[static_cast<size_t>(m) * K + k])) return false;
  return true;
}

const float kNonFiniteValues[] = {
    std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
    std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};

TEST(RefQuantizeActs, NonFiniteRowsAreDefinedAsan) {
  // The spec (ref.h): a row with any NaN / +-Inf gets scale = NaN (0x7fc00000),
  // zp = 0 and q = 0; its finite neighbours are quantized as usual.
  std::mt19937 rng(60);
  for (float v : kNonFiniteValues)
    for (int K : {1, 7, 8, 31, 77, 2048}) {
      const int M = 5;
      const auto x = NonFiniteActs(M, K, v, false, &rng);
      Quantized q(RefKernels(), x, M, K);
      for (int m = 0; m < M; ++m) {
        float s, z;
        ref::ChooseQParams(x.data() + static_cast<size_t>(m) * K, K, &s, &z);
        EXPECT_EQ(std::memcmp(&s, &q.scale[m], 4), 0);
        EXPECT_EQ(z, q.zp[m]);
        if (RowFinite(x, m, K)) {
          EXPECT_TRUE(std::isfinite(q.scale[m]) && q.scale[m] > 0.f) << "m=" << m;
          continue;
        }
        EXPECT_EQ(F32Bits(q.scale[m]), 0x7fc00000u) << "v=" << v << " K=" << K << " m=" << m;
        EXPECT_EQ(F32Bits(q.zp[m]), 0u);
        for (int k = 0; k < static_cast<int>(Kp32(K)); ++k)
          ASSERT_EQ(QValue(Tier::kRef, q.qa, m, k), 0) << "m=" << m << " k=" << k;
      }
    }
  // A finite row whose range overflows (mx - mn = +Inf) is finite: formula
  // applies (scale +Inf, every q = zp = 127), still no conversion of Inf/NaN.
  const std::vector<float> wide = {3e38f, -3e38f, 1.f, 0.f};
  Quantized q(RefKernels(), wide, 1, 4);
  EXPECT_EQ(q.scale[0], std::numeric_limits<float>::infinity());
  EXPECT_EQ(q.zp[0], 127.f);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(QValue(Tier::kRef, q.qa, 0, k), 127);
}

TEST_P(TierTest, QuantizeActsNonFiniteExactAsan) {
  std::mt19937 rng(61);
  for (float v : kNonFiniteValues)
    for (bool every_row : {false, true})
      for (int K : {1, 3, 8, 9, 31, 32, 40, 172, 2048})
        for (int M : {1, 2, 3, 5}) {
          const auto x = NonFiniteActs(M, K, v, every_row, &rng);
          Quantized r(RefKernels(), x, M, K);
          Quantized t(ks(), x, M, K, M > 2 ? 2 : 1);
          for (int m = 0; m < M; ++m) {
            ASSERT_EQ(std::memcmp(&r.scale[m], &t.scale[m], 4), 0)
                << "v=" << v << " K=" << K << " M=" << M << " m=" << m;
            ASSERT_EQ(std::memcmp(&r.zp[m], &t.zp[m], 4), 0) << "K=" << K << " m=" << m;
            for (int k = 0; k < static_cast<int>(Kp32(K)); ++k)
              ASSERT_EQ(QValue(GetParam(), t.qa, m, k), QValue(Tier::kRef, r.qa, m, k))
                  << "v=" << v << " K=" << K << " M=" << M << " m=" << m << " k=" << k;
          }
        }
}

// Matmuls on activations with non-finite rows: every tier gives the ref's bits,
// and every output of a non-finite row is NaN (finite rows stay finite).
template <typename Mat, typename Make, typename RefFn, typename RunFn>
void CheckMatmulNonFinite(const KernelSet& ks, Make make, RefFn ref_fn, RunFn run_fn,
                          uint32_t seed) {
  std::mt19937 rng(seed);
  int iter = 0;
  for (const Shape& sh : MatmulShapes()) {
    const Mat w = make(sh.N, sh.K, &rng);
    for (int M : sh.Ms) {
      const float v = kNonFiniteValues[iter++ % 4];
      const auto x = NonFiniteActs(M, sh.K, v, false, &rng);
      Quantized qr(RefKernels(), x, M, sh.K);
      Quantized qt(ks, x, M, sh.K);
      const size_t ldy = sh.N + 3;
      std::vector<float> yr(M * ldy, -7.f), yt(M * ldy, -7.f);
      ref_fn(qr.qa, w.packed.data(), sh.N, sh.K, 0, sh.N, yr.data(), ldy);
      for (auto [n0, n1] : Slices(sh.N, 2))
        run_fn(qt.qa, w.packed.data(), sh.N, sh.K, n0, n1, yt.data(), ldy);
      ASSERT_TRUE(SameBits(yt.data(), yr.data(), yt.size()))
          << "N=" << sh.N << " K=" << sh.K << " M=" << M << " v=" << v;
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < sh.N; ++n)
          ASSERT_EQ(std::isnan(yr[m * ldy + n]), !RowFinite(x, m, sh.K))
              << "N=" << sh.N << " K=" << sh.K << " M=" << M << " m=" << m << " n=" << n;
    }
  }
}

TEST_P(TierTest, MatmulQ4GNonFiniteActsAsan) {
  CheckMatmulNonFinite<Q4Mat>(ks(), MakeQ4, ref::MatmulQ4G, ks().matmul_q4g.run, 62);
}

TEST_P(TierTest, MatmulQ8CNonFiniteActsAsan) {
  CheckMatmulNonFinite<Q8Mat>(ks(), MakeQ8, ref::MatmulQ8C, ks().matmul_q8c.run, 63);
}

// q8c row sums come from the file unchecked: any int32 wsum (a corrupt file)
// gives defined results (zp * wsum in int64), the same bits on every tier.
TEST_P(TierTest, MatmulQ8CCorruptWsumAsan) {
  std::mt19937 rng(64);
  const int32_t extremes[] = {INT32_MIN, INT32_MAX, INT32_MIN + 1, -1, 1 << 30, -(1 << 30)};
  for (const Shape& sh : MatmulShapes()) {
    Q8Mat w = MakeQ8(sh.N, sh.K, &rng);
    const size_t Kp = Kp32(sh.K), bb = Kp * 4 + 32;
    for (int n = 0; n < (sh.N + 3) / 4 * 4; ++n) {
      const int32_t ws = n % 3 ? extremes[n % 6] : static_cast<int32_t>(rng());
      std::memcpy(w.packed.data() + (n / 4) * bb + Kp * 4 + 16 + 4 * (n % 4), &ws, 4);
    }
    for (int M : sh.Ms) {
      const auto x = MakeActs(M, sh.K, ActMode::kOutliers, &rng);  // zp far from 0
      Quantized qr(RefKernels(), x, M, sh.K), qt(ks(), x, M, sh.K);
      const size_t ldy = sh.N;
      std::vector<float> yr(M * ldy, -7.f), yt(M * ldy, -7.f);
      ref::MatmulQ8C(qr.qa, w.packed.data(), sh.N, sh.K, 0, sh.N, yr.data(), ldy);
      for (auto [n0, n1] : Slices(sh.N, 3))
        ks().matmul_q8c.run(qt.qa, w.packed.data(), sh.N, sh.K, n0, n1, yt.data(), ldy);
      ASSERT_TRUE(SameBits(yt.data(), yr.data(), yt.size())) << "N=" << sh.N << " K=" << sh.K;
      if (GetParam() != Tier::kRef) continue;
      for (int m = 0; m < M; ++m)  // the spec, independently: int64, one rounding
        for (int n = 0; n < sh.N; ++n) {
          int64_t idot = 0;
          for (int k = 0; k < sh.K; ++k)
            idot += int64_t{w.vals[static_cast<size_t>(n) * sh.K + k]} *
                    QValue(Tier::kRef, qr.qa, m, k);
          int32_t ws;
          std::memcpy(&ws, w.packed.data() + (n / 4) * bb + Kp * 4 + 16 + 4 * (n % 4), 4);
          const int64_t t = idot - static_cast<int64_t>(qr.zp[m]) * ws;
          const float want = (static_cast<float>(t) * w.scales[n]) * qr.scale[m];
          ASSERT_EQ(F32Bits(yr[m * ldy + n]), F32Bits(want)) << "m=" << m << " n=" << n;
        }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTiers, TierTest, ::testing::ValuesIn(kAllTiers),
                         [](const ::testing::TestParamInfo<Tier>& i) {
                           return std::string(TierName(i.param));
                         });

}  // namespace
}  // namespace lamina::kern
