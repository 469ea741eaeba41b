// The sve tier (SVE + I8MM, e.g. Neoverse V1 / Graviton 3, 256-bit): its
// KernelSet and which variant runs for which shape, by vector length. "pairs"
// activations (the i8mm tier's quantizer); other ops as the i8mm tier.
// AutoTier picks this tier from 256-bit vectors on (kernels/dispatch.cpp).
//   q4g prefill (M > 1): token pairs in tiles of up to 4 through
//                        matmul_q4g_r4k8_8xvl_gemm_sve_i8mm.cpp (both layouts;
//                        f16 scales with K beyond SveQ4G<true>::Fits: the i8mm
//                        tier's matmul instead); the lone last token of an odd
//                        M as decode
//   q4g decode (M == 1): VL >= 512 bits: matmul_q4g_r4k8_1xvl_gemv_sve.cpp;
//                        below: the NEON SDOT GEMV
//                        matmul_q4g_r4k8_(f16s_)1x8_gemv_dotprod.cpp
//   q8c decode:          VL >= 512 bits: matmul_q8c_r4k4_1x8_gemv_sve.cpp;
//                        below: as the i8mm tier (SDOT GEMV)
//   q8c prefill:         as the i8mm tier (NEON SMMLA, matmul_q8c_r4k4_8x4_gemm_i8mm.cpp)
#if !defined(__ARM_FEATURE_SVE) || !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod+sve"
#endif

#include <arm_sve.h>

#include <algorithm>

#include "kernels/neon/arm_kernels.h"
#include "kernels/ref/ref.h"
#include "kernels/sve/sve_q4g_inl.h"

namespace lamina::kern::arm {

int SveVectorBytes() { return static_cast<int>(svcntb()); }

namespace {

// Why 512 bits: the SVE GEMVs fetch VL/128 row blocks per chunk with a 64-bit
// gather and more predicate arithmetic than the NEON asm GEMV; measured per
// 1B decode token (tools/insn-engine.sh): 256-bit SVE 210.9 M vs NEON 207.5 M,
// 512-bit SVE 109.3 M. So decode stays on NEON below 512 bits.
inline bool SveGemvPays() { return svcntb() >= 64; }

using Gemm8xVlFn = void (*)(int np, const int8_t* qa, size_t Kp, const float* ascale,
                            const float* zp, const uint8_t* w, int n0, int n1, float* y,
                            size_t ldy);

template <Gemm8xVlFn kGemm, GemvFn kSveGemv, GemvFn kNeonGemv>
void MatmulQ4G(const QActs& a, const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy) {
  const size_t Kp = Kp32(K);
  const int8_t* q = static_cast<const int8_t*>(a.data);
  const int pairs = a.M / 2;
  for (int p = 0; p < pairs; p += 4)
    kGemm(std::min(4, pairs - p), q + static_cast<size_t>(p) * 2 * Kp, Kp, a.scale + 2 * p,
          a.zp + 2 * p, w, n0, n1, y + static_cast<size_t>(2 * p) * ldy, ldy);
  GemvLoneToken(SveGemvPays() ? kSveGemv : kNeonGemv, a, w, K, n0, n1, y, ldy);
}

void MatmulQ4GSve(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                  size_t ldy) {
  (void)N;
  MatmulQ4G<Q4GGemm8xVlSveI8mm, Q4GGemv1xVlSve, Q4GGemv1x8Dotprod>(a, w, K, n0, n1, y, ldy);
}

void MatmulQ4GF16SSve(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy) {
  if (!SveQ4G<true>::Fits(Kp32(K))) {  // 32-bit gather offsets would overflow
    MatmulQ4GF16SI8mm(a, w, N, K, n0, n1, y, ldy);
    return;
  }
  MatmulQ4G<Q4GF16SGemm8xVlSveI8mm, Q4GF16SGemv1xVlSve, Q4GF16SGemv1x8Dotprod>(a, w, K, n0, n1, y,
                                                                               ldy);
}

void MatmulQ8CSve(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                  size_t ldy) {
  if (a.M == 1 && SveGemvPays()) {  // "pairs" layout of one token == plain
    Q8CGemv1x8Sve(static_cast<const int8_t*>(a.data), a.scale[0], a.zp[0], w, K, n0, n1, y);
  } else {
    MatmulQ8CI8mm(a, w, N, K, n0, n1, y, ldy);
  }
}

}  // namespace

const KernelSet& SveKernels() {
  // the other ops: ArmKernelSet (arm_kernels.h)
  static constexpr KernelSet k =
      ArmKernelSet(Tier::kSve, {QuantizeActsBytes, QuantizeActsPairsNeon},  // quantize_acts
                   {MatmulQ4GSve},                                          // matmul_q4g
                   {MatmulQ4GF16SSve},                                      // matmul_q4g_f16s
                   {MatmulQ8CSve},                                          // matmul_q8c
                   {AttentionDotprod, AttentionBatchDotprod});              // attention
  return k;
}

}  // namespace lamina::kern::arm
