// Causal GQA attention over an int8 KV cache (KvType::kQ8) with SDOT QK
// scores, ARMv8.2 dotprod. EXACT (bit-identical to ref::Attention): the QK
// dot is an int32 sum (order free), the rest (softmax, V-scale weighting, the
// f32 ·V sweep) is attention_neon.cpp's, via AttentionQ8Neon. f16 / f32
// caches go to AttentionNeon unchanged.
//
// Why SDOT: on ARMv8.0 the int8 dot needs SXTL + 4 SMLAL per 16 elements per
// head (as many multiply instructions as the f16 path's FMLAs); SDOT does 16
// int8 products per instruction: 1 per 16 elements per (head, position) after
// one K row load shared by the heads of the pass.
// Per position: K row loaded once (LDR q per 16), kH SDOT per 16 elements,
// the kH int32x4 sums reduced with ADDP, one SCVTF and two FMUL for all heads.
#if !defined(__ARM_FEATURE_DOTPROD)
#error "dotprod required"
#endif

#include <cstddef>
#include <cstdint>

#include "kernels/neon/arm_kernels.h"

namespace lamina::kern::arm {
namespace {

/// s[i][p] for heads i < kH, all positions (see Q8ScoresFn).
template <int kH>
void ScoresSdot(const int8_t* qq, const uint8_t* k, size_t stride, int n_pos, int n, int n_kv_heads,
                int kvh, const float* c, float* const* s) {
  const size_t base = static_cast<size_t>(kvh) * n;
  const int n16 = n / 16 * 16;
  [[maybe_unused]] const float32x4_t cv = vld1q_f32(c);
  for (int p = 0; p < n_pos; ++p) {
    const uint8_t* row = k + static_cast<size_t>(p) * stride;
    const int8_t* kp = reinterpret_cast<const int8_t*>(row) + base;
    int32x4_t acc[kH];
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) acc[i] = vdupq_n_s32(0);
#pragma GCC unroll 8
    for (int d = 0; d < n16; d += 16) {
      const int8x16_t kv = vld1q_s8(kp + d);
#pragma GCC unroll 4
      for (int i = 0; i < kH; ++i) acc[i] = vdotq_s32(acc[i], kv, vld1q_s8(qq + i * n + d));
    }
    int32_t tail[4] = {0, 0, 0, 0};
    for (int d = n16; d < n; ++d)
#pragma GCC unroll 4
      for (int i = 0; i < kH; ++i) tail[i] += static_cast<int32_t>(qq[i * n + d]) * kp[d];
    StoreQ8Scores<kH>(acc, tail, Q8Scale(row, n_kv_heads, n, kvh), c, cv, s, p);
  }
}

void Scores(const int8_t* qq, const uint8_t* k, size_t stride, int n_pos, int n, int n_kv_heads,
            int kvh, int nh, const float* c, float* const* s) {
  switch (nh) {
    case 4:
      return ScoresSdot<4>(qq, k, stride, n_pos, n, n_kv_heads, kvh, c, s);
    case 3:
      return ScoresSdot<3>(qq, k, stride, n_pos, n, n_kv_heads, kvh, c, s);
    case 2:
      return ScoresSdot<2>(qq, k, stride, n_pos, n, n_kv_heads, kvh, c, s);
    default:
      return ScoresSdot<1>(qq, k, stride, n_pos, n, n_kv_heads, kvh, c, s);
  }
}

}  // namespace

void AttentionDotprod(const float* q, const void* k_cache, const void* v_cache, KvType kv_type,
                      size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim,
                      int h0, int h1, float* scratch, float* out) {
  if (kv_type == KvType::kQ8) {
    AttentionQ8Neon(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                    scratch, out, Scores);
  } else {
    AttentionNeon(q, k_cache, v_cache, kv_type, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0,
                  h1, scratch, out);
  }
}

void AttentionBatchDotprod(const float* q, size_t ldq, int M, const void* k_cache,
                           const void* v_cache, KvType kv_type, size_t kv_stride, int n_pos,
                           int n_heads, int n_kv_heads, int head_dim, int h0, int h1,
                           float* scratch, float* out, size_t ldo) {
  AttentionBatchWith(q, ldq, M, k_cache, v_cache, kv_type, kv_stride, n_pos, n_heads, n_kv_heads,
                     head_dim, h0, h1, scratch, out, ldo, AttentionDotprod);
}

}  // namespace lamina::kern::arm
