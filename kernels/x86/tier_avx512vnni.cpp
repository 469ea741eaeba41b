// The avx512vnni tier (AVX2 + FMA + F16C + AVX-512 F/BW/VL/VNNI, e.g. Ice Lake
// and later Xeons, Zen 4 / 5): its KernelSet. The avx2 tier's quantizer and
// ops; the integer matmuls with EVEX VPDPBUSD and 8-token tiles (32 registers).
//   q4g  matmul_q4g_r4k8_8x16_avx512vnni.cpp (both scale layouts): runs of 4
//        row blocks on 512-bit registers, the last 1 to 3 blocks through
//        q_x86_inl.h's 256-bit loop (8 tokens x 8 rows); decode: a tile of 1
//   q8c  matmul_q8c_r4k4_8x8_avx512vnni.cpp (256-bit registers)
#if !defined(__AVX512VNNI__) || !defined(__AVX512VL__) || !defined(__AVX512BW__)
#error "tier_avx512vnni.cpp needs -mavx512f -mavx512bw -mavx512vl -mavx512vnni"
#endif

#include "kernels/x86/x86_kernels.h"

namespace lamina::kern::x86 {

const KernelSet& Avx512VnniKernels() {
  // the quantizer and the other ops: X86KernelSet (x86_kernels.h)
  static constexpr KernelSet k =
      X86KernelSet(Tier::kAvx512Vnni, {MatmulQ4GAvx512Vnni},  // matmul_q4g
                   {MatmulQ4GF16SAvx512Vnni},                 // matmul_q4g_f16s
                   {MatmulQ8CAvx512Vnni});                    // matmul_q8c
  return k;
}

}  // namespace lamina::kern::x86
