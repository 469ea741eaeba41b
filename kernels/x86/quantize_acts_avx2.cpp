// Per-token asymmetric int8 activation quantization, AVX2, the x86 tiers'
// "plain + sums" layout (kernels/x86/x86_kernels.h). EXACT: the same scale,
// zp and q as ref::QuantizeActs (kernels/ref/quant_acts_ref.cpp), step by step
// (non-finite rows included: scale kNonFiniteActScale, zp 0, q 0):
//   - min / max: VMINPS(x, mn) = (x < mn) ? x : mn is std::min(mn, x) (and
//     VMAXPS likewise), lanes start at 0 like ref, so the order of the
//     reduction cannot change the result;
//   - the parameters: the ref's scalar statements on that min / max;
//   - q = clamp(round_half_even(x * (1 / scale) + zp)): VMULPS then VADDPS
//     (two roundings, no FMA: -ffp-contract=off), VROUNDPS to nearest-even,
//     std::max(v, -128) then std::min(v, 127) as VMAXPS(-128, v), VMINPS(127, v)
//     (the operand order that keeps ref's result for every input, NaN included).
#include <immintrin.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "kernels/ref/ref.h"
#include "kernels/x86/x86_kernels.h"

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "quantize_acts_avx2.cpp needs -mavx2 -mfma -mf16c (cmake/LaminaCompile.cmake)"
#endif

namespace lamina::kern::x86 {
namespace {

// ref::ChooseQParams's loop: min, max and whether every value is finite
// (|x| <= FLT_MAX, false for NaN and +-Inf, as std::isfinite).
void MinMax(const float* x, int K, float* mn_out, float* mx_out, bool* finite_out) {
  __m256 mn = _mm256_setzero_ps(), mx = _mm256_setzero_ps();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 fmax = _mm256_set1_ps(FLT_MAX);
  __m256 fin = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    const __m256 v = _mm256_loadu_ps(x + k);
    mn = _mm256_min_ps(v, mn);
    mx = _mm256_max_ps(v, mx);
    fin = _mm256_and_ps(fin, _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), fmax, _CMP_LE_OQ));
  }
  bool finite = _mm256_movemask_ps(fin) == 0xFF;
  alignas(32) float a[8], b[8];
  _mm256_store_ps(a, mn);
  _mm256_store_ps(b, mx);
  float fmn = 0.f, fmx = 0.f;
  for (int i = 0; i < 8; ++i) {
    fmn = std::min(fmn, a[i]);
    fmx = std::max(fmx, b[i]);
  }
  for (; k < K; ++k) {
    fmn = std::min(fmn, x[k]);
    fmx = std::max(fmx, x[k]);
    finite &= std::isfinite(x[k]);
  }
  *mn_out = fmn;
  *mx_out = fmx;
  *finite_out = finite;
}

inline __m256i Quant8(const float* x, __m256 inv, __m256 z) {
  const __m256 lo = _mm256_set1_ps(-128.f), hi = _mm256_set1_ps(127.f);
  __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x), inv), z);
  v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  v = _mm256_min_ps(hi, _mm256_max_ps(lo, v));  // std::min(std::max(v, lo), hi)
  return _mm256_cvtps_epi32(v);                 // integral already: exact
}

}  // namespace

size_t QuantizeActsBytes(int M, int K) {
  return QTotOffset(M, K) + XRound64(4 * static_cast<size_t>(M));
}

void QuantizeActsAvx2(const float* x, size_t ldx, int m0, int m1, QActs* qa) {
  const int K = qa->K;
  const size_t Kp = XKp(K), G = Kp / 32;
  uint8_t* base = static_cast<uint8_t*>(qa->data);
  int32_t* qsum8 = reinterpret_cast<int32_t*>(base + QSumOffset(qa->M, K));
  int32_t* qtot = reinterpret_cast<int32_t*>(base + QTotOffset(qa->M, K));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int m = m0; m < m1; ++m) {
    const float* xr = x + static_cast<size_t>(m) * ldx;
    int8_t* q = reinterpret_cast<int8_t*>(base) + static_cast<size_t>(m) * Kp;
    float mn, mx, s, z;
    bool finite;
    MinMax(xr, K, &mn, &mx, &finite);
    ref::QParamsFromMinMax(mn, mx, finite, &s, &z);
    qa->scale[m] = s;
    qa->zp[m] = z;
    int32_t* qs = qsum8 + static_cast<size_t>(m) * G;
    if (s != s) {  // non-finite row: q = 0 (ref.h), so its sums are 0 too
      std::memset(q, 0, Kp);
      std::memset(qs, 0, G * sizeof(int32_t));
      qtot[m] = 0;
      continue;
    }
    const float inv = 1.f / s;
    const __m256 vinv = _mm256_set1_ps(inv), vz = _mm256_set1_ps(z);
    int k = 0;
    for (; k + 32 <= K; k += 32) {
      const __m256i a = Quant8(xr + k, vinv, vz), b = Quant8(xr + k + 8, vinv, vz);
      const __m256i c = Quant8(xr + k + 16, vinv, vz), d = Quant8(xr + k + 24, vinv, vz);
      const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), _mm256_permutevar8x32_epi32(p, order));
    }
    for (; k < K; ++k) {  // the tail: ref's scalar statements
      float v = std::nearbyint(xr[k] * inv + z);
      v = std::min(std::max(v, -128.f), 127.f);
      q[k] = static_cast<int8_t>(v);
    }
    std::memset(q + K, 0, Kp - K);
    // Group sums (padding included, it is 0): VPMADDUBSW(1, q) then VPMADDWD(1).
    __m256i tot = _mm256_setzero_si256();
    for (size_t g = 0; g < G; ++g) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * g));
      const __m256i s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16);
      tot = _mm256_add_epi32(tot, s32);
      __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
      qs[g] = 8 * _mm_cvtsi128_si32(h);
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(tot), _mm256_extracti128_si256(tot, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    qtot[m] = _mm_cvtsi128_si32(h);
  }
}

}  // namespace lamina::kern::x86
