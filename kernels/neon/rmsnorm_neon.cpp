// RMSNorm, ARMv8.0 NEON. EXACT: ss = ref::Dot order (dot_neon.h), the same
// scalar inv, then out = (x * inv) * w elementwise (two roundings, no FMA).
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include <cmath>

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/dot_neon.h"

namespace lamina::kern::arm {

void RmsNormNeon(float* out, const float* x, const float* w, int n, float eps) {
  const float ss = DotNeon(x, x, n);
  const float inv = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  const float32x4_t iv = vdupq_n_f32(inv);
  int i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(out + i, vmulq_f32(vmulq_f32(vld1q_f32(x + i), iv), vld1q_f32(w + i)));
  for (; i < n; ++i) out[i] = (x[i] * inv) * w[i];
}

}  // namespace lamina::kern::arm
