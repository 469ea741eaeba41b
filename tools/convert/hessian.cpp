// HessianAccumulator (hessian.h).
#include "tools/convert/hessian.h"

#include <algorithm>
#include <atomic>

#include "loader/format.h"

namespace lamina::convert {
namespace {

// Rows of H per work item. Why 32: one item's f32 sums (32 x K, 1 MiB for
// K = 8192) stay in L2 while they are added into the double H; the rows of the
// lower triangle make items of growing cost, handed out largest first so two
// threads end together.
constexpr int kPanelRows = 32;

}  // namespace

HessianAccumulator::HessianAccumulator(int K, const kern::KernelSet& ks)
    : K_(K), ks_(ks), h_(static_cast<size_t>(K) * K, 0.0) {}

void HessianAccumulator::Add(const float* x, int M, engine::ThreadPool& pool) {
  const size_t K = static_cast<size_t>(K_);
  if (xt_.size() < K * M) xt_.resize(K * M);
  // X^T: row k holds feature k of the M tokens, the kernel's contiguous dot.
  // In 16 x 16 tiles (a plain loop's strided stores cost 7x more).
  const size_t Ms = static_cast<size_t>(M);
  for (size_t m0 = 0; m0 < Ms; m0 += 16)
    for (size_t k0 = 0; k0 < K; k0 += 16) {
      const size_t m1 = std::min(Ms, m0 + 16), k1 = std::min(K, k0 + 16);
      for (size_t m = m0; m < m1; ++m)
        for (size_t k = k0; k < k1; ++k) xt_[k * Ms + m] = x[m * K + k];
    }
  const int nt = pool.size();
  if (nt > max_threads_) {
    tile_.resize(static_cast<size_t>(nt) * kPanelRows * K);
    max_threads_ = nt;
  }
  const int n_panels = (K_ + kPanelRows - 1) / kPanelRows;
  std::atomic<int> next{0};
  auto job = [&](int tid, int) {
    float* t = tile_.data() + static_cast<size_t>(tid) * kPanelRows * K;
    for (;;) {
      const int p = n_panels - 1 - next.fetch_add(1, std::memory_order_relaxed);
      if (p < 0) break;
      const int r0 = p * kPanelRows, r1 = std::min(K_, r0 + kPanelRows);
      // t[r - r0][c] = X(:, r) . X(:, c) for c in [0, r1): the panel's part of
      // the lower triangle (and the few upper values of its diagonal block).
      ks_.matmul_float.run(xt_.data() + static_cast<size_t>(r0) * M, static_cast<size_t>(M),
                           r1 - r0, xt_.data(), static_cast<int>(format::DType::kF32), K_, M, 0, r1,
                           t, K);
      for (int r = r0; r < r1; ++r) {
        double* hr = h_.data() + static_cast<size_t>(r) * K;
        const float* tr = t + static_cast<size_t>(r - r0) * K;
        for (int c = 0; c <= r; ++c) hr[c] += static_cast<double>(tr[c]);
      }
    }
  };
  pool.RunF(job);
}

}  // namespace lamina::convert
