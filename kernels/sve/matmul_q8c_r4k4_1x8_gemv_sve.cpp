// q8c (Q8C_R4K4) x int8 GEMV, SVE SDOT, vector-length agnostic: one token
// (plain activation row) x 8 rows (two row blocks) per pass.
//
// A vector of VL bytes holds S = VL/16 consecutive 16-byte chunks (4 rows x
// 4 k each) of a row block. TBL turns the S*4 matching activation bytes into
// [a(c) x4 | a(c+1) x4 | ...] (index 4*(i/16) + i%4), so a plain SDOT (no
// lane) accumulates, per 128-bit segment s and row r, the chunk's dot in lane
// 4s + r. Two row blocks per pass share the activation load + TBL. The int32
// lanes are summed per row at the end (SADDV under the predicate
// "lane % 4 == r"; integer sums are order-free). Epilogue exactly as ref.
#if !defined(__ARM_FEATURE_SVE)
#error "compile with -march=armv8.2-a+dotprod+sve"
#endif

#include <arm_sve.h>

#include "kernels/neon/arm_kernels.h"

namespace lamina::kern::arm {
namespace {

inline void Finish(svint32_t acc, svuint32_t lane_mod4, const uint8_t* tail, float zp, float ascale,
                   int n, int n1, float* y) {
  float ws[4];
  int32_t wsum[4];
  std::memcpy(ws, tail, 16);
  std::memcpy(wsum, tail + 16, 16);
  for (int r = 0; r < 4 && n + r < n1; ++r) {
    const int32_t s =
        static_cast<int32_t>(svaddv_s32(svcmpeq_n_u32(svptrue_b32(), lane_mod4, r), acc));
    // int64, as ref::MatmulQ8C (wsum is unchecked file data).
    const int64_t idot = s - static_cast<int64_t>(zp) * wsum[r];
    y[n + r] = (static_cast<float>(idot) * ws[r]) * ascale;
  }
}

/// The activations matching weight bytes [o, o + VL) of a row block (abytes =
/// VL / 4 of them), each 4 bytes replicated per 128-bit segment by TBL.
inline svint8_t ActsAt(const int8_t* q, uint64_t o, uint64_t abytes, size_t Kp, svuint8_t idx) {
  const uint64_t ao = o / 4;
  const svbool_t pa = svwhilelt_b8_u64(ao, ao + abytes < Kp ? ao + abytes : Kp);
  return svtbl_s8(svld1_s8(pa, q + ao), idx);
}

}  // namespace

void Q8CGemv1x8Sve(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0, int n1,
                   float* y) {
  const size_t Kp = Kp32(K), bb = Kp * 4 + 32;
  const uint64_t wbytes = Kp * 4;  // chunk bytes per block
  const uint64_t vl = svcntb();
  const uint64_t abytes = vl / 4;  // activation bytes per weight vector
  const svuint8_t i8 = svindex_u8(0, 1);
  const svuint8_t idx =
      svorr_u8_x(svptrue_b8(), svlsl_n_u8_x(svptrue_b8(), svlsr_n_u8_x(svptrue_b8(), i8, 4), 2),
                 svand_n_u8_x(svptrue_b8(), i8, 3));
  const svuint32_t lane_mod4 = svand_n_u32_x(svptrue_b32(), svindex_u32(0, 1), 3);
  const int b1 = (n1 + 3) / 4;
  int b = n0 / 4;
  for (; b + 2 <= b1; b += 2) {
    const int8_t* p0 = reinterpret_cast<const int8_t*>(w + static_cast<size_t>(b) * bb);
    const int8_t* p1 = p0 + bb;
    svint32_t acc0 = svdup_n_s32(0), acc1 = acc0;
    for (uint64_t o = 0; o < wbytes; o += vl) {
      const svbool_t pw = svwhilelt_b8_u64(o, wbytes);
      const svint8_t av = ActsAt(q, o, abytes, Kp, idx);
      acc0 = svdot_s32(acc0, svld1_s8(pw, p0 + o), av);
      acc1 = svdot_s32(acc1, svld1_s8(pw, p1 + o), av);
    }
    Finish(acc0, lane_mod4, w + static_cast<size_t>(b) * bb + wbytes, zp, ascale, 4 * b, n1, y);
    Finish(acc1, lane_mod4, w + static_cast<size_t>(b + 1) * bb + wbytes, zp, ascale, 4 * b + 4, n1,
           y);
  }
  if (b < b1) {
    const int8_t* p0 = reinterpret_cast<const int8_t*>(w + static_cast<size_t>(b) * bb);
    svint32_t acc0 = svdup_n_s32(0);
    for (uint64_t o = 0; o < wbytes; o += vl) {
      const svbool_t pw = svwhilelt_b8_u64(o, wbytes);
      const svint8_t av = ActsAt(q, o, abytes, Kp, idx);
      acc0 = svdot_s32(acc0, svld1_s8(pw, p0 + o), av);
    }
    Finish(acc0, lane_mod4, w + static_cast<size_t>(b) * bb + wbytes, zp, ascale, 4 * b, n1, y);
  }
}

}  // namespace lamina::kern::arm
