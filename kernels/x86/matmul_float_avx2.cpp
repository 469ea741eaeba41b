// Float matmul (f32 / f16 / bf16 weights, row-major [N, K]), AVX2 + FMA + F16C,
// in ref::MatmulFloat's exact order: per (m, n) the 8 partial sums acc[j]
// (k = 8i + j) are the 8 lanes of one ymm (VFMADD231PS, fused, i ascending);
// then ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)); the K % 8 tail as scalar fma in
// order. f16 -> f32 (VCVTPH2PS) and bf16 -> f32 (zero-extend, << 16) are exact.
// Why the tiles: a GEMV (M == 1, decode) streams W once and is bound by memory
// and by the FMA latency chain of each accumulator, so 8 rows run at once (8
// independent chains); with M > 1 (prefill, LoRA) 4 rows x 2 tokens share each
// converted weight vector and each x load. The reduction of 4 accumulators is
// vectorized: t = lo + hi halves, then two rounds of HADDPS give the ref's tree
// for 4 rows in one xmm (LoRA's K = rank is tiny, the reduction dominates).
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "AVX2 + FMA + F16C required"
#endif

#include <immintrin.h>

#include <cmath>

#include "kernels/float_weights_inl.h"
#include "kernels/ref/fp16.h"
#include "kernels/x86/dot_avx2_inl.h"
#include "kernels/x86/x86_ops.h"

namespace lamina::x86 {
namespace {

struct F32W {
  const float* p;
  __m256 Load(size_t i) const { return _mm256_loadu_ps(p + i); }
  float Scalar(size_t i) const { return p[i]; }
};
struct F16W {
  const uint16_t* p;
  __m256 Load(size_t i) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
  }
  float Scalar(size_t i) const { return F16ToF32(p[i]); }
};
struct BF16W {
  const uint16_t* p;
  __m256 Load(size_t i) const {
    const __m256i u =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
  }
  float Scalar(size_t i) const { return BF16ToF32(p[i]); }
};

/// y[t*ldy + n + r] = W(n + r, :) . x(t, :) for r < kR, t < kT.
template <int kR, int kT, typename W>
inline void Tile(const float* x, size_t ldx, const W& w, int K, int n, float* y, size_t ldy) {
  const int K8 = K / 8 * 8;
  __m256 acc[kT][kR];
#pragma GCC unroll 8
  for (int t = 0; t < kT; ++t)
#pragma GCC unroll 8
    for (int r = 0; r < kR; ++r) acc[t][r] = _mm256_setzero_ps();
  for (int k = 0; k < K8; k += 8) {
    __m256 xv[kT];
#pragma GCC unroll 8
    for (int t = 0; t < kT; ++t) xv[t] = _mm256_loadu_ps(x + t * ldx + k);
#pragma GCC unroll 8
    for (int r = 0; r < kR; ++r) {
      const __m256 wv = w.Load(static_cast<size_t>(n + r) * K + k);
#pragma GCC unroll 8
      for (int t = 0; t < kT; ++t) acc[t][r] = _mm256_fmadd_ps(wv, xv[t], acc[t][r]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < kT; ++t) {
    const float* xt = x + t * ldx;
    float* yt = y + t * ldy + n;
    if constexpr (kR % 4 == 0) {
#pragma GCC unroll 8
      for (int r = 0; r < kR; r += 4) {
        const __m128 s = Reduce4(acc[t][r], acc[t][r + 1], acc[t][r + 2], acc[t][r + 3]);
        if (K8 == K) {
          _mm_storeu_ps(yt + r, s);
        } else {
          alignas(16) float v[4];
          _mm_store_ps(v, s);
          for (int i = 0; i < 4; ++i) {
            const size_t row = static_cast<size_t>(n + r + i) * K;
            for (int k = K8; k < K; ++k) v[i] = std::fma(w.Scalar(row + k), xt[k], v[i]);
            yt[r + i] = v[i];
          }
        }
      }
    } else {
#pragma GCC unroll 8
      for (int r = 0; r < kR; ++r) {
        const size_t row = static_cast<size_t>(n + r) * K;
        float s = Reduce8(acc[t][r]);
        for (int k = K8; k < K; ++k) s = std::fma(w.Scalar(row + k), xt[k], s);
        yt[r] = s;
      }
    }
  }
}

struct Impl {
  template <typename W>
  void operator()(const W& w, const float* x, size_t ldx, int M, int K, int n0, int n1, float* y,
                  size_t ldy) const;
};

template <typename W>
void Impl::operator()(const W& w, const float* x, size_t ldx, int M, int K, int n0, int n1,
                      float* y, size_t ldy) const {
  if (M == 1) {
    int n = n0;
    for (; n + 8 <= n1; n += 8) Tile<8, 1>(x, ldx, w, K, n, y, ldy);
    for (; n + 4 <= n1; n += 4) Tile<4, 1>(x, ldx, w, K, n, y, ldy);
    for (; n < n1; ++n) Tile<1, 1>(x, ldx, w, K, n, y, ldy);
    return;
  }
  // Rows outer, token pairs inner: a 4-row block of W stays in L1 / L2 while
  // every token passes over it.
  int n = n0;
  for (; n + 4 <= n1; n += 4) {
    int m = 0;
    for (; m + 2 <= M; m += 2) Tile<4, 2>(x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
    if (m < M) Tile<4, 1>(x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
  }
  for (; n < n1; ++n) {
    int m = 0;
    for (; m + 2 <= M; m += 2) Tile<1, 2>(x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
    if (m < M) Tile<1, 1>(x + m * ldx, ldx, w, K, n, y + m * ldy, ldy);
  }
}

}  // namespace

void MatmulFloatAvx2(const float* x, size_t ldx, int M, const void* w, int wtype, int N, int K,
                     int n0, int n1, float* y, size_t ldy) {
  (void)N;
  kern::WithFloatWeights<F32W, F16W, BF16W>(w, wtype, Impl{}, x, ldx, M, K, n0, n1, y, ldy);
}

}  // namespace lamina::x86
