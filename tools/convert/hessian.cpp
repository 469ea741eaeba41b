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
  for (int m = 0; m < M; ++m) {
    const float* xr = x + static_cast<size_t>(m) * K;
    for (size_t k = 0; k < K; ++k) xt_[k * M + m] = xr[k];
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
