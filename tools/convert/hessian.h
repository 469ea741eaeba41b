// GPTQ's Hessian H = sum over calibration tokens of x x^T (lamina-convert
// --calib), accumulated from chunks of token rows.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/thread_pool.h"
#include "kernels/kernels.h"

namespace lamina::convert {

/// H [K][K] (row-major double, lower triangle and diagonal; the strict upper
/// triangle stays 0) += X^T X for each chunk X [M][K] of f32 token rows.
/// Why float products: a chunk's sums over its M tokens run on the engine's
/// float matmul kernel (the best tier's SIMD, in kernels/ref's exact order),
/// several times faster than double; each chunk's sums are then added in
/// double, so rounding does not grow with the token count. The result does
/// not depend on the thread count nor on the kernel tier (every tier is
/// bit-exact to kernels/ref), only on the chunking.
class HessianAccumulator {
 public:
  /// K >= 1. `ks` must outlive the accumulator.
  HessianAccumulator(int K, const kern::KernelSet& ks);
  int K() const { return K_; }
  /// Adds X^T X for x [M][K] (row stride K), M >= 1, split across `pool`'s
  /// threads. Allocates only when M grows past the largest chunk seen.
  void Add(const float* x, int M, engine::ThreadPool& pool);
  /// H, K x K row-major (lower triangle and diagonal).
  std::vector<double>& H() { return h_; }

 private:
  int K_;
  const kern::KernelSet& ks_;
  std::vector<double> h_;
  std::vector<float> xt_;    // X^T [K][M]
  std::vector<float> tile_;  // per thread: kPanelRows x K f32 sums
  int max_threads_ = 0;
};

}  // namespace lamina::convert
