// Float matmul (f32 / f16 / bf16 weights, row-major) for ARMv8.0 NEON, in
// ref's exact order: the 8 partial sums acc[j] (k = 8i + j) of a (token, row)
// are FMLA chains (fused, i ascending); then v = acc0 + acc4.. (FADD) and two
// FADDP give ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)); the K % 8 tail is scalar
// fma in order. f16 -> f32 (FCVTL) and bf16 -> f32 (SHLL #16) are exact.
//
// Why the tiles: an R-row x T-token tile loads 4/T bytes of weights (shared
// by T tokens) plus 4/R bytes of activations (shared by R rows) per f32
// multiply-add, so a tile wants both large, but the 32 q registers must hold
// its accumulators plus the operands. A pass of M tokens in one token tile
// loads the weights once and the activations N/R times: W * (1 + M/R) bytes
// for W bytes of weights, so the activation term (paid per evaluated token of
// a speculative verification pass) shrinks with R. Decode (T = 1) takes 14
// rows over the whole of K (28 accumulators, x0 / x1, one streamed weight
// vector). With several tokens (speculative verification, prefill) the 8
// partial sums, which are independent chains, are computed as lanes 0-3 then
// lanes 4-7 in two passes over a K chunk (the first half's sums wait in
// memory): R*T accumulators per pass plus min(R, T) operands held and one
// streamed, so tiles of 14 x 2, 9 x 3, 6 x 4, 5 x 5 and 4 x 6 fit (M = 5:
// W * 2 per pass against W * 2.67 for 3 x 5). Passes of 4..12 tokens with
// K <= 1024 take the chain-major tiles below instead (one of the 8 partial
// sums per vector, for 4 tokens: the weights once per 12 tokens). A K chunk
// of 256 values keeps the tile's weights and activations in L1 between the
// two passes. Each
// (token, row) keeps ref's order, so the result depends neither on M nor on
// the tile.
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include <algorithm>
#include <cmath>

#include "kernels/float_weights_inl.h"
#include "kernels/neon/arm_kernels.h"
#include "kernels/ref/fp16.h"

namespace lamina::kern::arm {
namespace {

// Values of K per chunk (a multiple of 8; 1 KiB of an f32 row).
constexpr int kKChunk = 256;

// Register pressure: GCC hoists every load of a tile step to the top of the
// loop body, so a tile whose accumulators nearly fill the 32 registers spills
// some of them (a load + store per step). So the streamed operand is loaded
// by an asm volatile (LoadQ / LoadD: one LDR, the loaded memory an input):
// volatile asms keep their order and are not hoisted together, so one
// streamed vector is live at a time (checked in the disassembly: no stack
// access in the tile loops).
inline float32x4_t LoadQ(const float* p) {
  float32x4_t v;
  asm volatile("ldr %q0, %1" : "=w"(v) : "m"(*reinterpret_cast<const float(*)[4]>(p)));
  return v;
}
inline uint16x4_t LoadD(const uint16_t* p) {
  uint16x4_t v;
  asm volatile("ldr %d0, %1" : "=w"(v) : "m"(*reinterpret_cast<const uint16_t(*)[4]>(p)));
  return v;
}

/// One f32 broadcast to 4 lanes (LD1R: a 4-byte load), ordered as LoadQ.
inline float32x4_t LoadDup(const float* p) {
  float32x4_t v;
  asm volatile("ld1r {%0.4s}, %1" : "=w"(v) : "Q"(*p));
  return v;
}

struct F32W {
  const float* p;
  float32x4_t Load(size_t i) const { return LoadQ(p + i); }
  float32x4_t Dup(const float* q) const { return LoadDup(q); }
  float Scalar(size_t i) const { return p[i]; }
};
struct F16W {
  const uint16_t* p;
  float32x4_t Load(size_t i) const { return vcvt_f32_f16(vreinterpret_f16_u16(LoadD(p + i))); }
  float32x4_t Dup(const uint16_t* q) const { return vdupq_n_f32(F16ToF32(*q)); }
  float Scalar(size_t i) const { return F16ToF32(p[i]); }
};
struct BF16W {
  const uint16_t* p;
  float32x4_t Load(size_t i) const { return vreinterpretq_f32_u32(vshll_n_u16(LoadD(p + i), 16)); }
  float32x4_t Dup(const uint16_t* q) const { return vdupq_n_f32(BF16ToF32(*q)); }
  float Scalar(size_t i) const { return BF16ToF32(p[i]); }
};

inline float Reduce(float32x4_t a0, float32x4_t a1) {
  const float32x4_t v = vaddq_f32(a0, a1);  // [a0+a4, a1+a5, a2+a6, a3+a7]
  const float32x4_t p = vpaddq_f32(v, v);   // [(a0+a4)+(a1+a5), (a2+a6)+(a3+a7), ..]
  return vgetq_lane_f32(vpaddq_f32(p, p), 0);
}

/// Decode (one token): R rows per pass over the whole of K (2R accumulators),
/// x loaded once per R rows.
template <int R, typename W>
void GemvRows(const float* x, const W& w, int K, int n, float* y) {
  const int K8 = K / 8 * 8;
  float32x4_t a0[R], a1[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = vdupq_n_f32(0.f);
  for (int k = 0; k < K8; k += 8) {
    const float32x4_t x0 = vld1q_f32(x + k), x1 = vld1q_f32(x + k + 4);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const size_t row = static_cast<size_t>(n + r) * K;
      a0[r] = vfmaq_f32(a0[r], w.Load(row + k), x0);
      a1[r] = vfmaq_f32(a1[r], w.Load(row + k + 4), x1);
    }
  }
#pragma GCC unroll 16  // (a loop indexing a0 / a1 would keep them in memory)
  for (int r = 0; r < R; ++r) {
    const size_t row = static_cast<size_t>(n + r) * K;
    float s = Reduce(a0[r], a1[r]);
    for (int k = K8; k < K; ++k) s = std::fma(w.Scalar(row + k), x[k], s);
    y[n + r] = s;
  }
}

/// One half (lanes 4h..4h+3 of ref's 8 partial sums) of an R x T tile over
/// k in [k0, k1) (multiples of 8). The sums start at 0 (first) or from
/// part[h]; they go back to part[h], or (last, h == 1) are reduced with
/// part[0] into y[t * ldy + n + r]. The smaller operand set stays in
/// registers, the other streams.
template <int R, int T, typename W>
inline void HalfPass(const float* x, size_t ldx, const W& w, int K, int n, int k0, int k1, int h,
                     bool first, bool last, float* part, float* y, size_t ldy) {
  constexpr int kRT4 = R * T * 4;
  float* ph = part + h * kRT4;
  float32x4_t acc[R][T];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
      acc[r][t] = first ? vdupq_n_f32(0.f) : vld1q_f32(ph + (r * T + t) * 4);
  for (int k = k0 + 4 * h; k < k1; k += 8) {
    if constexpr (R <= T) {
      float32x4_t wv[R];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) wv[r] = w.Load(static_cast<size_t>(n + r) * K + k);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const float32x4_t xv = LoadQ(x + t * ldx + k);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) acc[r][t] = vfmaq_f32(acc[r][t], wv[r], xv);
      }
    } else {
      float32x4_t xv[T];
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) xv[t] = vld1q_f32(x + t * ldx + k);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const float32x4_t wv = w.Load(static_cast<size_t>(n + r) * K + k);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[r][t] = vfmaq_f32(acc[r][t], wv, xv[t]);
      }
    }
  }
  if (!last) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) vst1q_f32(ph + (r * T + t) * 4, acc[r][t]);
    return;
  }
  // Sums to y first, the K % 8 tail (if any) after: the reduction then needs
  // no pointers beyond y (GCC otherwise reloads them from the stack per sum).
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
      y[t * ldy + n + r] = Reduce(vld1q_f32(part + (r * T + t) * 4), acc[r][t]);
  const int K8 = K / 8 * 8;
  if (K8 == K) return;
  for (int r = 0; r < R; ++r) {
    const size_t row = static_cast<size_t>(n + r) * K;
    for (int t = 0; t < T; ++t) {
      const float* xt = x + t * ldx;
      float s = y[t * ldy + n + r];
      for (int k = K8; k < K; ++k) s = std::fma(w.Scalar(row + k), xt[k], s);
      y[t * ldy + n + r] = s;
    }
  }
}

/// y[t * ldy + n + r] = W(n + r, :) . x(t, :) for r < R, t < T.
template <int R, int T, typename W>
void Tile(const float* x, size_t ldx, const W& w, int K, int n, float* y, size_t ldy) {
  const int K8 = K / 8 * 8;
  if (K8 == 0) {  // K < 8: the scalar tail alone (ref's sum of zeros is +0)
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) {
        float s = 0.f;
        for (int k = 0; k < K; ++k)
          s = std::fma(w.Scalar(static_cast<size_t>(n + r) * K + k), x[t * ldx + k], s);
        y[t * ldy + n + r] = s;
      }
    return;
  }
  float part[2 * R * T * 4];  // lanes 0-3 and 4-7 of the partial sums
  for (int kc = 0; kc < K8; kc += kKChunk) {
    const int ke = std::min(K8, kc + kKChunk);
#pragma GCC unroll 1
    for (int h = 0; h < 2; ++h)
      HalfPass<R, T>(x, ldx, w, K, n, kc, ke, h, kc == 0, h == 1 && ke == K8, part, y, ldy);
  }
}

// Tokens [0, T) over rows [n0, n1): R rows at a time, then 8, 4, 2 and 1.
template <int R, int T, typename W>
void Rows(const float* x, size_t ldx, const W& w, int K, int n0, int n1, float* y, size_t ldy) {
  int n = n0;
  for (; n + R <= n1; n += R) Tile<R, T>(x, ldx, w, K, n, y, ldy);
  if constexpr (R > 8)
    for (; n + 8 <= n1; n += 8) Tile<8, T>(x, ldx, w, K, n, y, ldy);
  if constexpr (R > 4)
    for (; n + 4 <= n1; n += 4) Tile<4, T>(x, ldx, w, K, n, y, ldy);
  if constexpr (R > 2)
    for (; n + 2 <= n1; n += 2) Tile<2, T>(x, ldx, w, K, n, y, ldy);
  for (; n < n1; ++n) Tile<1, T>(x, ldx, w, K, n, y, ldy);
}

// ---- chain-major tiles (4..12 tokens, K <= kCmMaxK) ------------------------
//
// Why: a tile of full-width (token, row) sums needs R*T accumulators, which
// caps R*T near 25 (5 x 5: W * (1/5 + 1/5) bytes per token). Here a vector
// holds ONE of ref's 8 partial sums (chain j: k = 8i + j) for 4 tokens, and
// the 8 chains run one after the other over the whole of K: R rows x 4G
// tokens need only R*G accumulators, so 24 x 4, 12 x 8 and 8 x 12 tiles fit
// (the weight a (row, chain, i) step needs is one LD1R, shared by the 4G
// tokens). The price: each chain's sums go through memory once (8 loads of
// 4 bytes per (row, token) for the final ((c0+c4)+(c1+c5))+((c2+c6)+(c3+c7))).
// Per (row, token) at K = 64, 5 tokens: ~104 bytes against 118 for 5 x 5; at
// 9 tokens ~92 against ~120. x is first repacked per chain: xp[j][i][t] =
// x[t][8i + j] (zero for the padding lanes t >= M), on the stack.
constexpr int kCmMaxK = 1024;
constexpr int kCmMaxT = 12;

/// Chain sums of rows n..n+R-1 for the 4G tokens of xp: cs[(j * R + r) * 4G
/// + t] = ref's acc[j] of (row n + r, token t).
template <int R, int G, typename W>
void CmChains(const float* xp, int I, const W& w, int K, int n, float* cs) {
  constexpr int T = 4 * G;
  const auto* w0 = w.p + static_cast<size_t>(n) * K;
#pragma GCC unroll 1
  for (int j = 0; j < 8; ++j) {
    float32x4_t acc[R][G];
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
      for (int g = 0; g < G; ++g) acc[r][g] = vdupq_n_f32(0.f);
    const float* xj = xp + static_cast<size_t>(j) * I * T;
    for (int i = 0; i < I; ++i) {
      float32x4_t xv[G];
#pragma GCC unroll 3
      for (int g = 0; g < G; ++g) xv[g] = vld1q_f32(xj + i * T + 4 * g);
      const auto* pr = w0 + 8 * i + j;
#pragma GCC unroll 24
      for (int r = 0; r < R; ++r, pr += K) {
        const float32x4_t wv = w.Dup(pr);
#pragma GCC unroll 3
        for (int g = 0; g < G; ++g) acc[r][g] = vfmaq_f32(acc[r][g], wv, xv[g]);
      }
    }
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
      for (int g = 0; g < G; ++g) vst1q_f32(cs + (j * R + r) * T + 4 * g, acc[r][g]);
  }
}

/// y[t * ldy + n + r] for t < M, r < R from the chain sums (4 tokens per
/// vector add, ref's reduction order), then the K % 8 tail in order.
template <int R, int G, typename W>
void CmReduce(const float* cs, const float* x, size_t ldx, const W& w, int K, int n, int M,
              float* y, size_t ldy) {
  constexpr int T = 4 * G;
  for (int r = 0; r < R; ++r)
    for (int g = 0; g < G; ++g) {
      auto c = [&](int j) { return vld1q_f32(cs + (j * R + r) * T + 4 * g); };
      const float32x4_t v = vaddq_f32(vaddq_f32(vaddq_f32(c(0), c(4)), vaddq_f32(c(1), c(5))),
                                      vaddq_f32(vaddq_f32(c(2), c(6)), vaddq_f32(c(3), c(7))));
      float o[4];
      vst1q_f32(o, v);
      for (int l = 0; l < 4 && 4 * g + l < M; ++l) y[(4 * g + l) * ldy + n + r] = o[l];
    }
  const int K8 = K / 8 * 8;
  if (K8 == K) return;
  for (int r = 0; r < R; ++r) {
    const size_t row = static_cast<size_t>(n + r) * K;
    for (int t = 0; t < M; ++t) {
      float s = y[t * ldy + n + r];
      for (int k = K8; k < K; ++k) s = std::fma(w.Scalar(row + k), x[t * ldx + k], s);
      y[t * ldy + n + r] = s;
    }
  }
}

/// Rows [n0, n1) for M (<= 4G) tokens, R rows per tile, then 8, 4, 2, 1.
template <int G, int R, typename W>
void CmRows(const float* x, size_t ldx, const W& w, int M, int K, int n0, int n1, float* y,
            size_t ldy) {
  constexpr int T = 4 * G;
  const int K8 = K / 8 * 8, I = K8 / 8;
  float xp[kCmMaxK * T];
  for (int j = 0; j < 8; ++j)
    for (int i = 0; i < I; ++i)
      for (int t = 0; t < T; ++t) xp[(j * I + i) * T + t] = t < M ? x[t * ldx + 8 * i + j] : 0.f;
  float cs[8 * R * T];
  int n = n0;
  for (; n + R <= n1; n += R) {
    CmChains<R, G>(xp, I, w, K, n, cs);
    CmReduce<R, G>(cs, x, ldx, w, K, n, M, y, ldy);
  }
  if constexpr (R > 8)
    for (; n + 8 <= n1; n += 8) {
      CmChains<8, G>(xp, I, w, K, n, cs);
      CmReduce<8, G>(cs, x, ldx, w, K, n, M, y, ldy);
    }
  for (; n + 4 <= n1; n += 4) {
    CmChains<4, G>(xp, I, w, K, n, cs);
    CmReduce<4, G>(cs, x, ldx, w, K, n, M, y, ldy);
  }
  for (; n < n1; ++n) {
    CmChains<1, G>(xp, I, w, K, n, cs);
    CmReduce<1, G>(cs, x, ldx, w, K, n, M, y, ldy);
  }
}

struct Impl {
  template <typename W>
  void operator()(const W& w, const float* x, size_t ldx, int M, int K, int n0, int n1, float* y,
                  size_t ldy) const {
    // Tokens in groups of 5 (5 x 5 tiles; 4 then 3 for 7) while more than 6
    // are left, then one group of the rest. Each shape is the R x T tile with
    // the most rows whose R*T accumulators, T (or R) operands and one streamed
    // operand fit the 32 registers (no spills).
    int m = 0;
    if (K >= 8 && K <= kCmMaxK && M >= 4) {  // chain-major: 12 tokens at a time, then the rest
      for (; M - m >= 4; m += kCmMaxT) {
        const int t = std::min(kCmMaxT, M - m);
        const float* xm = x + m * ldx;
        float* ym = y + m * ldy;
        if (t > 8) {
          CmRows<3, 8>(xm, ldx, w, t, K, n0, n1, ym, ldy);
        } else if (t > 4) {
          CmRows<2, 12>(xm, ldx, w, t, K, n0, n1, ym, ldy);
        } else {
          CmRows<1, 24>(xm, ldx, w, t, K, n0, n1, ym, ldy);
        }
        if (t < kCmMaxT) return;
      }
    }
    while (M - m > 6) {
      const int g = M - m == 7 ? 4 : 5;
      if (g == 4) {
        Rows<6, 4>(x + m * ldx, ldx, w, K, n0, n1, y + m * ldy, ldy);
      } else {
        Rows<5, 5>(x + m * ldx, ldx, w, K, n0, n1, y + m * ldy, ldy);
      }
      m += g;
    }
    const float* xm = x + m * ldx;
    float* ym = y + m * ldy;
    switch (M - m) {
      case 6:
        return Rows<4, 6>(xm, ldx, w, K, n0, n1, ym, ldy);
      case 5:
        return Rows<5, 5>(xm, ldx, w, K, n0, n1, ym, ldy);
      case 4:
        return Rows<6, 4>(xm, ldx, w, K, n0, n1, ym, ldy);
      case 3:
        return Rows<9, 3>(xm, ldx, w, K, n0, n1, ym, ldy);
      case 2:
        return Rows<14, 2>(xm, ldx, w, K, n0, n1, ym, ldy);
      case 1: {  // decode: a GEMV
        int n = n0;
        for (; n + 14 <= n1; n += 14) GemvRows<14>(xm, w, K, n, ym);
        for (; n + 8 <= n1; n += 8) GemvRows<8>(xm, w, K, n, ym);
        for (; n + 4 <= n1; n += 4) GemvRows<4>(xm, w, K, n, ym);
        for (; n < n1; ++n) GemvRows<1>(xm, w, K, n, ym);
        return;
      }
      default:
        return;
    }
  }
};

}  // namespace

void MatmulFloatNeon(const float* x, size_t ldx, int M, const void* w, int wtype, int N, int K,
                     int n0, int n1, float* y, size_t ldy) {
  (void)N;
  WithFloatWeights<F32W, F16W, BF16W>(w, wtype, Impl{}, x, ldx, M, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::arm
