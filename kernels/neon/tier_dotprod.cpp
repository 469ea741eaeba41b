// The dotprod tier (ARMv8.2 + SDOT, e.g. Cortex-A76 / Neoverse N1): its
// KernelSet and which variant runs for which shape. Plain activations (ref
// layout); everything but the matmuls and attention as the neon tier.
//   q4g decode (M == 1): matmul_q4g_r4k8_1x8_gemv_dotprod.cpp
//                        (f16 scales: matmul_q4g_r4k8_f16s_1x8_gemv_dotprod.cpp)
//   q4g prefill (M > 1): tokens in tiles of 4 through
//                        matmul_q4g_r4k8_4x4_gemm_dotprod.cpp (2 to 4 tokens,
//                        both layouts); a last tile of 1 token through the GEMV
//   q8c, any M:          each token through matmul_q8c_r4k4_1x8_gemv_dotprod.cpp
//   attention:           attention_q8_dotprod.cpp (SDOT scores on a Q8 KV cache)
#if !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod"
#endif

#include <algorithm>

#include "kernels/neon/arm_kernels.h"
#include "kernels/ref/ref.h"

namespace lamina::kern::arm {
namespace {

using Gemm4Fn = void (*)(const int8_t* q, const float* ascale, const float* zp, int mt,
                         const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy);

template <GemvFn kGemv, Gemm4Fn kGemm>
void MatmulQ4G(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
               size_t ldy) {
  (void)N;
  const size_t Kp = Kp32(K);
  const int8_t* q = static_cast<const int8_t*>(a.data);
  if (a.M == 1) {  // decode
    kGemv(q, a.scale[0], a.zp[0], w, K, n0, n1, y);
    return;
  }
  for (int m = 0; m < a.M; m += 4) {
    const int mt = std::min(4, a.M - m);
    const int8_t* qm = q + static_cast<size_t>(m) * Kp;
    float* ym = y + static_cast<size_t>(m) * ldy;
    if (mt == 1) {
      kGemv(qm, a.scale[m], a.zp[m], w, K, n0, n1, ym);
    } else {
      kGemm(qm, a.scale + m, a.zp + m, mt, w, K, n0, n1, ym, ldy);
    }
  }
}

void MatmulQ8C(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
               size_t ldy) {
  (void)N;
  GemvEachToken(Q8CGemv1x8Dotprod, a, w, K, n0, n1, y, ldy);
}

}  // namespace

const KernelSet& DotprodKernels() {
  // the other ops: ArmKernelSet (arm_kernels.h)
  static constexpr KernelSet k =
      ArmKernelSet(Tier::kDotprod, {QuantizeActsBytes, QuantizeActsPlainNeon},  // quantize_acts
                   {MatmulQ4G<Q4GGemv1x8Dotprod, Q4GGemm4x4Dotprod>},           // matmul_q4g
                   {MatmulQ4G<Q4GF16SGemv1x8Dotprod, Q4GF16SGemm4x4Dotprod>},   // matmul_q4g_f16s
                   {MatmulQ8C},                                                 // matmul_q8c
                   {AttentionDotprod, AttentionBatchDotprod});                  // attention
  return k;
}

}  // namespace lamina::kern::arm
