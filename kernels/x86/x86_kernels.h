// Internal declarations of the x86-64 quantized kernel variants and tiers
// (x86-64 builds only). Each variant lives in its own file named after it
// (KleidiAI style): <op>_<layout>_<tile>_<isa>.cpp, tile = <tokens>x<rows> per
// pass, compiled with that ISA's flags only (cmake/LaminaCompile.cmake). Each
// tier's KernelSet is listed in tier_<isa>.cpp. This header has no intrinsics:
// baseline files (dispatch.cpp) include it.
#pragma once

#if !defined(__x86_64__)
#error "kernels/x86/x86_kernels.h is for x86-64 builds only"
#endif

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"
#include "kernels/x86/x86_ops.h"

namespace lamina::kern::x86 {

// ---------------------------------------------------------------- layouts
// QActs::data of every x86 tier ("plain + sums"), Kp = round_up(K, 32),
// G = Kp / 32, all sections 64-byte aligned:
//   [0, M*Kp)                 int8 q[M][Kp], row-major, padding columns 0
//                             (byte for byte the ref layout);
//   at QSumOffset(M, K)       int32 [M][G]: 8 * (sum of q over group g) —
//                             the q4g kernels take the nibbles as unsigned
//                             w + 8 (VPMADDUBSW / VPDPBUSD need one unsigned
//                             operand), so idot = sum((w + 8) q) - 8 sum(q);
//   at QTotOffset(M, K)       int32 [M]: sum of q over the row — the VNNI q8c
//                             kernels take the weights as unsigned w + 128.
// (static: tier files compile these with their ISA flags, baseline files
// without; one shared out-of-line copy could carry AVX instructions.)
static inline size_t XKp(int K) { return (static_cast<size_t>(K) + 31) / 32 * 32; }
static inline size_t XRound64(size_t n) { return (n + 63) / 64 * 64; }
static inline size_t QSumOffset(int M, int K) { return XRound64(static_cast<size_t>(M) * XKp(K)); }
static inline size_t QTotOffset(int M, int K) {
  return QSumOffset(M, K) + XRound64(static_cast<size_t>(M) * (XKp(K) / 32) * 4);
}
/// QuantizeActsKernel::data_bytes of the x86 tiers.
size_t QuantizeActsBytes(int M, int K);

/// AVX2 quantizer ("plain + sums" layout), used by every x86 tier. EXACT
/// (same scale, zp and q as ref::QuantizeActs).
void QuantizeActsAvx2(const float* x, size_t ldx, int m0, int m1, QActs* qa);

// ------------------------------------------------------------------ tiers
// The KernelSet of each x86 tier (tier_<isa>.cpp; call only when the tier is
// available: the constant tables are compiled with the tier's ISA flags).
const KernelSet& Avx2Kernels();
const KernelSet& AvxVnniKernels();
const KernelSet& Avx512VnniKernels();

// ------------------------------------------------------------ matmul q4g
// MatmulQ4GKernel::run over "plain + sums" activations: GEMM in tiles of
// tokens (weights unpacked once per tile), a lone token is the GEMV (tile of 1).
// avx2: VPMADDUBSW + VPMADDWD, 4 tokens per tile.
void MatmulQ4GAvx2(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy);
void MatmulQ4GF16SAvx2(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                       size_t ldy);
// avxvnni: VEX VPDPBUSD (256-bit), 4 tokens per tile.
void MatmulQ4GAvxVnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy);
void MatmulQ4GF16SAvxVnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                          size_t ldy);
// avx512vnni: EVEX VPDPBUSD on 256-bit registers (AVX-512VL: 32 registers, so
// 8 tokens per tile).
void MatmulQ4GAvx512Vnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                         size_t ldy);
void MatmulQ4GF16SAvx512Vnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1,
                             float* y, size_t ldy);

// ------------------------------------------------------------ matmul q8c
/// avx2: sign-extended to int16, VPMADDWD (exact: VPMADDUBSW would saturate
/// on u8 x s8 pairs of q8c's full int8 range).
void MatmulQ8CAvx2(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy);
/// VNNI tiers: weights as unsigned w + 128 with VPDPBUSD, minus 128 * sum(q).
void MatmulQ8CAvxVnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy);
void MatmulQ8CAvx512Vnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                         size_t ldy);

// ---------------------------------------------------------- tier tables
/// A tier's KernelSet from its integer matmuls; everything else is the avx2
/// tier's on every x86 tier: the AVX2 quantizer ("plain + sums") and the
/// kernels/x86/*_avx2.cpp ops of x86_ops.h.
constexpr KernelSet X86KernelSet(Tier tier, MatmulQ4GKernel matmul_q4g,
                                 MatmulQ4GKernel matmul_q4g_f16s, MatmulQ8CKernel matmul_q8c) {
  return {tier,
          {QuantizeActsBytes, QuantizeActsAvx2},
          matmul_q4g,
          matmul_q4g_f16s,
          matmul_q8c,
          {lamina::x86::MatmulFloatAvx2},
          {lamina::x86::RmsNormAvx2},
          {lamina::x86::RopeAvx2},
          {lamina::x86::SiluMulAvx2},
          {lamina::x86::SoftmaxAvx2},
          {lamina::x86::HadamardAvx2},
          {lamina::x86::AttentionAvx2, nullptr}};
}

}  // namespace lamina::kern::x86
