// Reference float matmul (f32 / f16 / bf16 weights, f32 math): the spec.
#include <cmath>

#include "kernels/ref/fp16.h"
#include "kernels/ref/ref.h"
#include "loader/format.h"

namespace lamina::ref {
namespace {

template <typename LoadW>
void MatmulImpl(const float* x, size_t ldx, int M, LoadW load, int K, int n0, int n1, float* y,
                size_t ldy) {
  const int K8 = K / 8 * 8;
  for (int m = 0; m < M; ++m) {
    const float* xr = x + static_cast<size_t>(m) * ldx;
    for (int n = n0; n < n1; ++n) {
      const size_t row = static_cast<size_t>(n) * K;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int k = 0; k < K8; k += 8)
        for (int j = 0; j < 8; ++j) acc[j] = std::fma(load(row + k + j), xr[k + j], acc[j]);
      float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
      for (int k = K8; k < K; ++k) s = std::fma(load(row + k), xr[k], s);
      y[static_cast<size_t>(m) * ldy + n] = s;
    }
  }
}

}  // namespace

void MatmulFloat(const float* x, size_t ldx, int M, const void* w, int wtype, int N, int K,
                 int n0, int n1, float* y, size_t ldy) {
  (void)N;
  switch (static_cast<format::DType>(wtype)) {
    case format::DType::kF32: {
      const float* p = static_cast<const float*>(w);
      MatmulImpl(x, ldx, M, [p](size_t i) { return p[i]; }, K, n0, n1, y, ldy);
      break;
    }
    case format::DType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w);
      MatmulImpl(x, ldx, M, [p](size_t i) { return F16ToF32(p[i]); }, K, n0, n1, y, ldy);
      break;
    }
    case format::DType::kBF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w);
      MatmulImpl(x, ldx, M, [p](size_t i) { return BF16ToF32(p[i]); }, K, n0, n1, y, ldy);
      break;
    }
    default:
      break;  // callers validate the type; unreachable for a loaded model
  }
}

}  // namespace lamina::ref
