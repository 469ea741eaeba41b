// lamina-convert's q4 quantizers (tools/convert/quantize.h): weights per
// second of RTN and of the scale search, on a [256 x 2048] Gaussian matrix.
// The 1B-shaped model has 973 M linear weights (docs/QUALITY.md).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "tools/convert/quantize.h"

namespace {

void BM_QuantizeRowsQ4(benchmark::State& state) {
  const uint64_t N = 256, K = 2048;
  std::vector<float> w(N * K);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 0.02f);
  for (auto& x : w) x = nd(rng);
  std::vector<int8_t> q(N * K);
  std::vector<float> sc(N * K / 32);
  const auto m =
      state.range(0) ? lamina::convert::Q4Method::kSearch : lamina::convert::Q4Method::kRtn;
  for (auto _ : state) {
    lamina::convert::QuantizeRowsQ4(m, nullptr, "w", 0, N, K, w.data(), q.data(), sc.data());
    benchmark::DoNotOptimize(q.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * N * K));
  state.SetLabel(state.range(0) ? "search" : "rtn");
}
BENCHMARK(BM_QuantizeRowsQ4)->Arg(0)->Arg(1);

}  // namespace
