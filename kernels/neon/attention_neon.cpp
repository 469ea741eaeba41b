// Causal GQA attention of one query over the KV cache, ARMv8.0 NEON. EXACT
// (bit-identical to ref::Attention for every head slice, group size, f16/f32).
//
// Why this loop structure: the kernel costs instructions per (head, position),
// and the heads of a GQA group read the same K and V rows. So the [h0, h1)
// slice is walked in passes of up to 4 consecutive heads of ONE group (a slice
// may start or end mid-group; a pass never crosses a group edge; 3-, 2- and
// 1-head passes take the rest: ForEachGroupPass, kernels/attention_passes.h),
// and each K / V element is loaded (f16: and converted with FCVTL/FCVTL2,
// exact) once per pass instead of once per head:
//  - QK: 2 positions x H heads per step of 8 elements: one 16-byte K load per
//    position, q of all H heads interleaved by 8 in a stack copy (LDP with
//    immediate offsets), 2 FMLA per (head, position). Per (head, position) the
//    two accumulators are ref::Dot's acc[0..3] / acc[4..7] (k = 8i + j, i
//    ascending, fused); reduced as ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)): for
//    a 4-head pass (head_dim % 8 == 0) one FADD per head and three FADDP give
//    the 4 heads' sums in one vector; else Reduce8 and the n % 8 tail as
//    scalar fma in order. Then * scale (as ref).
//  - softmax per head: SoftmaxNeon (ref-exact).
//  - ·V: 16 outputs x H heads in 4H accumulators per sweep over positions,
//    4 positions per step: one LDR q of 4 weights per head, FMLA by lane;
//    each V row loaded + converted once for the H heads. out[d] = fma(w[p],
//    v[p][d], out[d]), p ascending, per head and lane exactly as ref.
// Budget per (head, position), head_dim 64, f16, 4-head pass (GCC 12 code):
// QK ~30.5 in the inner loop + ~7 (zeroing, reduction, lane stores); ·V
// ~24.75 (99 per 4 positions x 16 outputs x 4 heads); softmax the rest.
// Measured (tools/insn-report.sh 1B i8mm, decode ctx 4096 minus ctx 128, per
// head, layer and position): ~67 instructions vs ~99 with one head per pass.
// Head i of a pass keeps its scores in scratch row i (the AttentionKernel
// contract gives kAttentionScratchRows = 8 rows of n_pos floats). The 1-head
// code: 4 positions per q load, 32 outputs held in registers.
// Batches (AttentionBatchNeon, the M tokens of a prefill / verification
// pass): the (token, head) rows of a KV group go through the same group code
// in blocks of 4 (8 for 8-wide heads, SmallPass) with a causal length per
// row, so each K / V row is loaded once per block instead of once per token.
// The empty asm in ScoresHP stops GCC hoisting q into registers across
// positions and spilling it (heads wider than 8). head_dim <= 1024.
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/attention_passes.h"
#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/dot_neon.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/kv_q8.h"

namespace lamina::kern::arm {
namespace {

constexpr int kMaxPassHeads = 4;
// Cache element kinds (template argument kKv). Q8 values are loaded as the raw
// int8 (exact in f32): the scales are applied to scores and weights.
constexpr int kKvF32 = 0, kKvF16 = 1, kKvQ8 = 2;
static_assert(kMaxPassHeads <= kAttentionScratchRows, "one scratch row per head of a pass");

/// 4 cache values at element offset off, as f32 (f16: exact FCVTL).
template <int kKv>
inline float32x4_t Load4(const void* base, size_t off) {
  if constexpr (kKv == kKvF16) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(static_cast<const uint16_t*>(base) + off)));
  } else if constexpr (kKv == kKvQ8) {
    int32_t b;
    std::memcpy(&b, static_cast<const int8_t*>(base) + off, 4);
    const int16x8_t w = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(b)));
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
  } else {
    return vld1q_f32(static_cast<const float*>(base) + off);
  }
}

/// 8 cache values at element offset off as two f32 vectors (f16: one 16-byte
/// load, FCVTL + FCVTL2, exact).
template <int kKv>
inline void Load8(const void* base, size_t off, float32x4_t* lo, float32x4_t* hi) {
  if constexpr (kKv == kKvF16) {
    const float16x8_t h =
        vreinterpretq_f16_u16(vld1q_u16(static_cast<const uint16_t*>(base) + off));
    *lo = vcvt_f32_f16(vget_low_f16(h));
    *hi = vcvt_high_f32_f16(h);
  } else if constexpr (kKv == kKvQ8) {
    const int16x8_t w = vmovl_s8(vld1_s8(static_cast<const int8_t*>(base) + off));
    *lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
    *hi = vcvtq_f32_s32(vmovl_high_s16(w));
  } else {
    const float* p = static_cast<const float*>(base) + off;
    *lo = vld1q_f32(p);
    *hi = vld1q_f32(p + 4);
  }
}

template <int kKv>
inline float Load1(const void* base, size_t off) {
  if constexpr (kKv == kKvF16) {
    return F16ToF32(static_cast<const uint16_t*>(base)[off]);
  } else if constexpr (kKv == kKvQ8) {
    return static_cast<float>(static_cast<const int8_t*>(base)[off]);
  } else {
    return static_cast<const float*>(base)[off];
  }
}

// ---- one head per pass -----------------------------------------------------

/// s[j] = Dot(q, k at off + j * stride, n) (ref::Dot order) * scale, j < kP.
template <int kKv, int kP>
inline void ScoresP(const float* q, const void* k, size_t off, size_t stride, int n, float scale,
                    float* s) {
  const int n8 = n / 8 * 8;
  float32x4_t a0[kP], a1[kP];
#pragma GCC unroll 4
  for (int j = 0; j < kP; ++j) a0[j] = a1[j] = vdupq_n_f32(0.f);
  for (int d = 0; d < n8; d += 8) {
    const float32x4_t q0 = vld1q_f32(q + d), q1 = vld1q_f32(q + d + 4);
#pragma GCC unroll 4
    for (int j = 0; j < kP; ++j) {
      a0[j] = vfmaq_f32(a0[j], q0, Load4<kKv>(k, off + j * stride + d));
      a1[j] = vfmaq_f32(a1[j], q1, Load4<kKv>(k, off + j * stride + d + 4));
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < kP; ++j) {
    float r = Reduce8(a0[j], a1[j]);
    for (int d = n8; d < n; ++d) r = std::fma(q[d], Load1<kKv>(k, off + j * stride + d), r);
    s[j] = r * scale;
  }
}

/// o[0, 4 * kR) = sum over p ascending of fma(w[p], v at off + p * stride).
template <int kKv, int kR>
inline void WeightedSumR(const float* w, const void* v, size_t off, size_t stride, int n_pos,
                         float* o) {
  float32x4_t acc[kR];
#pragma GCC unroll 8
  for (int r = 0; r < kR; ++r) acc[r] = vdupq_n_f32(0.f);
  for (int p = 0; p < n_pos; ++p, off += stride) {
    const float32x4_t wv = vdupq_n_f32(w[p]);
#pragma GCC unroll 8
    for (int r = 0; r < kR; ++r) acc[r] = vfmaq_f32(acc[r], wv, Load4<kKv>(v, off + 4 * r));
  }
#pragma GCC unroll 8
  for (int r = 0; r < kR; ++r) vst1q_f32(o + 4 * r, acc[r]);
}

/// One head: q [head_dim], K/V rows at base + p * kv_stride, scores in s.
template <int kKv>
void OneHead(const float* qh, const void* k_cache, const void* v_cache, size_t kv_stride, int n_pos,
             int head_dim, size_t base, float scale, float* s, float* o) {
  int p = 0;
  for (; p + 4 <= n_pos; p += 4)
    ScoresP<kKv, 4>(qh, k_cache, p * kv_stride + base, kv_stride, head_dim, scale, s + p);
  for (; p < n_pos; ++p)
    ScoresP<kKv, 1>(qh, k_cache, p * kv_stride + base, kv_stride, head_dim, scale, s + p);
  SoftmaxNeon(s, n_pos);
  int d = 0;
  for (; d + 32 <= head_dim; d += 32)
    WeightedSumR<kKv, 8>(s, v_cache, base + d, kv_stride, n_pos, o + d);
  for (; d + 4 <= head_dim; d += 4)
    WeightedSumR<kKv, 1>(s, v_cache, base + d, kv_stride, n_pos, o + d);
  for (; d < head_dim; ++d) {
    float acc = 0.f;
    for (int pp = 0; pp < n_pos; ++pp)
      acc = std::fma(s[pp], Load1<kKv>(v_cache, pp * kv_stride + base + d), acc);
    o[d] = acc;
  }
}

// ---- kH heads of one group per pass ----------------------------------------

/// 4kR cache values at off (pairs: one 16-byte f16 load + FCVTL/FCVTL2).
template <int kKv, int kR>
inline void LoadRow(const void* v, size_t off, float32x4_t* vv) {
  if constexpr (kKv == kKvQ8 && kR % 4 == 0) {
    // 16 int8 per LDR q: SXTL, SXTL2, 4x SXTL(2) to int32, 4x SCVTF (exact).
#pragma GCC unroll 4
    for (int r = 0; r < kR; r += 4) {
      const int8x16_t b = vld1q_s8(static_cast<const int8_t*>(v) + off + 4 * r);
      const int16x8_t w0 = vmovl_s8(vget_low_s8(b)), w1 = vmovl_high_s8(b);
      vv[r] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w0)));
      vv[r + 1] = vcvtq_f32_s32(vmovl_high_s16(w0));
      vv[r + 2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w1)));
      vv[r + 3] = vcvtq_f32_s32(vmovl_high_s16(w1));
    }
  } else if constexpr (kR % 2 == 0) {
#pragma GCC unroll 4
    for (int r = 0; r < kR; r += 2) Load8<kKv>(v, off + 4 * r, &vv[r], &vv[r + 1]);
  } else {
#pragma GCC unroll 4
    for (int r = 0; r < kR; ++r) vv[r] = Load4<kKv>(v, off + 4 * r);
  }
}

/// acc + x * w[lane] (fused: fma(w[lane], x, acc) per lane).
inline float32x4_t FmaLane(float32x4_t acc, float32x4_t x, float32x4_t w, int lane) {
  switch (lane) {
    case 0:
      return vfmaq_laneq_f32(acc, x, w, 0);
    case 1:
      return vfmaq_laneq_f32(acc, x, w, 1);
    case 2:
      return vfmaq_laneq_f32(acc, x, w, 2);
    default:
      return vfmaq_laneq_f32(acc, x, w, 3);
  }
}

/// s[i][p + j] = Dot(q_i, K row p + j) * scale for heads i < kH and positions
/// j < kP; the K row (at off + j * stride) is loaded once for all kH heads.
/// qi: the heads' q interleaved by 8 (qi[(d / 8) * 8kH + 8i + d % 8], d < n8,
/// so one step's q of all heads is 2kH consecutive vectors: LDP, immediate
/// offsets); q: [kH, n] for the n % 8 tail. kN: n at compile time (0: n_rt).
template <int kKv, int kH, int kP, int kN>
inline void ScoresHP(const float* qi, const float* q, const void* k, size_t off, size_t stride,
                     int n_rt, float scale, float* const* s, int p) {
  const int n = kN > 0 ? kN : n_rt;
  const int n8 = n / 8 * 8;
  // Opaque per call: stops GCC hoisting the kH * n / 4 q vectors out of the
  // position loop into (too few) registers and spilling them (an LDR from the
  // stack per use instead of one LDP per two vectors).
  // Small heads (kN * kH <= 32: at most 8 q vectors) keep q in registers.
  if constexpr (kN == 0 || kN * kH > 32) asm volatile("" : "+r"(qi));
  float32x4_t a0[kH][kP], a1[kH][kP];
#pragma GCC unroll 4
  for (int i = 0; i < kH; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kP; ++j) a0[i][j] = a1[i][j] = vdupq_n_f32(0.f);
#pragma GCC unroll 2
  for (int d = 0; d < n8; d += 8) {
    float32x4_t k0[kP], k1[kP];
#pragma GCC unroll 4
    for (int j = 0; j < kP; ++j) Load8<kKv>(k, off + j * stride + d, &k0[j], &k1[j]);
    const float* qd = qi + d * kH;
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) {
      const float32x4_t q0 = vld1q_f32(qd + 8 * i), q1 = vld1q_f32(qd + 8 * i + 4);
#pragma GCC unroll 4
      for (int j = 0; j < kP; ++j) {
        a0[i][j] = vfmaq_f32(a0[i][j], q0, k0[j]);
        a1[i][j] = vfmaq_f32(a1[i][j], q1, k1[j]);
      }
    }
  }
  if constexpr (kH == 4) {
    if (n8 == n) {
      // Per position, the 4 heads' ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)) in
      // the lanes of one vector: t = a0 + a1 per head, then FADDP twice.
      const float32x4_t sc = vdupq_n_f32(scale);
#pragma GCC unroll 4
      for (int j = 0; j < kP; ++j) {
        const float32x4_t t0 = vaddq_f32(a0[0][j], a1[0][j]), t1 = vaddq_f32(a0[1][j], a1[1][j]);
        const float32x4_t t2 = vaddq_f32(a0[2][j], a1[2][j]), t3 = vaddq_f32(a0[3][j], a1[3][j]);
        const float32x4_t r = vmulq_f32(vpaddq_f32(vpaddq_f32(t0, t1), vpaddq_f32(t2, t3)), sc);
        vst1q_lane_f32(s[0] + p + j, r, 0);
        vst1q_lane_f32(s[1] + p + j, r, 1);
        vst1q_lane_f32(s[2] + p + j, r, 2);
        vst1q_lane_f32(s[3] + p + j, r, 3);
      }
      return;
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < kH; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kP; ++j) {
      float r = Reduce8(a0[i][j], a1[i][j]);
      for (int d = n8; d < n; ++d)
        r = std::fma(q[i * n + d], Load1<kKv>(k, off + j * stride + d), r);
      s[i][p + j] = r * scale;
    }
}

/// o[i * o_stride + 4r] (r < kR, i < kH) = sum over p ascending of
/// fma(w_i[p], v at off + p * stride + 4r); each V row loaded once for all kH
/// heads; 4 positions per weight load (one LDR q per head, FMLA by lane).
/// w_i[p] = s[i][p], or (kScale) s[i][p] * inv[i]: softmax's last step (ref:
/// x[p] *= inv) done on the fly, the same rounded product.
template <int kKv, int kH, int kR, bool kScale>
inline void WeightedSumHR(float* const* s, const float* inv, const void* v, size_t off,
                          size_t stride, int n_pos, float* o, int o_stride) {
  [[maybe_unused]] float32x4_t iv[kH];
  if constexpr (kScale)
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) iv[i] = vdupq_n_f32(inv[i]);
  float32x4_t acc[kH][kR];
#pragma GCC unroll 4
  for (int i = 0; i < kH; ++i)
#pragma GCC unroll 4
    for (int r = 0; r < kR; ++r) acc[i][r] = vdupq_n_f32(0.f);
  int p = 0;
  for (; p + 4 <= n_pos; p += 4, off += 4 * stride) {
    float32x4_t w[kH];
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) {
      w[i] = vld1q_f32(s[i] + p);
      if constexpr (kScale) w[i] = vmulq_f32(w[i], iv[i]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      float32x4_t vv[kR];
      LoadRow<kKv, kR>(v, off + j * stride, vv);
#pragma GCC unroll 4
      for (int i = 0; i < kH; ++i)
#pragma GCC unroll 4
        for (int r = 0; r < kR; ++r) acc[i][r] = FmaLane(acc[i][r], vv[r], w[i], j);
    }
  }
  for (; p < n_pos; ++p, off += stride) {
    float32x4_t vv[kR];
    LoadRow<kKv, kR>(v, off, vv);
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) {
      float32x4_t w = vld1q_dup_f32(s[i] + p);
      if constexpr (kScale) w = vmulq_f32(w, iv[i]);
#pragma GCC unroll 4
      for (int r = 0; r < kR; ++r) acc[i][r] = vfmaq_f32(acc[i][r], w, vv[r]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < kH; ++i)
#pragma GCC unroll 4
    for (int r = 0; r < kR; ++r)
      vst1q_f32(o + static_cast<size_t>(i) * o_stride + 4 * r, acc[i][r]);
}

/// QK of kH heads (q [kH, n]) over all positions into score rows s[0..kH).
template <int kKv, int kH, int kN>
void GroupScores(const float* q, const void* k_cache, size_t kv_stride, int n_pos, int n_rt,
                 size_t base, float scale, float* const* s) {
  const int n = kN > 0 ? kN : n_rt;
  const int n8 = n / 8 * 8;
  float qi[kH * 1024];  // head_dim <= 1024
  for (int d = 0; d < n8; d += 8)
    for (int i = 0; i < kH; ++i)
      for (int e = 0; e < 8; ++e) qi[d * kH + 8 * i + e] = q[i * n + d + e];
  int p = 0;
  for (; p + 2 <= n_pos; p += 2)
    ScoresHP<kKv, kH, 2, kN>(qi, q, k_cache, p * kv_stride + base, kv_stride, n, scale, s, p);
  for (; p < n_pos; ++p)
    ScoresHP<kKv, kH, 1, kN>(qi, q, k_cache, p * kv_stride + base, kv_stride, n, scale, s, p);
}

/// o[i * head_dim + d] = sum over p ascending of fma(w_i[p], V row p value
/// d): the ·V half of a pass, kH heads, V rows at base + p * kv_stride
/// (w_i as in WeightedSumHR).
template <int kKv, int kH, bool kScale>
void WeightedSum(float* const* s, const float* inv, const void* v_cache, size_t kv_stride,
                 int n_pos, int head_dim, size_t base, float* o) {
  int d = 0;
  for (; d + 16 <= head_dim; d += 16)
    WeightedSumHR<kKv, kH, 4, kScale>(s, inv, v_cache, base + d, kv_stride, n_pos, o + d, head_dim);
  for (; d + 8 <= head_dim; d += 8)
    WeightedSumHR<kKv, kH, 2, kScale>(s, inv, v_cache, base + d, kv_stride, n_pos, o + d, head_dim);
  for (; d + 4 <= head_dim; d += 4)
    WeightedSumHR<kKv, kH, 1, kScale>(s, inv, v_cache, base + d, kv_stride, n_pos, o + d, head_dim);
  for (; d < head_dim; ++d)
    for (int i = 0; i < kH; ++i) {
      float acc = 0.f;
      for (int pp = 0; pp < n_pos; ++pp)
        acc = std::fma(kScale ? s[i][pp] * inv[i] : s[i][pp],
                       Load1<kKv>(v_cache, pp * kv_stride + base + d), acc);
      o[static_cast<size_t>(i) * head_dim + d] = acc;
    }
}

/// kH query rows of one KV group (the heads of a pass; in a batch, (token,
/// head) pairs): q [kH, head_dim], out [kH, head_dim], score rows s[0..kH).
/// Row i attends positions [0, n[i]). The scores are computed over the
/// longest range for every row (a K row is loaded once for the kH rows; a
/// row never reads its scores past n[i]), softmax per row over its own range,
/// ·V over the common prefix for all rows, then each row's remaining
/// positions in order (fma(w, v, o), p ascending: ref's order).
template <int kKv, int kH>
void GroupPass(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride,
               const int* n, int head_dim, size_t base, float scale, float* const* s, float* o) {
  int n_lo = n[0], n_hi = n[0];
  for (int i = 1; i < kH; ++i) {
    n_lo = std::min(n_lo, n[i]);
    n_hi = std::max(n_hi, n[i]);
  }
  if (head_dim == 8) {
    GroupScores<kKv, kH, 8>(q, k_cache, kv_stride, n_hi, head_dim, base, scale, s);
  } else if (head_dim == 64) {
    GroupScores<kKv, kH, 64>(q, k_cache, kv_stride, n_hi, head_dim, base, scale, s);
  } else if (head_dim == 128) {
    GroupScores<kKv, kH, 128>(q, k_cache, kv_stride, n_hi, head_dim, base, scale, s);
  } else {
    GroupScores<kKv, kH, 0>(q, k_cache, kv_stride, n_hi, head_dim, base, scale, s);
  }
  float inv[kH];
  const bool fuse = head_dim <= 32;  // at most two ·V sweeps: softmax's scaling goes into them
  if (fuse) {
    for (int i = 0; i < kH; ++i) inv[i] = SoftmaxExpNeon(s[i], n[i]);
    WeightedSum<kKv, kH, true>(s, inv, v_cache, kv_stride, n_lo, head_dim, base, o);
  } else {
    for (int i = 0; i < kH; ++i) SoftmaxNeon(s[i], n[i]);
    WeightedSum<kKv, kH, false>(s, nullptr, v_cache, kv_stride, n_lo, head_dim, base, o);
  }
  for (int i = 0; i < kH; ++i)
    for (int p = n_lo; p < n[i]; ++p) {
      const float w = fuse ? s[i][p] * inv[i] : s[i][p];
      float* oi = o + static_cast<size_t>(i) * head_dim;
      for (int d = 0; d < head_dim; ++d)
        oi[d] = std::fma(w, Load1<kKv>(v_cache, p * kv_stride + base + d), oi[d]);
    }
}

// ---- int8 cache (KvType::kQ8): integer QK --------------------------------

}  // namespace

float Q8Scale(const uint8_t* row, int n_kv_heads, int head_dim, int h) {
  uint16_t u;
  std::memcpy(&u, row + static_cast<size_t>(n_kv_heads) * head_dim + 2 * static_cast<size_t>(h), 2);
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(u))), 0);  // exact
}

namespace {

/// s[i][p] = (float)(int dot of qq_i and K row p) * (kd_p * c[i]) for heads
/// i < kH and all positions (ref::Attention's Q8 scores; the int32 dot is
/// exact, so its order is free). qw: the kH int8 queries widened to int16,
/// [kH, n]; each K row is loaded and widened (SXTL) once for the kH heads,
/// then SMLAL / SMLAL2 per head.
template <int kH>
void Q8Scores(const int16_t* qw, const uint8_t* k, size_t stride, int n_pos, int n, int n_kv_heads,
              int kvh, const float* c, float* const* s) {
  const size_t base = static_cast<size_t>(kvh) * n;
  const int n16 = n / 16 * 16, n8 = n / 8 * 8;
  [[maybe_unused]] const float32x4_t cv = vld1q_f32(c);
  for (int p = 0; p < n_pos; ++p) {
    const uint8_t* row = k + static_cast<size_t>(p) * stride;
    const int8_t* kp = reinterpret_cast<const int8_t*>(row) + base;
    int32x4_t acc[kH];
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) acc[i] = vdupq_n_s32(0);
    int d = 0;
    for (; d < n16; d += 16) {
      const int8x16_t b = vld1q_s8(kp + d);
      const int16x8_t k0 = vmovl_s8(vget_low_s8(b)), k1 = vmovl_high_s8(b);
#pragma GCC unroll 4
      for (int i = 0; i < kH; ++i) {
        const int16x8_t q0 = vld1q_s16(qw + i * n + d), q1 = vld1q_s16(qw + i * n + d + 8);
        acc[i] = vmlal_s16(acc[i], vget_low_s16(k0), vget_low_s16(q0));
        acc[i] = vmlal_high_s16(acc[i], k0, q0);
        acc[i] = vmlal_s16(acc[i], vget_low_s16(k1), vget_low_s16(q1));
        acc[i] = vmlal_high_s16(acc[i], k1, q1);
      }
    }
    if (d < n8) {
      const int16x8_t k0 = vmovl_s8(vld1_s8(kp + d));
#pragma GCC unroll 4
      for (int i = 0; i < kH; ++i) {
        const int16x8_t q0 = vld1q_s16(qw + i * n + d);
        acc[i] = vmlal_s16(acc[i], vget_low_s16(k0), vget_low_s16(q0));
        acc[i] = vmlal_high_s16(acc[i], k0, q0);
      }
      d += 8;
    }
    int32_t tail[4] = {0, 0, 0, 0};
    for (; d < n; ++d)
#pragma GCC unroll 4
      for (int i = 0; i < kH; ++i) tail[i] += static_cast<int32_t>(qw[i * n + d]) * kp[d];
    StoreQ8Scores<kH>(acc, tail, Q8Scale(row, n_kv_heads, n, kvh), c, cv, s, p);
  }
}

/// kH consecutive heads of one group over a Q8 cache (ref::Attention, kQ8):
/// q [kH, head_dim] quantized per head (ref::QuantizeSym8), integer scores,
/// softmax, weights * the V row scales, then the f32 ·V sweep of the f16/f32
/// path on the raw int8 values (WeightedSumHR, kKvQ8 loads).
template <int kH>
void Q8Pass(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride, int n_pos,
            int n_kv_heads, int head_dim, int kvh, float scale, float* const* s, float* o,
            Q8ScoresFn scores) {
  int16_t qw[kH * 1024];  // head_dim <= 1024
  int8_t qq[kH * 1024];
  float c[4] = {0.f, 0.f, 0.f, 0.f};
  ref::QuantizeQueryQ8(q, kH, head_dim, scale, qw, qq, c);
  if (scores) {
    scores(qq, static_cast<const uint8_t*>(k_cache), kv_stride, n_pos, head_dim, n_kv_heads, kvh,
           kH, c, s);
  } else {
    Q8Scores<kH>(qw, static_cast<const uint8_t*>(k_cache), kv_stride, n_pos, head_dim, n_kv_heads,
                 kvh, c, s);
  }
  for (int i = 0; i < kH; ++i) SoftmaxNeon(s[i], n_pos);
  // w = s * vd (ref order); 4 positions' f16 scales per FCVTL.
  const uint8_t* vb = static_cast<const uint8_t*>(v_cache) +
                      static_cast<size_t>(n_kv_heads) * head_dim + 2 * static_cast<size_t>(kvh);
  int p = 0;
  for (; p + 4 <= n_pos; p += 4) {
    uint16_t u[4];
    for (int j = 0; j < 4; ++j) std::memcpy(&u[j], vb + static_cast<size_t>(p + j) * kv_stride, 2);
    const float32x4_t vd = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(u)));
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) vst1q_f32(s[i] + p, vmulq_f32(vld1q_f32(s[i] + p), vd));
  }
  for (; p < n_pos; ++p) {
    const float vd =
        Q8Scale(static_cast<const uint8_t*>(v_cache) + static_cast<size_t>(p) * kv_stride,
                n_kv_heads, head_dim, kvh);
    for (int i = 0; i < kH; ++i) s[i][p] *= vd;
  }
  WeightedSum<kKvQ8, kH, false>(s, nullptr, v_cache, kv_stride, n_pos, head_dim,
                                static_cast<size_t>(kvh) * head_dim, o);
}

template <int kKv>
void AttentionT(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride,
                int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0, int h1,
                float* scratch, float* out, Q8ScoresFn q8_scores = nullptr) {
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  float* s[kMaxPassHeads];
  for (int i = 0; i < kMaxPassHeads; ++i) s[i] = scratch + static_cast<size_t>(i) * n_pos;
  ForEachGroupPass<kMaxPassHeads>(n_heads, n_kv_heads, h0, h1, [&](auto nh, int h, int kvh) {
    constexpr int kH = decltype(nh)::value;
    const size_t base = static_cast<size_t>(kvh) * head_dim;
    const float* qh = q + static_cast<size_t>(h) * head_dim;
    float* o = out + static_cast<size_t>(h) * head_dim;
    if constexpr (kKv == kKvQ8) {
      Q8Pass<kH>(qh, k_cache, v_cache, kv_stride, n_pos, n_kv_heads, head_dim, kvh, scale, s, o,
                 q8_scores);
    } else if constexpr (kH == 1) {
      OneHead<kKv>(qh, k_cache, v_cache, kv_stride, n_pos, head_dim, base, scale, scratch, o);
    } else {
      int nn[kH];
      for (int i = 0; i < kH; ++i) nn[i] = n_pos;
      GroupPass<kKv, kH>(qh, k_cache, v_cache, kv_stride, nn, head_dim, base, scale, s, o);
    }
  });
}

// ---- head_dim 8: up to 8 rows per pass (batches) ---------------------------
//
// Why: with 8-wide heads a row's q is two vectors, so 8 rows' q stay in
// registers and each K / V row (16 bytes of f16) is loaded once for 8 rows
// (4 tokens of a 2-head group) instead of 4. A score is reduced as soon as
// it is computed (the 4 rows' ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)) by FADD +
// two FADDP, as the 4-head pass), so no accumulators stay live.
constexpr int kSmallRows = 8;
static_assert(kSmallRows <= kAttentionScratchRows, "one scratch row per row of a pass");

/// s[i][p] = Dot(q_i, K row p) * scale for rows i < kH (q [kH, 8]) and
/// positions p < n; mx[i] = the maximum of s[i][0, n_lo) (softmax's first
/// pass, kept in registers on the way).
template <int kKv, int kH>
void Scores8(const float* q, const void* k, size_t stride, int n, int n_lo, size_t base,
             float scale, float* const* s, float* mx) {
  constexpr int kG = (kH + 3) / 4;
  const float32x4_t z = vdupq_n_f32(0.f), sc = vdupq_n_f32(scale);
  float32x4_t q0[4 * kG], q1[4 * kG];
#pragma GCC unroll 8
  for (int i = 0; i < 4 * kG; ++i) {
    q0[i] = i < kH ? vld1q_f32(q + 8 * i) : z;
    q1[i] = i < kH ? vld1q_f32(q + 8 * i + 4) : z;
  }
  float32x4_t mv[kG];
#pragma GCC unroll 2
  for (int g = 0; g < kG; ++g) mv[g] = vdupq_n_f32(-INFINITY);
  size_t off = base;
  for (int p = 0; p < n; ++p, off += stride) {
    float32x4_t k0, k1;
    Load8<kKv>(k, off, &k0, &k1);
    const bool in = p < n_lo;
#pragma GCC unroll 2
    for (int g = 0; g < kG; ++g) {
      float32x4_t t[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)  // fma(q, k, +0): ref's first partial sums
        t[j] = vaddq_f32(vfmaq_f32(z, q0[4 * g + j], k0), vfmaq_f32(z, q1[4 * g + j], k1));
      const float32x4_t r =
          vmulq_f32(vpaddq_f32(vpaddq_f32(t[0], t[1]), vpaddq_f32(t[2], t[3])), sc);
      if (in) mv[g] = vmaxq_f32(mv[g], r);
      if (4 * g + 0 < kH) vst1q_lane_f32(s[4 * g + 0] + p, r, 0);
      if (4 * g + 1 < kH) vst1q_lane_f32(s[4 * g + 1] + p, r, 1);
      if (4 * g + 2 < kH) vst1q_lane_f32(s[4 * g + 2] + p, r, 2);
      if (4 * g + 3 < kH) vst1q_lane_f32(s[4 * g + 3] + p, r, 3);
    }
  }
  float m[4 * kG];
#pragma GCC unroll 2
  for (int g = 0; g < kG; ++g) vst1q_f32(m + 4 * g, mv[g]);
  for (int i = 0; i < kH; ++i) mx[i] = m[i];
}

/// o[i * 8 + d] = sum over p < n ascending of fma(s[i][p] * inv[i], V row p
/// value d), rows i < kH; each V row loaded once for the kH rows.
template <int kKv, int kH>
void WeightedSum8(float* const* s, const float* inv, const void* v, size_t stride, int n,
                  size_t base, float* o) {
  float32x4_t acc[kH][2];
#pragma GCC unroll 8
  for (int i = 0; i < kH; ++i) acc[i][0] = acc[i][1] = vdupq_n_f32(0.f);
  size_t off = base;
  int p = 0;
  for (; p + 4 <= n; p += 4) {
    float32x4_t w[kH];
#pragma GCC unroll 8
    for (int i = 0; i < kH; ++i) w[i] = vmulq_f32(vld1q_f32(s[i] + p), vld1q_dup_f32(inv + i));
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j, off += stride) {
      float32x4_t v0, v1;
      Load8<kKv>(v, off, &v0, &v1);
#pragma GCC unroll 8
      for (int i = 0; i < kH; ++i) {
        acc[i][0] = FmaLane(acc[i][0], v0, w[i], j);
        acc[i][1] = FmaLane(acc[i][1], v1, w[i], j);
      }
    }
  }
  for (; p < n; ++p, off += stride) {
    float32x4_t v0, v1;
    Load8<kKv>(v, off, &v0, &v1);
#pragma GCC unroll 8
    for (int i = 0; i < kH; ++i) {
      const float32x4_t w = vdupq_n_f32(s[i][p] * inv[i]);
      acc[i][0] = vfmaq_f32(acc[i][0], w, v0);
      acc[i][1] = vfmaq_f32(acc[i][1], w, v1);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < kH; ++i) {
    vst1q_f32(o + 8 * i, acc[i][0]);
    vst1q_f32(o + 8 * i + 4, acc[i][1]);
  }
}

/// GroupPass for head_dim 8 and up to kSmallRows rows.
template <int kKv, int kH>
void SmallPass(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride,
               const int* n, size_t base, float scale, float* const* s, float* o) {
  int n_lo = n[0], n_hi = n[0];
  for (int i = 1; i < kH; ++i) {
    n_lo = std::min(n_lo, n[i]);
    n_hi = std::max(n_hi, n[i]);
  }
  float inv[kH], mx[kH];
  Scores8<kKv, kH>(q, k_cache, kv_stride, n_hi, n_lo, base, scale, s, mx);
  for (int i = 0; i < kH; ++i) {
    float m = mx[i];  // the rest of row i's range, in order (as SoftmaxNeon's tail)
    for (int p = n_lo; p < n[i]; ++p) m = s[i][p] > m ? s[i][p] : m;
    inv[i] = SoftmaxExpMaxNeon(s[i], n[i], m);
  }
  WeightedSum8<kKv, kH>(s, inv, v_cache, kv_stride, n_lo, base, o);
  for (int i = 0; i < kH; ++i)
    for (int p = n_lo; p < n[i]; ++p) {
      const float w = s[i][p] * inv[i];
      for (int d = 0; d < 8; ++d)
        o[8 * i + d] = std::fma(w, Load1<kKv>(v_cache, p * kv_stride + base + d), o[8 * i + d]);
    }
}

template <int kKv, int kH = kSmallRows>
void SmallPassN(int nb, const float* q, const void* k_cache, const void* v_cache, size_t kv_stride,
                const int* n, size_t base, float scale, float* const* s, float* o) {
  if constexpr (kH > 1) {
    if (nb < kH)
      return SmallPassN<kKv, kH - 1>(nb, q, k_cache, v_cache, kv_stride, n, base, scale, s, o);
  }
  SmallPass<kKv, kH>(q, k_cache, v_cache, kv_stride, n, base, scale, s, o);
}

/// Rows (token m, head h) of a batch, for the heads of KV group kvh in
/// [h0, h1), token-major, in blocks of up to kMaxPassHeads rows: each block
/// is one GroupPass (its K and V rows loaded once for the block).
template <int kKv>
void BatchT(const float* q, size_t ldq, int M, const void* k_cache, const void* v_cache,
            size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0, int h1,
            float* scratch, float* out, size_t ldo) {
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  const int group = n_heads / n_kv_heads;
  const int n_max = n_pos + M - 1;
  float* s[kSmallRows];
  for (int i = 0; i < kSmallRows; ++i) s[i] = scratch + static_cast<size_t>(i) * n_max;
  float qb[kMaxPassHeads * 1024], ob[kMaxPassHeads * 1024];      // head_dim <= 1024
  const int block = head_dim == 8 ? kSmallRows : kMaxPassHeads;  // rows per pass
  for (int kvh = h0 / group; kvh * group < h1; ++kvh) {
    const int ha = std::max(h0, kvh * group), nh = std::min(h1, (kvh + 1) * group) - ha;
    const size_t base = static_cast<size_t>(kvh) * head_dim;
    const int rows = M * nh;
    for (int r0 = 0; r0 < rows; r0 += block) {
      const int nb = std::min(block, rows - r0);
      int n[kSmallRows];
      for (int i = 0; i < nb; ++i) {
        const int m = (r0 + i) / nh, h = ha + (r0 + i) % nh;
        n[i] = n_pos + m;
        std::memcpy(qb + static_cast<size_t>(i) * head_dim,
                    q + m * ldq + static_cast<size_t>(h) * head_dim, sizeof(float) * head_dim);
      }
      if (head_dim == 8) {
        SmallPassN<kKv>(nb, qb, k_cache, v_cache, kv_stride, n, base, scale, s, ob);
      } else {
        switch (nb) {
          case 4:
            GroupPass<kKv, 4>(qb, k_cache, v_cache, kv_stride, n, head_dim, base, scale, s, ob);
            break;
          case 3:
            GroupPass<kKv, 3>(qb, k_cache, v_cache, kv_stride, n, head_dim, base, scale, s, ob);
            break;
          case 2:
            GroupPass<kKv, 2>(qb, k_cache, v_cache, kv_stride, n, head_dim, base, scale, s, ob);
            break;
          default:
            GroupPass<kKv, 1>(qb, k_cache, v_cache, kv_stride, n, head_dim, base, scale, s, ob);
            break;
        }
      }
      for (int i = 0; i < nb; ++i) {
        const int m = (r0 + i) / nh, h = ha + (r0 + i) % nh;
        std::memcpy(out + m * ldo + static_cast<size_t>(h) * head_dim,
                    ob + static_cast<size_t>(i) * head_dim, sizeof(float) * head_dim);
      }
    }
  }
}

}  // namespace

void AttentionBatchWith(const float* q, size_t ldq, int M, const void* k_cache, const void* v_cache,
                        KvType kv_type, size_t kv_stride, int n_pos, int n_heads, int n_kv_heads,
                        int head_dim, int h0, int h1, float* scratch, float* out, size_t ldo,
                        decltype(AttentionKernel::run) one) {
  if (kv_type == KvType::kF16) {
    BatchT<kKvF16>(q, ldq, M, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0,
                   h1, scratch, out, ldo);
  } else if (kv_type == KvType::kF32) {
    BatchT<kKvF32>(q, ldq, M, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0,
                   h1, scratch, out, ldo);
  } else {
    for (int m = 0; m < M; ++m)
      one(q + m * ldq, k_cache, v_cache, kv_type, kv_stride, n_pos + m, n_heads, n_kv_heads,
          head_dim, h0, h1, scratch, out + m * ldo);
  }
}

void AttentionBatchNeon(const float* q, size_t ldq, int M, const void* k_cache, const void* v_cache,
                        KvType kv_type, size_t kv_stride, int n_pos, int n_heads, int n_kv_heads,
                        int head_dim, int h0, int h1, float* scratch, float* out, size_t ldo) {
  AttentionBatchWith(q, ldq, M, k_cache, v_cache, kv_type, kv_stride, n_pos, n_heads, n_kv_heads,
                     head_dim, h0, h1, scratch, out, ldo, AttentionNeon);
}

void AttentionQ8Neon(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride,
                     int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0, int h1,
                     float* scratch, float* out, Q8ScoresFn scores) {
  AttentionT<kKvQ8>(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                    scratch, out, scores);
}

void AttentionNeon(const float* q, const void* k_cache, const void* v_cache, KvType kv_type,
                   size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0,
                   int h1, float* scratch, float* out) {
  if (kv_type == KvType::kQ8) {
    AttentionT<kKvQ8>(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                      scratch, out);
  } else if (kv_type == KvType::kF16) {
    AttentionT<kKvF16>(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                       scratch, out);
  } else {
    AttentionT<kKvF32>(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                       scratch, out);
  }
}

}  // namespace lamina::kern::arm
