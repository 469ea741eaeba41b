// Dot product in ref::Dot's exact order (ARMv8.0 NEON): acc[j] for k = 8i + j
// are two q registers (FMLA, fused, i ascending); then (a0+a4)..(a3+a7) with
// one FADD, two FADDP give ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)); the n % 8
// tail is scalar fma in order.
#pragma once

#include <arm_neon.h>

#include <cmath>

namespace lamina::kern::arm {

inline float Reduce8(float32x4_t a0, float32x4_t a1) {
  const float32x4_t v = vaddq_f32(a0, a1);
  const float32x4_t p = vpaddq_f32(v, v);
  return vgetq_lane_f32(vpaddq_f32(p, p), 0);
}

inline float DotNeon(const float* a, const float* b, int n) {
  const int n8 = n / 8 * 8;
  float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0;
  for (int k = 0; k < n8; k += 8) {
    a0 = vfmaq_f32(a0, vld1q_f32(a + k), vld1q_f32(b + k));
    a1 = vfmaq_f32(a1, vld1q_f32(a + k + 4), vld1q_f32(b + k + 4));
  }
  float s = Reduce8(a0, a1);
  for (int k = n8; k < n; ++k) s = std::fma(a[k], b[k], s);
  return s;
}

}  // namespace lamina::kern::arm
