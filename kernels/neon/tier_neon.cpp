// The neon tier (ARMv8.0 Advanced SIMD, every 64-bit Arm core): its KernelSet
// and which variant runs for which shape. Plain activations (ref layout).
//   decode (M == 1) and prefill (M > 1) alike: each token through the GEMVs
//     q4g  matmul_q4g_r4k8_1x8_gemv_neon.cpp (both scale layouts)
//     q8c  matmul_q8c_r4k4_1x4_gemv_neon.cpp
// Other ops: NEON, ref-exact; rope stays ref (a few hundred FLOPs per token).
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include "kernels/neon/arm_kernels.h"
#include "kernels/ref/ref.h"

namespace lamina::kern::arm {
namespace {

template <GemvFn kGemv>
void EachToken(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
               size_t ldy) {
  (void)N;
  GemvEachToken(kGemv, a, w, K, n0, n1, y, ldy);
}

}  // namespace

const KernelSet& NeonKernels() {
  // the other ops: ArmKernelSet (arm_kernels.h)
  static constexpr KernelSet k =
      ArmKernelSet(Tier::kNeon, {QuantizeActsBytes, QuantizeActsPlainNeon},  // quantize_acts
                   {EachToken<Q4GGemv1x8Neon>},                              // matmul_q4g
                   {EachToken<Q4GF16SGemv1x8Neon>},                          // matmul_q4g_f16s
                   {EachToken<Q8CGemv1x4Neon>},                              // matmul_q8c
                   {AttentionNeon, AttentionBatchNeon});                     // attention
  return k;
}

}  // namespace lamina::kern::arm
