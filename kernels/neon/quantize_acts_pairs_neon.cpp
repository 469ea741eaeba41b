// Per-token asymmetric int8 activation quantization, NEON (ARMv8.0), "pairs"
// layout for the i8mm tier (arm_kernels.h): tokens 2p, 2p+1 interleaved in
// 8-byte chunks, a lone last token plain. EXACT (see quantize_row_neon.h).
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/quantize_row_neon.h"

namespace lamina::kern::arm {

void QuantizeActsPairsNeon(const float* x, size_t ldx, int m0, int m1, QActs* qa) {
  const size_t Kp = Kp32(qa->K);
  const int M = qa->M;
  for (int m = m0; m < m1; ++m) {
    int8_t* base = static_cast<int8_t*>(qa->data);
    const bool lone = (M % 2 == 1) && m == M - 1;
    int8_t* dst = lone ? base + static_cast<size_t>(m) * Kp
                       : base + static_cast<size_t>(m / 2) * 2 * Kp + 8 * (m % 2);
    QuantizeRow(x + static_cast<size_t>(m) * ldx, qa->K, dst, lone ? 8 : 16, &qa->scale[m],
                &qa->zp[m]);
  }
}

}  // namespace lamina::kern::arm
