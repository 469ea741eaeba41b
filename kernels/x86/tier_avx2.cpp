// The avx2 tier (AVX2 + FMA + F16C, x86-64 since Haswell / Zen 1): its
// KernelSet. "plain + sums" activations (x86_kernels.h, QuantizeActsAvx2).
// No shape decisions outside the variants: a matmul walks pairs of row blocks
// and runs the tokens in tiles of 4 (decode: a tile of 1) —
//   q4g  matmul_q4g_r4k8_4x8_avx2.cpp (both scale layouts)
//   q8c  matmul_q8c_r4k4_4x8_avx2.cpp
// Float matmul, rmsnorm, rope, silu_mul, softmax, hadamard and attention:
// kernels/x86/*_avx2.cpp (x86_ops.h), also used by the VNNI tiers.
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "tier_avx2.cpp needs -mavx2 -mfma -mf16c"
#endif

#include "kernels/x86/x86_kernels.h"

namespace lamina::kern::x86 {

const KernelSet& Avx2Kernels() {
  // the quantizer and the other ops: X86KernelSet (x86_kernels.h)
  static constexpr KernelSet k = X86KernelSet(Tier::kAvx2, {MatmulQ4GAvx2},  // matmul_q4g
                                              {MatmulQ4GF16SAvx2},           // matmul_q4g_f16s
                                              {MatmulQ8CAvx2});              // matmul_q8c
  return k;
}

}  // namespace lamina::kern::x86
