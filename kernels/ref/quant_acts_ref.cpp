// Reference per-token asymmetric int8 activation quantization (the spec).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "kernels/ref/ref.h"
#include "loader/format.h"

namespace lamina::ref {

size_t QuantizeActsDataBytes(int M, int K) {
  return static_cast<size_t>(M) * format::RoundUp(static_cast<uint64_t>(K), 32);
}

void ChooseQParams(const float* x, int K, float* scale, float* zp) {
  float mn = 0.f, mx = 0.f;
  bool finite = true;
  for (int k = 0; k < K; ++k) {
    mn = std::min(mn, x[k]);
    mx = std::max(mx, x[k]);
    finite &= std::isfinite(x[k]);
  }
  QParamsFromMinMax(mn, mx, finite, scale, zp);
}

void QParamsFromMinMax(float mn, float mx, bool finite, float* scale, float* zp) {
  if (!finite) {
    *scale = kern::kNonFiniteActScale;
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
  *zp = std::nearbyint(z);  // default rounding mode: round half to even
}

void QuantizeActs(const float* x, size_t ldx, int m0, int m1, kern::QActs* qa) {
  const int K = qa->K;
  const size_t Kp = format::RoundUp(static_cast<uint64_t>(K), 32);
  for (int m = m0; m < m1; ++m) {
    const float* xr = x + static_cast<size_t>(m) * ldx;
    int8_t* q = static_cast<int8_t*>(qa->data) + static_cast<size_t>(m) * Kp;
    float s, z;
    ChooseQParams(xr, K, &s, &z);
    const float inv = 1.f / s;
    if (s != s) {  // non-finite row: q = 0 (see ref.h)
      std::memset(q, 0, Kp);
    } else {
      for (int k = 0; k < K; ++k) {
        float v = std::nearbyint(xr[k] * inv + z);
        v = std::min(std::max(v, -128.f), 127.f);
        q[k] = static_cast<int8_t>(v);
      }
      std::memset(q + K, 0, Kp - K);
    }
    qa->scale[m] = s;
    qa->zp[m] = z;
  }
}

}  // namespace lamina::ref
