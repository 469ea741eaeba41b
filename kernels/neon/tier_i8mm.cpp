// The i8mm tier (SDOT + SMMLA, e.g. Cortex-A710, and Neoverse N2 / V2, whose
// 128-bit SVE AutoTier leaves to NEON): its KernelSet and which variant runs for which shape.
// "pairs" activations (arm_kernels.h: tokens 2p, 2p+1 interleaved for SMMLA, a lone last token of
// an odd M plain); other ops as the dotprod tier.
//   q4g decode (M == 1): the SDOT GEMV matmul_q4g_r4k8_1x8_gemv_dotprod.cpp
//                        (f16 scales: matmul_q4g_r4k8_f16s_1x8_gemv_dotprod.cpp)
//   q4g prefill (M > 1): token pairs in tiles of 6 (matmul_q4g_r4k8_12x4_gemm_i8mm.cpp),
//                        then 4 (..._8x4_gemm_i8mm.cpp), then 1 (..._2x4_gemm_i8mm.cpp);
//                        the lone last token of an odd M through the SDOT GEMV
//   q8c decode:          matmul_q8c_r4k4_1x8_gemv_dotprod.cpp
//   q8c prefill:         token pairs in tiles of up to 4 through
//                        matmul_q8c_r4k4_8x4_gemm_i8mm.cpp, a lone last token
//                        through the SDOT GEMV
#if !defined(__ARM_FEATURE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm"
#endif

#include <algorithm>

#include "kernels/neon/arm_kernels.h"
#include "kernels/ref/ref.h"

namespace lamina::kern::arm {
namespace {

using PairTileFn = void (*)(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                            const uint8_t* w, int n0, int n1, float* y, size_t ldy);

template <PairTileFn kTile12, PairTileFn kTile8, PairTileFn kTile2, GemvFn kGemv>
void MatmulQ4G(const QActs& a, const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy) {
  const size_t Kp = Kp32(K);
  const int8_t* q = static_cast<const int8_t*>(a.data);
  const int pairs = a.M / 2;
  auto at = [&](PairTileFn tile, int p) {
    tile(q + static_cast<size_t>(p) * 2 * Kp, Kp, a.scale + 2 * p, a.zp + 2 * p, w, n0, n1,
         y + static_cast<size_t>(2 * p) * ldy, ldy);
  };
  int p = 0;
  if (Kp > 0)  // the 12x4 asm loop runs at least once
    for (; p + 6 <= pairs; p += 6) at(kTile12, p);
  for (; p + 4 <= pairs; p += 4) at(kTile8, p);
  for (; p < pairs; ++p) at(kTile2, p);
  GemvLoneToken(kGemv, a, w, K, n0, n1, y, ldy);
}

}  // namespace

void MatmulQ4GI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy) {
  (void)N;
  MatmulQ4G<Q4GGemm12x4I8mm, Q4GGemm8x4I8mm, Q4GGemm2x4I8mm, Q4GGemv1x8Dotprod>(a, w, K, n0, n1, y,
                                                                                ldy);
}

void MatmulQ4GF16SI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                       size_t ldy) {
  (void)N;
  MatmulQ4G<Q4GF16SGemm12x4I8mm, Q4GF16SGemm8x4I8mm, Q4GF16SGemm2x4I8mm, Q4GF16SGemv1x8Dotprod>(
      a, w, K, n0, n1, y, ldy);
}

void MatmulQ8CI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy) {
  (void)N;
  const size_t Kp = Kp32(K);
  const int8_t* q = static_cast<const int8_t*>(a.data);
  const int pairs = a.M / 2;
  for (int p = 0; p < pairs; p += 4)
    Q8CGemm8x4I8mm(std::min(4, pairs - p), q + static_cast<size_t>(p) * 2 * Kp, Kp, a.scale + 2 * p,
                   a.zp + 2 * p, w, n0, n1, y + static_cast<size_t>(2 * p) * ldy, ldy);
  GemvLoneToken(Q8CGemv1x8Dotprod, a, w, K, n0, n1, y, ldy);
}

const KernelSet& I8mmKernels() {
  // the other ops: ArmKernelSet (arm_kernels.h)
  static constexpr KernelSet k =
      ArmKernelSet(Tier::kI8mm, {QuantizeActsBytes, QuantizeActsPairsNeon},  // quantize_acts
                   {MatmulQ4GI8mm},                                          // matmul_q4g
                   {MatmulQ4GF16SI8mm},                                      // matmul_q4g_f16s
                   {MatmulQ8CI8mm},                                          // matmul_q8c
                   {AttentionDotprod, AttentionBatchDotprod});               // attention
  return k;
}

}  // namespace lamina::kern::arm
