// Shared row quantizer for the NEON activation quantizers (ARMv8.0 NEON).
// EXACT w.r.t. kernels/ref/quant_acts_ref.cpp:
//   - min/max: vector fmin/fmax over lanes (order-free; the only difference to
//     std::min is the sign of a zero result, which cannot change scale or zp);
//     FMIN/FMAX propagate NaN, so the row is non-finite (ref: any NaN/+-Inf)
//     exactly when mn or mx is not finite; such a row gets the ref's
//     kNonFiniteActScale, zp 0 and q 0 without converting anything;
//   - q = FCVTNS((x * inv) + zp): a separate FMUL then FADD (no FMA), FCVTNS
//     rounds half to even like nearbyint, SQXTN saturation == clamp(-128, 127)
//     (|x * inv| <= 256, far from int32 overflow).
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/neon/arm_kernels.h"
#include "kernels/ref/ref.h"

namespace lamina::kern::arm {

inline void RowMinMax(const float* x, int K, float* mn_out, float* mx_out) {
  float32x4_t mn0 = vdupq_n_f32(0.f), mn1 = mn0, mx0 = mn0, mx1 = mn0;
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    const float32x4_t a = vld1q_f32(x + k), b = vld1q_f32(x + k + 4);
    mn0 = vminq_f32(mn0, a);
    mn1 = vminq_f32(mn1, b);
    mx0 = vmaxq_f32(mx0, a);
    mx1 = vmaxq_f32(mx1, b);
  }
  float32x2_t mn2 = vdup_n_f32(vminvq_f32(vminq_f32(mn0, mn1)));
  float32x2_t mx2 = vdup_n_f32(vmaxvq_f32(vmaxq_f32(mx0, mx1)));
  for (; k < K; ++k) {  // FMIN/FMAX on a d register: NaN-propagating like the vector part
    mn2 = vmin_f32(mn2, vdup_n_f32(x[k]));
    mx2 = vmax_f32(mx2, vdup_n_f32(x[k]));
  }
  const float mn = vget_lane_f32(mn2, 0), mx = vget_lane_f32(mx2, 0);
  *mn_out = mn;
  *mx_out = mx;
}

/// Quantizes 8 values to int8 (x * inv + z, rounded half-even, saturated).
inline int8x8_t Quant8(const float* x, float32x4_t inv, float32x4_t z) {
  const float32x4_t a = vaddq_f32(vmulq_f32(vld1q_f32(x), inv), z);
  const float32x4_t b = vaddq_f32(vmulq_f32(vld1q_f32(x + 4), inv), z);
  const int16x8_t h = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(a)), vqmovn_s32(vcvtnq_s32_f32(b)));
  return vqmovn_s16(h);
}

/// Quantizes one row of K floats; 8-value chunk j (k = 8j..8j+7, j < Kp/8) is
/// written at dst + j * chunk_stride; padding values are 0.
inline void QuantizeRow(const float* x, int K, int8_t* dst, size_t chunk_stride, float* scale,
                        float* zp) {
  float mn, mx, s, z;
  RowMinMax(x, K, &mn, &mx);
  ref::QParamsFromMinMax(mn, mx, std::isfinite(mn) && std::isfinite(mx), &s, &z);
  const int nchunks = static_cast<int>(Kp32(K) / 8);
  *scale = s;
  *zp = z;
  if (s != s) {  // non-finite row (kNonFiniteActScale): q = 0, nothing converted
    for (int j = 0; j < nchunks; ++j) vst1_s8(dst + j * chunk_stride, vdup_n_s8(0));
    return;
  }
  const float inv_s = 1.f / s;
  const float32x4_t inv = vdupq_n_f32(inv_s), zv = vdupq_n_f32(z);
  const int full = K / 8;
  for (int j = 0; j < full; ++j) vst1_s8(dst + j * chunk_stride, Quant8(x + 8 * j, inv, zv));
  for (int j = full; j < nchunks; ++j) {
    int8_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8 && 8 * j + i < K; ++i) {
      float v = x[8 * j + i] * inv_s;  // no contraction (-ffp-contract=off)
      v = v + z;
      const int32_t r = vcvtns_s32_f32(v);
      t[i] = static_cast<int8_t>(std::min(std::max(r, -128), 127));
    }
    std::memcpy(dst + j * chunk_stride, t, 8);
  }
}

}  // namespace lamina::kern::arm
