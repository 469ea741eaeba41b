// Per-token asymmetric int8 activation quantization, NEON (ARMv8.0), plain
// (ref) layout: row m at data + m * Kp. EXACT (see quantize_row_neon.h).
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include <cfloat>
#include <cmath>

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/quantize_row_neon.h"

namespace lamina::kern::arm {

size_t QuantizeActsBytes(int M, int K) { return static_cast<size_t>(M) * Kp32(K); }

void QParamsFromMinMax(float mn, float mx, float* scale, float* zp) {
  // Exactly ref::ChooseQParams after its min/max loop; mn/mx are
  // NaN-propagating (RowMinMax), so a row holding NaN or +-Inf shows here.
  if (!(std::isfinite(mn) && std::isfinite(mx))) {
    *scale = kNonFiniteActScale;
    *zp = 0.f;
    return;
  }
  float s = (mx - mn) / 255.f;
  if (!(s >= FLT_EPSILON)) s = FLT_EPSILON;
  const float dmin = mn / s;
  const float dmax = mx / s;
  float z = ((-128.f + dmin) + (127.f + dmax) > 0.f) ? -128.f - dmin : 127.f - dmax;
  z = std::min(std::max(z, -128.f), 127.f);
  *scale = s;
  *zp = std::nearbyint(z);
}

void QuantizeActsPlainNeon(const float* x, size_t ldx, int m0, int m1, QActs* qa) {
  const size_t Kp = Kp32(qa->K);
  for (int m = m0; m < m1; ++m) {
    int8_t* dst = static_cast<int8_t*>(qa->data) + static_cast<size_t>(m) * Kp;
    QuantizeRow(x + static_cast<size_t>(m) * ldx, qa->K, dst, 8, &qa->scale[m], &qa->zp[m]);
  }
}

}  // namespace lamina::kern::arm
