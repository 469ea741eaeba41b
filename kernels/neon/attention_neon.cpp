// Causal GQA attention of one query over the KV cache, ARMv8.0 NEON. EXACT:
// scores = Dot in ref order (dot_neon.h; f16 keys converted exactly with
// FCVTL first) * scale; softmax = ref::Softmax (same expf); out accumulated
// per position ascending with FMLA (fused, elementwise: the ref's
// fma(s[p], v[d], out[d])). head_dim <= 1024 (as ref).
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include <cmath>

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/dot_neon.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/ref.h"

namespace lamina::kern::arm {

void AttentionNeon(const float* q, const void* k_cache, const void* v_cache, KvType kv_type,
                   size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0,
                   int h1, float* scratch, float* out) {
  const int group = n_heads / n_kv_heads;
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  const bool f16 = kv_type == KvType::kF16;
  float kbuf[1024];
  for (int h = h0; h < h1; ++h) {
    const int kvh = h / group;
    const float* qh = q + static_cast<size_t>(h) * head_dim;
    for (int p = 0; p < n_pos; ++p) {
      const size_t off = static_cast<size_t>(p) * kv_stride + static_cast<size_t>(kvh) * head_dim;
      const float* kp;
      if (!f16) {
        kp = static_cast<const float*>(k_cache) + off;
      } else {
        const uint16_t* k16 = static_cast<const uint16_t*>(k_cache) + off;
        int d = 0;
        for (; d + 4 <= head_dim; d += 4)
          vst1q_f32(kbuf + d, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(k16 + d))));
        for (; d < head_dim; ++d) kbuf[d] = F16ToF32(k16[d]);
        kp = kbuf;
      }
      scratch[p] = DotNeon(qh, kp, head_dim) * scale;
    }
    ref::Softmax(scratch, n_pos);
    float* o = out + static_cast<size_t>(h) * head_dim;
    const int d4 = head_dim / 4 * 4;
    for (int d = 0; d < head_dim; ++d) o[d] = 0.f;
    for (int p = 0; p < n_pos; ++p) {
      const size_t off = static_cast<size_t>(p) * kv_stride + static_cast<size_t>(kvh) * head_dim;
      const float wgt = scratch[p];
      const float32x4_t wv = vdupq_n_f32(wgt);
      if (!f16) {
        const float* vp = static_cast<const float*>(v_cache) + off;
        for (int d = 0; d < d4; d += 4)
          vst1q_f32(o + d, vfmaq_f32(vld1q_f32(o + d), wv, vld1q_f32(vp + d)));
        for (int d = d4; d < head_dim; ++d) o[d] = std::fma(wgt, vp[d], o[d]);
      } else {
        const uint16_t* vp = static_cast<const uint16_t*>(v_cache) + off;
        for (int d = 0; d < d4; d += 4) {
          const float32x4_t v = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(vp + d)));
          vst1q_f32(o + d, vfmaq_f32(vld1q_f32(o + d), wv, v));
        }
        for (int d = d4; d < head_dim; ++d) o[d] = std::fma(wgt, F16ToF32(vp[d]), o[d]);
      }
    }
  }
}

}  // namespace lamina::kern::arm
