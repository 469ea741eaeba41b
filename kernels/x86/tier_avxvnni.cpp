// The avxvnni tier (AVX2 + FMA + F16C + AVX-VNNI without AVX-512, e.g. Alder
// Lake): its KernelSet. The avx2 tier's quantizer and
// ops; the integer matmuls with VEX VPDPBUSD. No shape decisions outside the
// variants: tokens in tiles of 4 (decode: a tile of 1) over pairs of row blocks —
//   q4g  matmul_q4g_r4k8_4x8_avxvnni.cpp (both scale layouts)
//   q8c  matmul_q8c_r4k4_4x8_avxvnni.cpp
#if !defined(__AVXVNNI__)
#error "tier_avxvnni.cpp needs -mavxvnni (cmake/LaminaCompile.cmake)"
#endif

#include "kernels/x86/x86_kernels.h"

namespace lamina::kern::x86 {

const KernelSet& AvxVnniKernels() {
  // the quantizer and the other ops: X86KernelSet (x86_kernels.h)
  static constexpr KernelSet k = X86KernelSet(Tier::kAvxVnni, {MatmulQ4GAvxVnni},  // matmul_q4g
                                              {MatmulQ4GF16SAvxVnni},  // matmul_q4g_f16s
                                              {MatmulQ8CAvxVnni});     // matmul_q8c
  return k;
}

}  // namespace lamina::kern::x86
