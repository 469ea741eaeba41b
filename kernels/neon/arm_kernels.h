// Internal declarations of the Arm kernel variants (aarch64 builds only).
// Each function lives in its own file, named after the variant (KleidiAI
// style): <op>_<layout>_<gemv|gemm>_<isa>.cpp. dispatch.cpp assembles them
// into the per-tier KernelSets. Shared inline helpers are plain ARMv8.0 NEON.
#pragma once

#if !defined(__aarch64__)
#error "kernels/neon/arm_kernels.h is for aarch64 builds only"
#endif

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/kernels.h"

namespace lamina::kern::arm {

// ---------------------------------------------------------------- layouts
// Activation layouts (QActs::data), all M * Kp bytes, Kp = round_up(K, 32),
// padding columns zero:
//   plain  (ref, neon, dotprod, sve tiers): row-major int8 [M][Kp] — the ref layout.
//   pairs  (i8mm tier): tokens 2p and 2p+1 interleaved in 8-byte chunks:
//          byte (2p*Kp + 16*j + 8*h + i) = q[2p+h][8j+i]   (SMMLA's 2x8 operand);
//          when M is odd the last token is stored plain at (M-1)*Kp.
size_t QuantizeActsBytes(int M, int K);

/// NEON (v8.0) quantizer, plain layout. EXACT (same scale/zp/q as ref).
void QuantizeActsPlainNeon(const float* x, size_t ldx, int m0, int m1, QActs* qa);
/// NEON (v8.0) quantizer, pairs layout (i8mm tier). EXACT.
void QuantizeActsPairsNeon(const float* x, size_t ldx, int m0, int m1, QActs* qa);

// ------------------------------------------------------------ matmul q4g
// Signature of MatmulQ4GKernel::run / MatmulQ8CKernel::run.
/// neon tier (v8.0: SMULL/SMLAL + SADALP), plain activations, any M.
void MatmulQ4GNeon(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy);
/// One token (plain activation row q, Kp bytes) x Q4G_R4K8, SDOT by element.
void Q4GGemvDotprod(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                    int n1, float* y);
/// Up to 4 tokens (plain rows at q + t*Kp) x Q4G_R4K8, SDOT, weights unpacked once.
void Q4GGemm4Dotprod(const int8_t* q, const float* ascale, const float* zp, int mt,
                     const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy);
/// dotprod tier: M == 1 -> GEMV, else GEMM by 4 tokens. Plain activations.
void MatmulQ4GDotprod(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy);
/// i8mm tier: pairs activations; SMMLA for token pairs, SDOT GEMV for a lone token.
void MatmulQ4GI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy);

// ------------------------------------------------- matmul q4g, f16 scales
// The same kernels for Q4G_R4K8_F16S (f16 group scales after the nibbles,
// widened with FCVTL; bit-exact to ref::MatmulQ4GF16S). Files
// matmul_q4g_r4k8_f16s_<gemv|gemm>_<isa>.cpp; the code is shared with the
// f32-scale variants through the *_inl.h templates.
void MatmulQ4GF16SNeon(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                       size_t ldy);
void Q4GF16SGemvDotprod(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                        int n1, float* y);
void Q4GF16SGemm4Dotprod(const int8_t* q, const float* ascale, const float* zp, int mt,
                         const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy);
void MatmulQ4GF16SDotprod(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                          size_t ldy);
void MatmulQ4GF16SI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                       size_t ldy);

// -------------------------------------------------------------- hadamard
/// Fast Walsh–Hadamard transform (HadamardKernel::run), n a power of two. EXACT.
void HadamardNeon(float* x, int n);

// ------------------------------------------------------------ matmul q8c
void MatmulQ8CNeon(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy);
void Q8CGemvDotprod(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                    int n1, float* y);
void MatmulQ8CDotprod(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy);
void MatmulQ8CI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy);

// ----------------------------------------------------------- matmul float
void MatmulFloatNeon(const float* x, size_t ldx, int M, const void* w, int wtype, int N, int K,
                     int n0, int n1, float* y, size_t ldy);

// ------------------------------------------------------------ other ops
/// RMSNorm / attention, NEON, EXACT (ref order; attention's softmax is SoftmaxNeon).
void RmsNormNeon(float* out, const float* x, const float* w, int n, float eps);
/// Q8 KV scores of nh (1..4) heads of one group, as ref::Attention's Q8 path:
/// s[i][p] = (float)dot(qq_i, K row p) * (kd_p * c[i]); qq int8 [nh, n].
using Q8ScoresFn = void (*)(const int8_t* qq, const uint8_t* k, size_t stride, int n_pos, int n,
                            int n_kv_heads, int kvh, int nh, const float* c, float* const* s);
/// The f16 scale of kv head h in a Q8 row, as f32 (exact, FCVT).
float Q8Scale(const uint8_t* row, int n_kv_heads, int head_dim, int h);
/// s[i][p] = (float)(acc[i] lanes + tail[i]) * (kd * c[i]), i < kH (cv = c as
/// a vector): the Q8 score of position p from the int32 dot partial sums.
template <int kH>
inline void StoreQ8Scores(const int32x4_t* acc, const int32_t* tail, float kd, const float* c,
                          float32x4_t cv, float* const* s, int p) {
  if constexpr (kH == 4) {
    const int32x4_t sums = vaddq_s32(
        vpaddq_s32(vpaddq_s32(acc[0], acc[1]), vpaddq_s32(acc[2], acc[3])), vld1q_s32(tail));
    const float32x4_t r = vmulq_f32(vcvtq_f32_s32(sums), vmulq_n_f32(cv, kd));
    vst1q_lane_f32(s[0] + p, r, 0);
    vst1q_lane_f32(s[1] + p, r, 1);
    vst1q_lane_f32(s[2] + p, r, 2);
    vst1q_lane_f32(s[3] + p, r, 3);
  } else {
    (void)cv;
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i)
      s[i][p] = static_cast<float>(vaddvq_s32(acc[i]) + tail[i]) * (kd * c[i]);
  }
}
/// AttentionNeon for KvType::kQ8 with the QK scores from `scores` (nullptr:
/// the ARMv8.0 SMLAL scorer). Bit-identical to ref::Attention either way.
void AttentionQ8Neon(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride,
                     int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0, int h1,
                     float* scratch, float* out, Q8ScoresFn scores);
/// AttentionNeon with SDOT Q8 scores (dotprod and later tiers).
void AttentionDotprod(const float* q, const void* k_cache, const void* v_cache, KvType kv_type,
                      size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim,
                      int h0, int h1, float* scratch, float* out);
void AttentionNeon(const float* q, const void* k_cache, const void* v_cache, KvType kv_type,
                   size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0,
                   int h1, float* scratch, float* out);

/// SiLU·mul (SiluMulKernel::run), n >= 0, NEON with lamina's expf. EXACT
/// (bit-identical to ref::SiluMul, including NaN/±inf/subnormal lanes).
void SiluMulNeon(float* gate, const float* up, int n);
/// Softmax (SoftmaxKernel::run), n >= 1, NEON with lamina's expf and the
/// ref's 8-partial-sum order. EXACT (bit-identical to ref::Softmax) for inputs
/// without NaN; with NaN inputs both give all-NaN rows, payloads may differ.
void SoftmaxNeon(float* x, int n);

// -------------------------------------------------------------------- SVE
/// SVE vector length in bytes (svcntb), from an SVE-compiled file; call only
/// when HWCAP_SVE is set.
int SveVectorBytes();
/// SVE q8c GEMV (plain rows; one token at a time).
void MatmulQ8CSve(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                  size_t ldy);
/// SVE q4g GEMV, one plain activation row (kernels/sve/matmul_q4g_r4k8_gemv_sve.cpp).
void Q4GGemvSve(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0, int n1,
                float* y);
/// sve tier (pairs activations, needs SVE + I8MM): q4g SVE SMMLA GEMM / SVE GEMV
/// for a lone token; q8c SVE GEMV for M == 1, NEON SMMLA otherwise.
void MatmulQ4GSveI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy);
/// Q4G_R4K8_F16S counterparts of Q4GGemvSve / MatmulQ4GSveI8mm.
void Q4GF16SGemvSve(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                    int n1, float* y);
void MatmulQ4GF16SSveI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                          size_t ldy);
void MatmulQ8CSveI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy);

// ---------------------------------------------------------------- helpers
inline size_t Kp32(int K) { return (static_cast<size_t>(K) + 31) / 32 * 32; }

/// Stores the 4 row results of block b (rows 4b..4b+3) to y[4b..], only the
/// rows below n1 (n1 == N on the last, partial block).
inline void Store4(float* y, int n, int n1, float32x4_t v) {
  if (n + 4 <= n1) {
    vst1q_f32(y + n, v);
  } else {
    float t[4];
    vst1q_f32(t, v);
    for (int r = 0; n + r < n1; ++r) y[n + r] = t[r];
  }
}

/// Walks the token pairs of "pairs"-layout activations (a.M / 2 of them) in
/// tiles of up to 4 pairs, calling tile(np, qp, ascale, zp, yp) with np a
/// std::integral_constant<int, 1..4> (so the tile kernel can be a template),
/// the tile's activations, per-token scales / zero points and first output
/// row. The lone last token of an odd M is left to the caller (a GEMV).
template <typename Tile>
inline void ForEachPairTile4(const QActs& a, size_t Kp, float* y, size_t ldy, Tile&& tile) {
  const int8_t* q = static_cast<const int8_t*>(a.data);
  const int pairs = a.M / 2;
  for (int p = 0; p < pairs; p += 4) {
    const int8_t* qp = q + static_cast<size_t>(p) * 2 * Kp;
    const float* as = a.scale + 2 * p;
    const float* zp = a.zp + 2 * p;
    float* yp = y + static_cast<size_t>(2 * p) * ldy;
    switch (pairs - p) {
      case 1:
        tile(std::integral_constant<int, 1>{}, qp, as, zp, yp);
        break;
      case 2:
        tile(std::integral_constant<int, 2>{}, qp, as, zp, yp);
        break;
      case 3:
        tile(std::integral_constant<int, 3>{}, qp, as, zp, yp);
        break;
      default:
        tile(std::integral_constant<int, 4>{}, qp, as, zp, yp);
        break;
    }
  }
}

inline float32x4_t LoadF32x4(const uint8_t* p) {
  return vld1q_f32(reinterpret_cast<const float*>(p));
}

/// The q8c epilogue, exactly ref::MatmulQ8C: (float)(acc - (int64)wsum * zp)
/// per lane. In int64 because wsum comes from the file unchecked (reading it
/// at load would touch every q8c row block's page); int64 -> f64 is exact
/// (|value| < 2^39), so f64 -> f32 is the one rounding the ref does.
inline float32x4_t Q8CFinishF32(int32x4_t acc, int32x4_t wsum, int32x4_t zp) {
  const int64x2_t lo =
      vmlsl_s32(vmovl_s32(vget_low_s32(acc)), vget_low_s32(wsum), vget_low_s32(zp));
  const int64x2_t hi = vmlsl_high_s32(vmovl_high_s32(acc), wsum, zp);
  return vcvt_high_f32_f64(vcvt_f32_f64(vcvtq_f64_s64(lo)), vcvtq_f64_s64(hi));
}

/// The 4 f16 at p widened to f32 (LDR d + FCVTL: exact).
inline float32x4_t LoadF16x4(const uint8_t* p) {
  return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
}

/// Where the parts of a q4g row block are, for both layouts (format.h):
/// Q4G_R4K8 (kF16 false: group g = 64 B nibbles + 16 B f32 scales at 80g) and
/// Q4G_R4K8_F16S (kF16 true: nibbles at 64g, f16 scales at 64G + 8g).
template <bool kF16>
struct Q4GBlock {
  static constexpr size_t kGroupStride = kF16 ? 64 : 80;  // nibbles of group g at kGroupStride*g
  size_t G, bb, scale_off, scale_stride, corr_off;
  explicit Q4GBlock(size_t Kp)
      : G(Kp / 32),
        bb(kF16 ? Kp / 32 * 64 + (Kp / 32 * 8 + 15) / 16 * 16 + 16 : Kp / 32 * 80 + 16),
        scale_off(kF16 ? Kp / 32 * 64 : 64),
        scale_stride(kF16 ? 8 : 80),
        corr_off(bb - 16) {}
  /// The 4 rows' scales of group g of the block at blk, as f32.
  float32x4_t Scales(const uint8_t* blk, size_t g) const {
    const uint8_t* p = blk + scale_off + scale_stride * g;
    if constexpr (kF16) {
      return LoadF16x4(p);
    } else {
      return LoadF32x4(p);
    }
  }
};

/// Per-token parameters from the row's min/max, exactly ref::ChooseQParams
/// (mn <= 0 <= mx; NaN-propagating: a non-finite mn or mx gives
/// kNonFiniteActScale, zp 0). Compiled without FP contraction.
void QParamsFromMinMax(float mn, float mx, float* scale, float* zp);

}  // namespace lamina::kern::arm
