// Causal GQA attention of one query over the KV cache, ARMv8.0 NEON. EXACT:
// scores = Dot in ref order (dot_neon.h's two-accumulator FMLA order; f16 keys
// converted exactly with FCVTL) * scale, 4 positions at a time so each q load
// serves 4 keys; softmax = SoftmaxNeon (ref-exact); out[d] accumulated over
// positions ascending with FMLA (fused, elementwise: the ref's
// fma(s[p], v[d], out[d])), 32 outputs held in registers across all positions
// (no load/store of out per position). head_dim <= 1024 (as ref).
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include <cmath>

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/dot_neon.h"
#include "kernels/ref/fp16.h"

namespace lamina::kern::arm {
namespace {

/// 4 cache values at element offset off, as f32 (f16: exact FCVTL).
template <bool kF16>
inline float32x4_t Load4(const void* base, size_t off) {
  if constexpr (kF16) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(static_cast<const uint16_t*>(base) + off)));
  } else {
    return vld1q_f32(static_cast<const float*>(base) + off);
  }
}

template <bool kF16>
inline float Load1(const void* base, size_t off) {
  if constexpr (kF16) {
    return F16ToF32(static_cast<const uint16_t*>(base)[off]);
  } else {
    return static_cast<const float*>(base)[off];
  }
}

/// s[j] = Dot(q, k at off + j * stride, n) (ref::Dot order) * scale, j < kP.
template <bool kF16, int kP>
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
      a0[j] = vfmaq_f32(a0[j], q0, Load4<kF16>(k, off + j * stride + d));
      a1[j] = vfmaq_f32(a1[j], q1, Load4<kF16>(k, off + j * stride + d + 4));
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < kP; ++j) {
    float r = Reduce8(a0[j], a1[j]);
    for (int d = n8; d < n; ++d) r = std::fma(q[d], Load1<kF16>(k, off + j * stride + d), r);
    s[j] = r * scale;
  }
}

/// o[0, 4 * kR) = sum over p ascending of fma(w[p], v at off + p * stride).
template <bool kF16, int kR>
inline void WeightedSumR(const float* w, const void* v, size_t off, size_t stride, int n_pos,
                         float* o) {
  float32x4_t acc[kR];
#pragma GCC unroll 8
  for (int r = 0; r < kR; ++r) acc[r] = vdupq_n_f32(0.f);
  for (int p = 0; p < n_pos; ++p, off += stride) {
    const float32x4_t wv = vdupq_n_f32(w[p]);
#pragma GCC unroll 8
    for (int r = 0; r < kR; ++r) acc[r] = vfmaq_f32(acc[r], wv, Load4<kF16>(v, off + 4 * r));
  }
#pragma GCC unroll 8
  for (int r = 0; r < kR; ++r) vst1q_f32(o + 4 * r, acc[r]);
}

template <bool kF16>
void AttentionT(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride,
                int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0, int h1,
                float* scratch, float* out) {
  const int group = n_heads / n_kv_heads;
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  for (int h = h0; h < h1; ++h) {
    const size_t base = static_cast<size_t>(h / group) * head_dim;
    const float* qh = q + static_cast<size_t>(h) * head_dim;
    int p = 0;
    for (; p + 4 <= n_pos; p += 4)
      ScoresP<kF16, 4>(qh, k_cache, p * kv_stride + base, kv_stride, head_dim, scale, scratch + p);
    for (; p < n_pos; ++p)
      ScoresP<kF16, 1>(qh, k_cache, p * kv_stride + base, kv_stride, head_dim, scale, scratch + p);
    SoftmaxNeon(scratch, n_pos);
    float* o = out + static_cast<size_t>(h) * head_dim;
    int d = 0;
    for (; d + 32 <= head_dim; d += 32)
      WeightedSumR<kF16, 8>(scratch, v_cache, base + d, kv_stride, n_pos, o + d);
    for (; d + 4 <= head_dim; d += 4)
      WeightedSumR<kF16, 1>(scratch, v_cache, base + d, kv_stride, n_pos, o + d);
    for (; d < head_dim; ++d) {
      float acc = 0.f;
      for (int pp = 0; pp < n_pos; ++pp)
        acc = std::fma(scratch[pp], Load1<kF16>(v_cache, pp * kv_stride + base + d), acc);
      o[d] = acc;
    }
  }
}

}  // namespace

void AttentionNeon(const float* q, const void* k_cache, const void* v_cache, KvType kv_type,
                   size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0,
                   int h1, float* scratch, float* out) {
  if (kv_type == KvType::kF16) {
    AttentionT<true>(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                     scratch, out);
  } else {
    AttentionT<false>(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                      scratch, out);
  }
}

}  // namespace lamina::kern::arm
