// Shared SVE helpers for the q4g kernels, both layouts (include from
// kernels/sve/ only).
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

#include "kernels/neon/arm_kernels.h"

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

/// A q4g row block's layout (arm::Q4GBlock) and how to gather its parts for
/// S = VL/128 consecutive blocks (SVE vectors cannot be members: the gather
/// offsets are made by Offs / Offs16 and passed).
template <bool kF16>
struct SveQ4G : Q4GBlock<kF16> {
  using Q4GBlock<kF16>::Q4GBlock;
  /// Whether Offs16 holds for S <= 16 blocks (2048-bit vectors): 16 * bb <
  /// 2^32, i.e. K below ~100 M (every real model; callers fall back to NEON).
  static bool Fits(size_t Kp) { return Kp / 32 * 80 + 32 < (size_t{1} << 28); }
  /// 64-bit gather offsets of 16-byte chunks (BlockOffsets).
  svuint64_t Offs() const { return BlockOffsets(this->bb); }
  /// f16 scales: 32-bit lane i -> (i / 4) * bb + 2 * (i % 4).
  svuint32_t Offs16() const {
    const svbool_t pt = svptrue_b32();
    const svuint32_t j = svindex_u32(0, 1);
    return svadd_u32_x(pt,
                       svmul_n_u32_x(pt, svlsr_n_u32_x(pt, j, 2), static_cast<uint32_t>(this->bb)),
                       svlsl_n_u32_x(pt, svand_n_u32_x(pt, j, 3), 1));
  }
  /// The 4 rows' scales of group g of the nb <= S blocks at blk (segment s =
  /// block s), as f32. pg64: 2*nb active 64-bit lanes; pg32: 4*nb 32-bit lanes.
  svfloat32_t Scales(svbool_t pg64, svbool_t pg32, const uint8_t* blk, size_t g, svuint64_t offs,
                     svuint32_t offs16) const {
    const uint8_t* p = blk + this->scale_off + this->scale_stride * g;
    if constexpr (kF16) {
      (void)offs;
      // LD1H zero-extended into 32-bit lanes: the f16 is the bottom half of
      // each lane, which is what FCVT .S <- .H reads (exact widening).
      const svuint32_t h =
          svld1uh_gather_u32offset_u32(pg32, reinterpret_cast<const uint16_t*>(p), offs16);
      return svcvt_f32_f16_x(pg32, svreinterpret_f16_u32(h));
    } else {
      (void)pg32;
      (void)offs16;
      return GatherF32x4(pg64, p, offs);
    }
  }
  svfloat32_t Corr(svbool_t pg64, const uint8_t* blk, svuint64_t offs) const {
    return GatherF32x4(pg64, blk + this->corr_off, offs);
  }
};

/// (float)(x16 sum) / 16: exact.
inline svfloat32_t CvtX16(svint32_t v) {
  const svbool_t pt = svptrue_b32();
  return svmul_n_f32_x(pt, svcvt_f32_s32_x(pt, v), 0.0625f);
}

}  // namespace lamina::kern::arm
