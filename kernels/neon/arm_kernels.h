// Internal declarations of the Arm kernel variants and tiers (aarch64 builds
// only). Each variant lives in its own file, named after it (KleidiAI style):
// <op>_<layout>_<tile>_<gemv|gemm>_<isa>.cpp, tile = <tokens>x<rows> per pass
// ("vl": 32-bit lanes of an SVE vector, 4 rows per 128-bit segment); a file
// holds the variant for both q4g scale layouts when the code is shared. Which
// variant runs for which shape is decided in ONE file per tier, tier_<isa>.cpp
// (kernels/neon/tier_{neon,dotprod,i8mm}.cpp, kernels/sve/tier_sve.cpp), which
// also lists the tier's KernelSet. Shared inline helpers are plain ARMv8.0 NEON.
#pragma once

#if !defined(__aarch64__)
#error "kernels/neon/arm_kernels.h is for aarch64 builds only"
#endif

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/ref/q4g_layout.h"
#include "kernels/ref/ref.h"

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
// Variants. Q4GF16S*: the same kernel on Q4G_R4K8_F16S (f16 group scales,
// widened with FCVTL / FCVT: exact). Every variant computes output rows
// [n0, n1) (MatmulQ4GKernel's constraints) for its tokens, bit-exact to ref.
/// GEMV (q4g and q8c): one token, plain activation row q (Kp bytes), y[n0..n1).
using GemvFn = void (*)(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                        int n1, float* y);
void Q4GGemv1x8Neon(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                    int n1, float* y);
void Q4GF16SGemv1x8Neon(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                        int n1, float* y);
void Q4GGemv1x8Dotprod(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                       int n1, float* y);
void Q4GF16SGemv1x8Dotprod(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                           int n1, float* y);
/// SVE GEMV (any vector length).
void Q4GGemv1xVlSve(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                    int n1, float* y);
void Q4GF16SGemv1xVlSve(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                        int n1, float* y);
/// SDOT GEMM: mt (2..4) tokens, plain rows at q + t*Kp, outputs at y + t*ldy.
void Q4GGemm4x4Dotprod(const int8_t* q, const float* ascale, const float* zp, int mt,
                       const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy);
void Q4GF16SGemm4x4Dotprod(const int8_t* q, const float* ascale, const float* zp, int mt,
                           const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy);
/// SMMLA GEMMs on "pairs" activations: a fixed number of token pairs (6, 4,
/// 1) starting at qa (pair p at qa + 2p*Kp), outputs at y + t*ldy. Kp >= 32
/// for the 12x4 tile (its asm loop runs at least once).
void Q4GGemm12x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                     const uint8_t* w, int n0, int n1, float* y, size_t ldy);
void Q4GF16SGemm12x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                         const uint8_t* w, int n0, int n1, float* y, size_t ldy);
void Q4GGemm8x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                    const uint8_t* w, int n0, int n1, float* y, size_t ldy);
void Q4GF16SGemm8x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                        const uint8_t* w, int n0, int n1, float* y, size_t ldy);
void Q4GGemm2x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                    const uint8_t* w, int n0, int n1, float* y, size_t ldy);
void Q4GF16SGemm2x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                        const uint8_t* w, int n0, int n1, float* y, size_t ldy);
/// SVE SMMLA GEMM on "pairs" activations: np (1..4) token pairs. The f16
/// variant needs SveQ4G<true>::Fits(Kp) (32-bit gather offsets).
void Q4GGemm8xVlSveI8mm(int np, const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                        const uint8_t* w, int n0, int n1, float* y, size_t ldy);
void Q4GF16SGemm8xVlSveI8mm(int np, const int8_t* qa, size_t Kp, const float* ascale,
                            const float* zp, const uint8_t* w, int n0, int n1, float* y,
                            size_t ldy);

// ------------------------------------------------------------ matmul q8c
void Q8CGemv1x4Neon(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                    int n1, float* y);
void Q8CGemv1x8Dotprod(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                       int n1, float* y);
void Q8CGemv1x8Sve(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0, int n1,
                   float* y);
/// SMMLA GEMM on "pairs" activations: np (1..4) token pairs.
void Q8CGemm8x4I8mm(int np, const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                    const uint8_t* w, int n0, int n1, float* y, size_t ldy);

// ------------------------------------------------------------------ tiers
// The KernelSet of each Arm tier (tier_<isa>.cpp; call only when the tier is
// available) and the tiers' matmul entries (MatmulQ4GKernel::run /
// MatmulQ8CKernel::run), which pick the variants above by shape.
const KernelSet& NeonKernels();
const KernelSet& DotprodKernels();
const KernelSet& I8mmKernels();
const KernelSet& SveKernels();
void MatmulQ4GI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy);
void MatmulQ4GF16SI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                       size_t ldy);
void MatmulQ8CI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy);

// -------------------------------------------------------------- hadamard
/// Fast Walsh–Hadamard transform (HadamardKernel::run), n a power of two. EXACT.
void HadamardNeon(float* x, int n);

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
/// AttentionKernel::run_batch, NEON. EXACT. f16 / f32 caches: the (token,
/// head) rows of a KV group in blocks of up to 4, each block one pass of
/// AttentionNeon's group code (K / V rows loaded once per block). Q8 caches:
/// M calls of `one` (the tier's run).
void AttentionBatchWith(const float* q, size_t ldq, int M, const void* k_cache, const void* v_cache,
                        KvType kv_type, size_t kv_stride, int n_pos, int n_heads, int n_kv_heads,
                        int head_dim, int h0, int h1, float* scratch, float* out, size_t ldo,
                        decltype(AttentionKernel::run) one);
/// AttentionBatchWith with AttentionNeon / AttentionDotprod.
void AttentionBatchNeon(const float* q, size_t ldq, int M, const void* k_cache, const void* v_cache,
                        KvType kv_type, size_t kv_stride, int n_pos, int n_heads, int n_kv_heads,
                        int head_dim, int h0, int h1, float* scratch, float* out, size_t ldo);
void AttentionBatchDotprod(const float* q, size_t ldq, int M, const void* k_cache,
                           const void* v_cache, KvType kv_type, size_t kv_stride, int n_pos,
                           int n_heads, int n_kv_heads, int head_dim, int h0, int h1,
                           float* scratch, float* out, size_t ldo);

/// SiLU·mul (SiluMulKernel::run), n >= 0, NEON with lamina's expf. EXACT
/// (bit-identical to ref::SiluMul, including NaN/±inf/subnormal lanes).
void SiluMulNeon(float* gate, const float* up, int n);
/// Softmax (SoftmaxKernel::run), n >= 1, NEON with lamina's expf and the
/// ref's 8-partial-sum order. EXACT (bit-identical to ref::Softmax) for inputs
/// without NaN; with NaN inputs both give all-NaN rows, payloads may differ.
void SoftmaxNeon(float* x, int n);
/// SoftmaxNeon without its last step: x[i] = exp(x[i] - max) (ref's values
/// before the scaling); returns inv = 1 / sum, so x[i] * inv is ref's output.
float SoftmaxExpNeon(float* x, int n);
/// SoftmaxExpNeon with the maximum m of x[0, n) given (computed elsewhere:
/// any correct maximum gives the same outputs, ±0 included).
float SoftmaxExpMaxNeon(float* x, int n, float m);

/// A tier's KernelSet from what differs between the Arm tiers (quantizer
/// layout, integer matmuls, attention); the other ops are the same NEON
/// kernels on every Arm tier (rope stays ref: a few hundred FLOPs per token).
constexpr KernelSet ArmKernelSet(Tier tier, QuantizeActsKernel quantize_acts,
                                 MatmulQ4GKernel matmul_q4g, MatmulQ4GKernel matmul_q4g_f16s,
                                 MatmulQ8CKernel matmul_q8c, AttentionKernel attention) {
  return {tier,          quantize_acts,     matmul_q4g,     matmul_q4g_f16s,
          matmul_q8c,    {MatmulFloatNeon}, {RmsNormNeon},  {ref::Rope},
          {SiluMulNeon}, {SoftmaxNeon},     {HadamardNeon}, attention};
}

// -------------------------------------------------------------------- SVE
/// SVE vector length in bytes (svcntb), from an SVE-compiled file
/// (kernels/sve/tier_sve.cpp); call only when HWCAP_SVE is set.
int SveVectorBytes();

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

/// Every token of plain-layout activations through `gemv`, one at a time.
inline void GemvEachToken(GemvFn gemv, const QActs& a, const uint8_t* w, int K, int n0, int n1,
                          float* y, size_t ldy) {
  const size_t Kp = Kp32(K);
  for (int m = 0; m < a.M; ++m)
    gemv(static_cast<const int8_t*>(a.data) + static_cast<size_t>(m) * Kp, a.scale[m], a.zp[m], w,
         K, n0, n1, y + static_cast<size_t>(m) * ldy);
}

/// The lone last token of "pairs"-layout activations with an odd M (stored
/// plain at (M-1)*Kp) through `gemv`; nothing for an even M.
inline void GemvLoneToken(GemvFn gemv, const QActs& a, const uint8_t* w, int K, int n0, int n1,
                          float* y, size_t ldy) {
  if (a.M % 2 == 0) return;
  const int m = a.M - 1;
  gemv(static_cast<const int8_t*>(a.data) + static_cast<size_t>(m) * Kp32(K), a.scale[m], a.zp[m],
       w, K, n0, n1, y + static_cast<size_t>(m) * ldy);
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

/// A q4g row block's layout (kernels/ref/q4g_layout.h) with the group stride
/// as a constant and the scale loads of both layouts.
template <bool kF16>
struct Q4GBlock {
  static constexpr size_t kGroupStride = kF16 ? 64 : 80;  // nibbles of group g at kGroupStride*g
  size_t G, bb, scale_off, scale_stride, corr_off;
  explicit Q4GBlock(size_t Kp) : Q4GBlock(ref::MakeQ4GLayout<kF16>(Kp)) {}
  explicit Q4GBlock(const ref::Q4GLayout& l)
      : G(l.G),
        bb(l.block_bytes),
        scale_off(l.scale_off),
        scale_stride(l.scale_stride),
        corr_off(l.corr_off) {}
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

}  // namespace lamina::kern::arm
