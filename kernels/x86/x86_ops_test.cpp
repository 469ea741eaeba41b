// The x86-64 element-wise and attention ops (kernels/x86/x86_ops.h) are
// bit-identical to kernels/ref over a table of shapes, head slices, GQA
// groups, KV types, weight types and special values (NaN / ±inf / subnormals
// where the ref defines them). Runs only on a CPU with AVX2 + FMA + F16C
// (skipped with a message otherwise); this file itself is baseline x86-64.
#if defined(__x86_64__)

#include <gtest/gtest.h>

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
#include "kernels/x86/x86_ops.h"

namespace lamina::x86 {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

bool HaveAvx2() {
  const kern::CpuFeatures& f = kern::DetectCpu();
  return f.avx2 && f.fma && f.f16c;
}

#define REQUIRE_AVX2()                                              \
  do {                                                              \
    if (!HaveAvx2()) GTEST_SKIP() << "CPU lacks AVX2 + FMA + F16C"; \
  } while (0)

::testing::AssertionResult SameBits(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(a + i, b + i, 4) != 0)
      return ::testing::AssertionFailure()
             << "first difference at " << i << ": " << a[i] << " (0x" << std::hex << F32Bits(a[i])
             << ") vs ref " << b[i] << " (0x" << F32Bits(b[i]) << ")" << std::dec;
  return ::testing::AssertionSuccess();
}

std::vector<float> Normal(size_t n, float sigma, std::mt19937* rng) {
  std::normal_distribution<float> nd(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(*rng);
  return v;
}

/// Sizes 1..40 (every tail) plus the model widths and their neighbours.
std::vector<int> Sizes() {
  std::vector<int> v;
  for (int n = 1; n <= 40; ++n) v.push_back(n);
  for (int n : {63, 64, 65, 127, 2047, 2048, 2055, 3072, 8191, 8192, 8199}) v.push_back(n);
  return v;
}

// ------------------------------------------------------------------ rmsnorm

TEST(X86Ops, RmsNormExact) {
  REQUIRE_AVX2();
  std::mt19937 rng(1);
  for (int n : Sizes())
    for (float sigma : {1.f, 1e-3f, 300.f})
      for (float eps : {1e-5f, 1e-6f}) {
        const std::vector<float> x = Normal(n, sigma, &rng), w = Normal(n, 1.f, &rng);
        std::vector<float> a(n, -7.f), b(n);
        RmsNormAvx2(a.data(), x.data(), w.data(), n, eps);
        ref::RmsNorm(b.data(), x.data(), w.data(), n, eps);
        ASSERT_TRUE(SameBits(a.data(), b.data(), n)) << "n=" << n << " sigma=" << sigma;
        a = x;  // out aliases x
        RmsNormAvx2(a.data(), a.data(), w.data(), n, eps);
        ASSERT_TRUE(SameBits(a.data(), b.data(), n)) << "in place, n=" << n;
      }
}

// ----------------------------------------------------------------- silu_mul

TEST(X86Ops, SiluMulExact) {
  REQUIRE_AVX2();
  std::mt19937 rng(2);
  for (int n : Sizes()) {
    for (float sigma : {1.f, 8.f, 60.f}) {
      const std::vector<float> g = Normal(n, sigma, &rng), u = Normal(n, 1.f, &rng);
      std::vector<float> a = g, b = g;
      SiluMulAvx2(a.data(), u.data(), n);
      ref::SiluMul(b.data(), u.data(), n);
      ASSERT_TRUE(SameBits(a.data(), b.data(), n)) << "n=" << n << " sigma=" << sigma;
    }
  }
  float dummy = 3.f;
  SiluMulAvx2(&dummy, &dummy, 0);  // n = 0: no access
  EXPECT_EQ(dummy, 3.f);
}

/// Every 509th float bit pattern as the gate (all exponents, NaNs with
/// payloads, ±inf, subnormals, ±0): exercises the vector ExpfRef (of -g) over
/// its whole domain, including the clamps at -104 / 89 and gradual underflow.
/// The up values are finite or ±inf / 0, never NaN where g is NaN (with two
/// NaN operands x86 returns the first one, the one order the compiler may
/// choose for the ref's scalar product).
TEST(X86Ops, SiluMulBitPatternSweep) {
  REQUIRE_AVX2();
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 2.f);
  const size_t kChunk = 1 << 16;
  std::vector<float> g(kChunk), u(kChunk), a(kChunk), b(kChunk);
  uint64_t bits = 0;
  while (bits < (1ull << 32)) {
    for (size_t i = 0; i < kChunk; ++i, bits += 509) {
      g[i] = BitsF32(static_cast<uint32_t>(bits));
      const float special[] = {1.f, 0.f, -kInf, kInf, kNaN};
      u[i] = i % 13 < 5 ? special[i % 13] : nd(rng);
      if (std::isnan(g[i]) && std::isnan(u[i])) u[i] = 1.f;
    }
    a = g;
    b = g;
    SiluMulAvx2(a.data(), u.data(), static_cast<int>(kChunk));
    ref::SiluMul(b.data(), u.data(), static_cast<int>(kChunk));
    ASSERT_TRUE(SameBits(a.data(), b.data(), kChunk)) << "chunk ending at bits " << bits;
  }
  // Hand-picked edges (each also in a vector lane and in the scalar tail).
  const float edges[] = {0.f,         -0.f,         1.f,       -1.f,       88.9f,      89.f,
                         89.0001f,    -89.f,        103.9f,    104.f,      104.0001f,  -104.f,
                         -103.9f,     87.3365f,     -87.3365f, 1e-45f,     -1e-45f,    1.17e-38f,
                         kInf,        -kInf,        kNaN,      -kNaN,      3.4e38f,    -3.4e38f,
                         0.34657359f, -0.34657359f, 1e-7f,     16.635532f, -16.635532f};
  std::vector<float> ge(std::begin(edges), std::end(edges)), ue(ge.size(), 1.5f);
  std::vector<float> ae = ge, be = ge;
  SiluMulAvx2(ae.data(), ue.data(), static_cast<int>(ge.size()));
  ref::SiluMul(be.data(), ue.data(), static_cast<int>(ge.size()));
  EXPECT_TRUE(SameBits(ae.data(), be.data(), ge.size()));
}

/// Every op at every float offset from a 32-byte boundary (the kernels use
/// unaligned loads; the results must not depend on where the data sits).
TEST(X86Ops, ElementwiseOpsAnyAlignment) {
  REQUIRE_AVX2();
  std::mt19937 rng(12);
  const int n = 1024 + 5;
  const std::vector<float> x = Normal(n, 2.f, &rng), w = Normal(n, 1.f, &rng);
  std::vector<float> rn(n), sm = x, sl = x, hd(x.begin(), x.begin() + 1024);
  ref::RmsNorm(rn.data(), x.data(), w.data(), n, 1e-5f);
  ref::Softmax(sm.data(), n);
  ref::SiluMul(sl.data(), w.data(), n);
  ref::Hadamard(hd.data(), 1024);
  alignas(32) float buf[4][1024 + 5 + 8];
  for (int off = 0; off < 8; ++off) {
    float *a = buf[0] + off, *b = buf[1] + off, *c = buf[2] + off, *d = buf[3] + off;
    std::copy(x.begin(), x.end(), a);
    std::copy(w.begin(), w.end(), b);
    RmsNormAvx2(c, a, b, n, 1e-5f);
    ASSERT_TRUE(SameBits(c, rn.data(), n)) << "rmsnorm off=" << off;
    std::copy(x.begin(), x.end(), c);
    SoftmaxAvx2(c, n);
    ASSERT_TRUE(SameBits(c, sm.data(), n)) << "softmax off=" << off;
    std::copy(x.begin(), x.end(), c);
    SiluMulAvx2(c, b, n);
    ASSERT_TRUE(SameBits(c, sl.data(), n)) << "silu_mul off=" << off;
    std::copy(x.begin(), x.begin() + 1024, d);
    HadamardAvx2(d, 1024);
    ASSERT_TRUE(SameBits(d, hd.data(), 1024)) << "hadamard off=" << off;
  }
}

// ------------------------------------------------------------------ softmax

TEST(X86Ops, SoftmaxExact) {
  REQUIRE_AVX2();
  std::mt19937 rng(4);
  std::vector<int> sizes = Sizes();
  for (int n : {100, 255, 256, 257, 1000, 4096, 4097}) sizes.push_back(n);
  for (int n : sizes)
    for (int mode = 0; mode < 6; ++mode) {
      std::vector<float> x = Normal(n, mode == 1 ? 40.f : mode == 2 ? 1e-4f : 3.f, &rng);
      if (mode == 3)  // -inf entries (masked scores) but never all of them
        for (int i = 1; i < n; i += 3) x[i] = -kInf;
      if (mode == 4)
        for (auto& v : x) v = 0.5f;  // all equal, the max repeated
      if (mode == 5)                 // huge magnitudes: most exps underflow to 0
        for (int i = 0; i < n; ++i) x[i] = (i % 5 == 0 ? 1e30f : -1e30f) * (1.f + 0.01f * i);
      std::vector<float> a = x, b = x;
      SoftmaxAvx2(a.data(), n);
      ref::Softmax(b.data(), n);
      ASSERT_TRUE(SameBits(a.data(), b.data(), n)) << "n=" << n << " mode=" << mode;
    }
}

/// NaN or +inf anywhere: every output NaN in both (the ref's definition; NaN
/// payloads are not specified).
TEST(X86Ops, SoftmaxNanInfRowsAllNan) {
  REQUIRE_AVX2();
  std::mt19937 rng(5);
  for (int n : {1, 3, 8, 9, 17, 64, 1001})
    for (float bad : {kNaN, kInf})
      for (int at : {0, n / 2, n - 1}) {
        std::vector<float> x = Normal(n, 1.f, &rng);
        x[at] = bad;
        std::vector<float> a = x, b = x;
        SoftmaxAvx2(a.data(), n);
        ref::Softmax(b.data(), n);
        for (int i = 0; i < n; ++i) {
          ASSERT_TRUE(std::isnan(b[i])) << "ref n=" << n << " i=" << i;
          ASSERT_TRUE(std::isnan(a[i])) << "avx2 n=" << n << " at=" << at << " i=" << i;
        }
      }
}

// ----------------------------------------------------------------- hadamard

TEST(X86Ops, HadamardExact) {
  REQUIRE_AVX2();
  std::mt19937 rng(6);
  for (int n = 1; n <= 32768; n *= 2)
    for (float sigma : {1.f, 1e20f}) {
      const std::vector<float> x = Normal(n, sigma, &rng);
      std::vector<float> a = x, b = x;
      HadamardAvx2(a.data(), n);
      ref::Hadamard(b.data(), n);
      ASSERT_TRUE(SameBits(a.data(), b.data(), n)) << "n=" << n << " sigma=" << sigma;
    }
  // ±inf inputs (inf - inf = NaN lanes appear mid-transform).
  std::vector<float> x = Normal(8192, 1.f, &rng);
  x[5] = kInf;
  x[77] = -kInf;
  x[4000] = kInf;
  std::vector<float> a = x, b = x;
  HadamardAvx2(a.data(), 8192);
  ref::Hadamard(b.data(), 8192);
  EXPECT_TRUE(SameBits(a.data(), b.data(), 8192));
}

// --------------------------------------------------------------------- rope

TEST(X86Ops, RopeExact) {
  REQUIRE_AVX2();
  std::mt19937 rng(7);
  for (int n_heads : {1, 3, 8})
    for (int head_dim = 2; head_dim <= 130; head_dim += 2) {
      const std::vector<float> x = Normal(static_cast<size_t>(n_heads) * head_dim, 2.f, &rng);
      const std::vector<float> c = Normal(head_dim / 2, 1.f, &rng),
                               s = Normal(head_dim / 2, 1.f, &rng);
      std::vector<float> a = x, b = x;
      RopeAvx2(a.data(), n_heads, head_dim, c.data(), s.data());
      ref::Rope(b.data(), n_heads, head_dim, c.data(), s.data());
      ASSERT_TRUE(SameBits(a.data(), b.data(), a.size()))
          << "heads=" << n_heads << " head_dim=" << head_dim;
    }
}

// ------------------------------------------------------------ matmul float

/// W [N, K] as wtype 0 (f32), 1 (f16) or 2 (bf16), from f32 values.
std::vector<uint8_t> MakeW(const std::vector<float>& wf, int wtype) {
  std::vector<uint8_t> w(wf.size() * (wtype == 0 ? 4 : 2));
  for (size_t i = 0; i < wf.size(); ++i) {
    if (wtype == 0) {
      std::memcpy(w.data() + 4 * i, &wf[i], 4);
    } else {
      const uint16_t h = wtype == 1 ? F32ToF16(wf[i]) : F32ToBF16(wf[i]);
      std::memcpy(w.data() + 2 * i, &h, 2);
    }
  }
  return w;
}

TEST(X86Ops, MatmulFloatExact) {
  REQUIRE_AVX2();
  std::mt19937 rng(8);
  std::vector<int> ks;
  for (int k = 1; k <= 17; ++k) ks.push_back(k);
  for (int k : {23, 24, 31, 32, 33, 64, 173, 2048}) ks.push_back(k);
  for (int wtype : {0, 1, 2})
    for (int K : ks)
      for (int N : {1, 3, 4, 5, 8, 9, 13, 17, 33})
        for (int M : {1, 2, 3, 5}) {
          if (K >= 2048 && N > 9) continue;  // keep the big-K rows short
          const size_t ldx = K + (M % 2), ldy = N + 2;
          const std::vector<float> x = Normal(M * ldx, 1.f, &rng);
          const std::vector<uint8_t> w =
              MakeW(Normal(static_cast<size_t>(N) * K, 0.5f, &rng), wtype);
          std::vector<float> yr(M * ldy, -9.f), yt(M * ldy, -9.f);
          ref::MatmulFloat(x.data(), ldx, M, w.data(), wtype, N, K, 0, N, yr.data(), ldy);
          // Any n0 is allowed for float: split at every point for small N,
          // at thirds otherwise.
          std::vector<int> cuts;
          if (N <= 9) {
            for (int c = 0; c <= N; ++c) cuts.push_back(c);
          } else {
            cuts = {0, N / 3, N - 1, N};
          }
          for (int cut : cuts) {
            std::fill(yt.begin(), yt.end(), -9.f);
            if (cut > 0)
              MatmulFloatAvx2(x.data(), ldx, M, w.data(), wtype, N, K, 0, cut, yt.data(), ldy);
            if (cut < N)
              MatmulFloatAvx2(x.data(), ldx, M, w.data(), wtype, N, K, cut, N, yt.data(), ldy);
            ASSERT_TRUE(SameBits(yt.data(), yr.data(), yt.size()))
                << "wtype=" << wtype << " K=" << K << " N=" << N << " M=" << M << " cut=" << cut;
          }
        }
}

/// Larger M (prefill-shaped) and special weight values: f16 subnormals, ±inf
/// and values that round to inf, bf16 of huge / tiny magnitudes.
TEST(X86Ops, MatmulFloatPrefillAndSpecialWeights) {
  REQUIRE_AVX2();
  std::mt19937 rng(9);
  const int M = 11, N = 21, K = 75;
  for (int wtype : {0, 1, 2}) {
    std::vector<float> wf = Normal(static_cast<size_t>(N) * K, 1.f, &rng);
    for (size_t i = 0; i < wf.size(); i += 7) wf[i] *= 1e-6f;  // f16 subnormals
    wf[3] = kInf;
    wf[K + 9] = -kInf;
    wf[2 * K + 1] = 70000.f;  // f16: rounds to inf
    wf[4 * K + 2] = 1e38f;
    wf[5 * K + 3] = 1e-40f;
    const std::vector<uint8_t> w = MakeW(wf, wtype);
    const std::vector<float> x = Normal(static_cast<size_t>(M) * K, 1.f, &rng);
    std::vector<float> yr(M * N), yt(M * N, -9.f);
    ref::MatmulFloat(x.data(), K, M, w.data(), wtype, N, K, 0, N, yr.data(), N);
    MatmulFloatAvx2(x.data(), K, M, w.data(), wtype, N, K, 0, 10, yt.data(), N);
    MatmulFloatAvx2(x.data(), K, M, w.data(), wtype, N, K, 10, N, yt.data(), N);
    ASSERT_TRUE(SameBits(yt.data(), yr.data(), yt.size())) << "wtype=" << wtype;
  }
}

// ---------------------------------------------------------------- attention

struct AttnCase {
  kern::KvType kv;
  int head_dim, n_heads, n_kv, n_pos;
  float q_sigma;
};

/// Runs [h0, h1) with scratch of exactly kAttentionScratchRows * n_pos floats
/// between guard words, out pre-filled with a sentinel: checks the slice is
/// bit-identical to ref, nothing outside it or the scratch was written.
void CheckSlices(const AttnCase& c, const std::vector<std::pair<int, int>>& slices,
                 std::mt19937* rng) {
  const size_t kv_stride = static_cast<size_t>(c.n_kv) * c.head_dim + 3;  // unaligned rows
  const std::vector<float> q = Normal(static_cast<size_t>(c.n_heads) * c.head_dim, c.q_sigma, rng);
  const std::vector<float> kf = Normal(c.n_pos * kv_stride, 1.f, rng),
                           vf = Normal(c.n_pos * kv_stride, 1.f, rng);
  std::vector<uint16_t> kh(kf.size()), vh(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) kh[i] = F32ToF16(kf[i]), vh[i] = F32ToF16(vf[i]);
  const bool f16 = c.kv == kern::KvType::kF16, q8 = c.kv == kern::KvType::kQ8;
  const size_t q8_stride = ref::KvQ8RowBytes(c.n_kv, c.head_dim) + 3;
  std::vector<uint8_t> k8(c.n_pos * q8_stride), v8(c.n_pos * q8_stride);
  ref::StoreKvQ8Rows(kf.data(), kv_stride, c.n_pos, c.n_kv, c.head_dim, k8.data(), q8_stride);
  ref::StoreKvQ8Rows(vf.data(), kv_stride, c.n_pos, c.n_kv, c.head_dim, v8.data(), q8_stride);
  const void* kc = q8    ? static_cast<const void*>(k8.data())
                   : f16 ? static_cast<const void*>(kh.data())
                         : kf.data();
  const void* vc = q8    ? static_cast<const void*>(v8.data())
                   : f16 ? static_cast<const void*>(vh.data())
                         : vf.data();
  const size_t stride = q8 ? q8_stride : kv_stride;
  const size_t out_n = static_cast<size_t>(c.n_heads) * c.head_dim;
  const size_t scr_n = static_cast<size_t>(kern::kAttentionScratchRows) * c.n_pos;
  std::vector<float> sr(scr_n), outr(out_n);
  ref::Attention(q.data(), kc, vc, c.kv, stride, c.n_pos, c.n_heads, c.n_kv, c.head_dim, 0,
                 c.n_heads, sr.data(), outr.data());
  constexpr size_t kGuard = 16;
  const float kSentinel = -12345.f;
  std::vector<float> scr(scr_n + 2 * kGuard, kSentinel), out(out_n);
  for (const auto& [h0, h1] : slices) {
    std::fill(out.begin(), out.end(), kSentinel);
    AttentionAvx2(q.data(), kc, vc, c.kv, stride, c.n_pos, c.n_heads, c.n_kv, c.head_dim, h0, h1,
                  scr.data() + kGuard, out.data());
    const size_t a = static_cast<size_t>(h0) * c.head_dim, b = static_cast<size_t>(h1) * c.head_dim;
    const std::string what = "kv=" +
                             std::string(q8    ? "q8"
                                         : f16 ? "f16"
                                               : "f32") +
                             " head_dim=" + std::to_string(c.head_dim) +
                             " heads=" + std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv) +
                             " n_pos=" + std::to_string(c.n_pos) + " slice=[" + std::to_string(h0) +
                             "," + std::to_string(h1) + ")";
    ASSERT_TRUE(SameBits(out.data() + a, outr.data() + a, b - a)) << what;
    for (size_t i = 0; i < out_n; ++i)
      if (i < a || i >= b) {
        ASSERT_EQ(out[i], kSentinel) << what << " wrote out[" << i << "]";
      }
    for (size_t i = 0; i < kGuard; ++i) {
      ASSERT_EQ(scr[i], kSentinel) << what << " scratch underrun";
      ASSERT_EQ(scr[kGuard + scr_n + i], kSentinel) << what << " scratch overrun";
    }
  }
}

std::vector<std::pair<int, int>> AllSlices(int n_heads) {
  std::vector<std::pair<int, int>> v;
  for (int h0 = 0; h0 < n_heads; ++h0)
    for (int h1 = h0 + 1; h1 <= n_heads; ++h1) v.push_back({h0, h1});
  return v;
}

/// Every head slice of small configurations: head_dim tails, groups 1..8.
TEST(X86Ops, AttentionExactAllSlices) {
  REQUIRE_AVX2();
  std::mt19937 rng(10);
  for (kern::KvType kv : {kern::KvType::kF32, kern::KvType::kF16, kern::KvType::kQ8})
    for (int head_dim : {1, 7, 8, 13, 16, 24, 36, 64, 100, 128})
      for (int group : {1, 2, 3, 4, 5, 8})
        for (int n_pos : {1, 2, 7, 9, 33, 70}) {
          const int n_kv = group >= 4 ? 1 : 2;
          const AttnCase c{kv, head_dim, n_kv * group, n_kv, n_pos, 1.f};
          CheckSlices(c, AllSlices(c.n_heads), &rng);
        }
}

/// Model-shaped heads at long context (several kPosBlock blocks, K tails of
/// the position loops), sharp and flat score distributions.
TEST(X86Ops, AttentionExactLongContext) {
  REQUIRE_AVX2();
  std::mt19937 rng(11);
  const std::vector<std::pair<int, int>> slices = {{0, 32}, {0, 5}, {5, 19}, {19, 32}, {31, 32}};
  for (kern::KvType kv : {kern::KvType::kF32, kern::KvType::kF16, kern::KvType::kQ8})
    for (int n_pos : {129, 1000, 3001}) {
      CheckSlices({kv, 64, 32, 8, n_pos, 1.f}, slices, &rng);               // 1B: group 4
      CheckSlices({kv, 64, 32, 8, n_pos, 8.f}, slices, &rng);               // peaked softmax
      CheckSlices({kv, 128, 24, 8, n_pos, 1.f}, {{0, 24}, {2, 13}}, &rng);  // 3B: group 3
    }
}

}  // namespace
}  // namespace lamina::x86

#endif  // defined(__x86_64__)
