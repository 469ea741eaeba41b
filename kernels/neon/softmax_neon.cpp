// Softmax in place, ARMv8.0 NEON. EXACT (bit-identical to ref::Softmax,
// kernels/ref/ops_ref.cpp): the max is order-independent (FMAX differs from the
// ref's compare-select only in the sign of a zero maximum, which x - m and
// ExpfRef do not see); exp lanes are ref::ExpfRef (expf_neon_inl.h); the sum
// keeps the ref's 8 partial sums s[i % 8] in two q registers (lanes 0-3 =
// s0..s3, lanes 4-7 = s4..s7), each accumulated in index order, the tail
// (n % 8) added scalar to the same partials, then the ref's combine
// ((s0+s4)+(s1+s5))+((s2+s6)+(s3+s7)); x *= 1/sum as ref.
// Why: at decode position 4096 softmax is ~2M expf per 1B-shaped token; the
// scalar libm path dominated attention.
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/expf_neon_inl.h"
#include "kernels/ref/expf_ref.h"

namespace lamina::kern::arm {

float SoftmaxExpNeon(float* x, int n) {
  const int n8 = n / 8 * 8;
  // Max. NaN inputs make every output NaN in both (payload unspecified).
  float m = x[0];
  if (n8 > 0) {
    float32x4_t m0 = vld1q_f32(x), m1 = vld1q_f32(x + 4);
    for (int i = 8; i < n8; i += 8) {
      m0 = vmaxq_f32(m0, vld1q_f32(x + i));
      m1 = vmaxq_f32(m1, vld1q_f32(x + i + 4));
    }
    m = vmaxvq_f32(vmaxq_f32(m0, m1));
  }
  for (int i = n8; i < n; ++i) m = x[i] > m ? x[i] : m;
  return SoftmaxExpMaxNeon(x, n, m);
}

float SoftmaxExpMaxNeon(float* x, int n, float m) {
  const int n8 = n / 8 * 8;
  // exp and the 8 partial sums.
  const float32x4_t mv = vdupq_n_f32(m);
  float32x4_t a0 = vdupq_n_f32(0.f), a1 = vdupq_n_f32(0.f);
  for (int i = 0; i < n8; i += 8) {
    const float32x4_t e0 = ExpfNeon(vsubq_f32(vld1q_f32(x + i), mv));
    const float32x4_t e1 = ExpfNeon(vsubq_f32(vld1q_f32(x + i + 4), mv));
    vst1q_f32(x + i, e0);
    vst1q_f32(x + i + 4, e1);
    a0 = vaddq_f32(a0, e0);
    a1 = vaddq_f32(a1, e1);
  }
  float s[8];
  vst1q_f32(s, a0);
  vst1q_f32(s + 4, a1);
  for (int i = n8; i < n; ++i) {
    x[i] = ref::ExpfRef(x[i] - m);
    s[i - n8] += x[i];
  }
  const float sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  return 1.f / sum;
}

void SoftmaxNeon(float* x, int n) {
  const float32x4_t inv = vdupq_n_f32(SoftmaxExpNeon(x, n));
  int i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_f32(vld1q_f32(x + i), inv));
  for (; i < n; ++i) x[i] *= vgetq_lane_f32(inv, 0);
}

}  // namespace lamina::kern::arm
