// Shared SVE helpers for the Q4G_R4K8 kernels (include from kernels/sve/ only).
//
// Vector-length agnostic mapping: a vector's 128-bit segment s holds row block
// b + s (S = VL/128 blocks per vector). The 16-byte chunk c of group g of S
// consecutive blocks (bb bytes apart) is fetched with ONE 64-bit gather
// (offsets (j/2)*bb + (j%2)*8); activations are replicated to every segment
// with LD1RQB, so SDOT-by-element / SMMLA (both per-segment operations) see
// the same operands as the NEON kernels, one block per segment.
// SVE has no fixed-point SCVTF: the x16 group sums are converted with SCVTF
// and scaled by 1/16 with FMUL — exact (|16*idot| < 2^24, a power-of-two
// scaling of an integer never rounds), then FMLA by the group scale: the ref
// chain per lane.
#pragma once

#if !defined(__ARM_FEATURE_SVE)
#error "sve_q4g_inl.h needs +sve"
#endif

#include <arm_sve.h>

#include <cstddef>
#include <cstdint>

namespace lamina::kern::arm {

/// Gather offsets for S blocks: lane j -> (j / 2) * bb + (j % 2) * 8.
inline svuint64_t BlockOffsets(size_t bb) {
  const svbool_t pt = svptrue_b64();
  const svuint64_t j = svindex_u64(0, 1);
  return svadd_u64_x(pt, svmul_n_u64_x(pt, svlsr_n_u64_x(pt, j, 1), bb),
                     svlsl_n_u64_x(pt, svand_n_u64_x(pt, j, 1), 3));
}

/// 16 bytes at p + s*bb into segment s (active doubleword lanes only).
inline svuint8_t GatherChunk(svbool_t pg64, const uint8_t* p, svuint64_t offs) {
  return svreinterpret_u8_u64(
      svld1_gather_u64offset_u64(pg64, reinterpret_cast<const uint64_t*>(p), offs));
}

inline svfloat32_t GatherF32x4(svbool_t pg64, const uint8_t* p, svuint64_t offs) {
  return svreinterpret_f32_u64(
      svld1_gather_u64offset_u64(pg64, reinterpret_cast<const uint64_t*>(p), offs));
}

/// (float)(x16 sum) / 16: exact.
inline svfloat32_t CvtX16(svint32_t v) {
  const svbool_t pt = svptrue_b32();
  return svmul_n_f32_x(pt, svcvt_f32_s32_x(pt, v), 0.0625f);
}

}  // namespace lamina::kern::arm
