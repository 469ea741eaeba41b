// Float matmul (f32 / f16 / bf16 weights, row-major) for ARMv8.0 NEON, in
// ref's exact order: the 8 partial sums acc[j] (k = 8i + j) are two q
// registers (FMLA, fused, i ascending); then v = acc0 + acc4.. (FADD) and two
// FADDP give ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)); the K % 8 tail is scalar
// fma in order. f16 -> f32 (FCVTL) and bf16 -> f32 (SHLL #16) are exact.
// One token: four rows per pass share the x loads. Several tokens (prefill,
// speculative verification): 2 rows x 4 tokens per pass, then one tile of the
// 2 or 3 tokens left, so every weight is loaded once per 4 tokens (16
// accumulators + 8 x + 2 w registers); each (token, row) keeps ref's order, so
// the result does not depend on M.
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include <cmath>

#include "kernels/neon/arm_kernels.h"
#include "kernels/ref/fp16.h"
#include "loader/format.h"

namespace lamina::kern::arm {
namespace {

struct F32W {
  const float* p;
  float32x4_t Load(size_t i) const { return vld1q_f32(p + i); }
  float Scalar(size_t i) const { return p[i]; }
};
struct F16W {
  const uint16_t* p;
  float32x4_t Load(size_t i) const { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + i))); }
  float Scalar(size_t i) const { return F16ToF32(p[i]); }
};
struct BF16W {
  const uint16_t* p;
  float32x4_t Load(size_t i) const {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p + i), 16));
  }
  float Scalar(size_t i) const { return BF16ToF32(p[i]); }
};

inline float Reduce(float32x4_t a0, float32x4_t a1) {
  const float32x4_t v = vaddq_f32(a0, a1);  // [a0+a4, a1+a5, a2+a6, a3+a7]
  const float32x4_t p = vpaddq_f32(v, v);   // [(a0+a4)+(a1+a5), (a2+a6)+(a3+a7), ..]
  return vgetq_lane_f32(vpaddq_f32(p, p), 0);
}

template <int R, typename W>
void Rows(const float* x, const W& w, int K, int n, float* y) {
  const int K8 = K / 8 * 8;
  float32x4_t a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = vdupq_n_f32(0.f);
  for (int k = 0; k < K8; k += 8) {
    const float32x4_t x0 = vld1q_f32(x + k), x1 = vld1q_f32(x + k + 4);
    for (int r = 0; r < R; ++r) {
      const size_t row = static_cast<size_t>(n + r) * K;
      a0[r] = vfmaq_f32(a0[r], w.Load(row + k), x0);
      a1[r] = vfmaq_f32(a1[r], w.Load(row + k + 4), x1);
    }
  }
  for (int r = 0; r < R; ++r) {
    const size_t row = static_cast<size_t>(n + r) * K;
    float s = Reduce(a0[r], a1[r]);
    for (int k = K8; k < K; ++k) s = std::fma(w.Scalar(row + k), x[k], s);
    y[n + r] = s;
  }
}

// R rows x T tokens: y[t*ldy + n + r] for t < T, r < R.
template <int R, int T, typename W>
void RowsTokens(const float* x, size_t ldx, const W& w, int K, int n, float* y, size_t ldy) {
  const int K8 = K / 8 * 8;
  float32x4_t a0[R][T], a1[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) a0[r][t] = a1[r][t] = vdupq_n_f32(0.f);
  for (int k = 0; k < K8; k += 8) {
    float32x4_t x0[T], x1[T];
    for (int t = 0; t < T; ++t) {
      x0[t] = vld1q_f32(x + t * ldx + k);
      x1[t] = vld1q_f32(x + t * ldx + k + 4);
    }
    for (int r = 0; r < R; ++r) {
      const size_t row = static_cast<size_t>(n + r) * K;
      const float32x4_t w0 = w.Load(row + k), w1 = w.Load(row + k + 4);
      for (int t = 0; t < T; ++t) {
        a0[r][t] = vfmaq_f32(a0[r][t], w0, x0[t]);
        a1[r][t] = vfmaq_f32(a1[r][t], w1, x1[t]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const size_t row = static_cast<size_t>(n + r) * K;
    for (int t = 0; t < T; ++t) {
      const float* xt = x + t * ldx;
      float s = Reduce(a0[r][t], a1[r][t]);
      for (int k = K8; k < K; ++k) s = std::fma(w.Scalar(row + k), xt[k], s);
      y[t * ldy + n + r] = s;
    }
  }
}

// Tokens [m0, m0 + T) over rows [n0, n1): 2 rows at a time.
template <int T, typename W>
void Tile(const float* x, size_t ldx, const W& w, int K, int n0, int n1, float* y, size_t ldy,
          int m0) {
  const float* xm = x + static_cast<size_t>(m0) * ldx;
  float* ym = y + static_cast<size_t>(m0) * ldy;
  int n = n0;
  for (; n + 2 <= n1; n += 2) RowsTokens<2, T>(xm, ldx, w, K, n, ym, ldy);
  for (; n < n1; ++n) RowsTokens<1, T>(xm, ldx, w, K, n, ym, ldy);
}

template <typename W>
void Impl(const float* x, size_t ldx, int M, const W& w, int K, int n0, int n1, float* y,
          size_t ldy) {
  int m0 = 0;
  for (; m0 + 4 <= M; m0 += 4) Tile<4>(x, ldx, w, K, n0, n1, y, ldy, m0);
  switch (M - m0) {  // 2 or 3 tokens left: one more tile, still one weight pass
    case 3:
      Tile<3>(x, ldx, w, K, n0, n1, y, ldy, m0);
      return;
    case 2:
      Tile<2>(x, ldx, w, K, n0, n1, y, ldy, m0);
      return;
    default:
      break;
  }
  for (int m = m0; m < M; ++m) {
    const float* xr = x + static_cast<size_t>(m) * ldx;
    float* yr = y + static_cast<size_t>(m) * ldy;
    int n = n0;
    for (; n + 4 <= n1; n += 4) Rows<4>(xr, w, K, n, yr);
    for (; n < n1; ++n) Rows<1>(xr, w, K, n, yr);
  }
}

}  // namespace

void MatmulFloatNeon(const float* x, size_t ldx, int M, const void* w, int wtype, int N, int K,
                     int n0, int n1, float* y, size_t ldy) {
  (void)N;
  switch (static_cast<format::DType>(wtype)) {
    case format::DType::kF32:
      Impl(x, ldx, M, F32W{static_cast<const float*>(w)}, K, n0, n1, y, ldy);
      break;
    case format::DType::kF16:
      Impl(x, ldx, M, F16W{static_cast<const uint16_t*>(w)}, K, n0, n1, y, ldy);
      break;
    case format::DType::kBF16:
      Impl(x, ldx, M, BF16W{static_cast<const uint16_t*>(w)}, K, n0, n1, y, ldy);
      break;
    default:
      break;  // callers validate the type (as ref)
  }
}

}  // namespace lamina::kern::arm
