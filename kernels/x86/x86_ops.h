// Declarations of the x86-64 element-wise and attention ops (namespace
// lamina::x86). One function per op, each with the signature of its
// KernelSet member (kernels/kernels.h), each in its own file named after the
// ISA it needs: <op>_avx2.cpp is built with -mavx2 -mfma -mf16c and may only be
// called when kern::DetectCpu() reports avx2 && fma && f16c. This header itself
// is plain C++ (no intrinsics), so baseline-x86-64 files (dispatch, tests,
// benchmarks) can include it.
//
// Every function is EXACT: bit-identical to its kernels/ref counterpart for
// any input the ref defines (see the per-function notes). Never allocates,
// never starts threads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace lamina::x86 {

/// MatmulFloatKernel::run: y[m*ldy + n] = W(n,:) . x(m,:), m < M, n in [n0, n1);
/// W row-major [N, K] in f32 / f16 / bf16 (wtype 0 / 1 / 2 = format::DType;
/// other values: no-op, as ref). K >= 1, 0 <= n0 <= n1 <= N, any n0.
/// ref::MatmulFloat's order: acc[j] (k = 8i + j) are the 8 lanes of one ymm,
/// fused, i ascending; the fixed tree; the K % 8 tail as scalar fma in order.
void MatmulFloatAvx2(const float* x, size_t ldx, int M, const void* w, int wtype, int N, int K,
                     int n0, int n1, float* y, size_t ldy);

/// RmsNormKernel::run, n >= 1; out may alias x. EXACT (ss in ref::Dot order).
void RmsNormAvx2(float* out, const float* x, const float* w, int n, float eps);

/// RopeKernel::run (interleaved pairs, head_dim even). EXACT: each product
/// rounded, then one add / sub (no fma), as ref::Rope.
void RopeAvx2(float* x, int n_heads, int head_dim, const float* cos, const float* sin);

/// SiluMulKernel::run, n >= 0. EXACT for every input, including NaN / ±inf /
/// subnormal lanes (lamina's ExpfRef on 8 lanes, IEEE division).
void SiluMulAvx2(float* gate, const float* up, int n);

/// SoftmaxKernel::run, n >= 1. EXACT for inputs without NaN / +inf; with a
/// NaN or +inf input both this and ref give an all-NaN row (payloads may
/// differ).
void SoftmaxAvx2(float* x, int n);

/// HadamardKernel::run, n a power of two (n >= 1). EXACT (same butterflies on
/// the same operands, stage by stage, then * (1 / sqrtf(n))).
void HadamardAvx2(float* x, int n);

/// AttentionKernel::run. EXACT for every head slice [h0, h1), GQA group size,
/// f16 / f32 cache and head_dim in [1, 1024]. Uses scratch rows 0..3 of
/// n_pos floats (kAttentionScratchRows); writes only out[h0*head_dim,
/// h1*head_dim).
void AttentionAvx2(const float* q, const void* k_cache, const void* v_cache, kern::KvType kv_type,
                   size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0,
                   int h1, float* scratch, float* out);

}  // namespace lamina::x86
