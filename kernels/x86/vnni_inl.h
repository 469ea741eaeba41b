// The integer dot-product policy of the two VNNI tiers for the loops of
// kernels/x86/q_x86_inl.h: VPDPBUSD (unsigned bytes x signed bytes, groups of 4
// products straight into int32 lanes) on 256-bit registers, in the encoding of
// the file's ISA flags. Include only from *_avxvnni.cpp / *_avx512vnni.cpp.
#pragma once

#include "kernels/x86/q_x86_inl.h"

#if !defined(__AVXVNNI__) && !(defined(__AVX512VNNI__) && defined(__AVX512VL__))
#error "kernels/x86/vnni_inl.h needs -mavxvnni or -mavx512vl -mavx512vnni"
#endif

namespace lamina::kern::x86 {
namespace {  // per-ISA copies (see q_x86_inl.h)

struct IsaVnni {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  // avx512vnni: EVEX VPDPBUSD. Why 8 tokens: AVX-512 has 32 registers (8
  // float + 8 int32 accumulators, the unpacked weights, constants).
  static constexpr int kTile = 8;
  static __m256i Dot(__m256i acc, __m256i w_u8, __m256i a_s8) {
    return _mm256_dpbusd_epi32(acc, w_u8, a_s8);
  }
#else
  // avxvnni: VEX VPDPBUSD. Why 4 tokens: AVX2 has 16 registers (4 float + 4
  // int32 accumulators, two unpacked weight registers, constants).
  static constexpr int kTile = 4;
  static __m256i Dot(__m256i acc, __m256i w_u8, __m256i a_s8) {
    return _mm256_dpbusd_avx_epi32(acc, w_u8, a_s8);
  }
#endif
  using Acc = __m256i;  // int32 sums
  static Acc Zero() { return _mm256_setzero_si256(); }
  static __m256i Finish(Acc acc) { return acc; }
};

}  // namespace
}  // namespace lamina::kern::x86
