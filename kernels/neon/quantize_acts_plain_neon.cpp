// Per-token asymmetric int8 activation quantization, NEON (ARMv8.0), plain
// (ref) layout: row m at data + m * Kp. EXACT (see quantize_row_neon.h).
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/quantize_row_neon.h"

namespace lamina::kern::arm {

size_t QuantizeActsBytes(int M, int K) { return static_cast<size_t>(M) * Kp32(K); }

void QuantizeActsPlainNeon(const float* x, size_t ldx, int m0, int m1, QActs* qa) {
  const size_t Kp = Kp32(qa->K);
  for (int m = m0; m < m1; ++m) {
    int8_t* dst = static_cast<int8_t*>(qa->data) + static_cast<size_t>(m) * Kp;
    QuantizeRow(x + static_cast<size_t>(m) * ldx, qa->K, dst, 8, &qa->scale[m], &qa->zp[m]);
  }
}

}  // namespace lamina::kern::arm
