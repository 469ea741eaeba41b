// Google Benchmark microbenchmarks of the kernels, every available tier, at the
// Llama 3.2 1B and 3B linear shapes (decode M = 1 and prefill M = 32).
// Names: <op>/<tier>/<model>/<matrix>/M:<m>. Weights are random bytes in the
// packed layouts (costs are data-independent). Filter with --benchmark_filter.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "loader/pack.h"

namespace {

using namespace lamina;

struct Model {
  const char* name;
  int dim, n_heads, n_kv_heads, ffn, vocab;
};
constexpr Model kModels[] = {{"1b", 2048, 32, 8, 8192, 128256}, {"3b", 3072, 24, 8, 8192, 128256}};
constexpr kern::Tier kTiers[] = {kern::Tier::kRef,     kern::Tier::kNeon,      kern::Tier::kDotprod,
                                 kern::Tier::kI8mm,    kern::Tier::kSve,       kern::Tier::kAvx2,
                                 kern::Tier::kAvxVnni, kern::Tier::kAvx512Vnni};

// Which packed matrix a benchmark multiplies.
enum class QKind { kQ4G, kQ4GF16S, kQ8C };

struct AlignedBytes {
  std::unique_ptr<uint8_t[]> mem;
  uint8_t* p;
  explicit AlignedBytes(size_t n) : mem(new uint8_t[n + 256]) {
    p = mem.get() + ((256 - reinterpret_cast<uintptr_t>(mem.get()) % 256) % 256);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < n; i += 8) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      const uint64_t v = s & 0x3f3f3f3f3f3f3f3full;  // finite floats in scale slots
      std::memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
  }
};

std::vector<float> Acts(int M, int K) {
  std::vector<float> x(static_cast<size_t>(M) * K);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 2001) / 1000.f - 1.f;
  return x;
}

void BenchQ(benchmark::State& st, kern::Tier tier, QKind kind, int N, int K, int M) {
  const kern::KernelSet& ks = kern::Kernels(tier);
  const bool q8 = kind == QKind::kQ8C;
  AlignedBytes w(q8                        ? pack::Q8CBytes(N, K)
                 : kind == QKind::kQ4GF16S ? pack::Q4GF16SBytes(N, K)
                                           : pack::Q4GBytes(N, K));
  const std::vector<float> x = Acts(M, K);
  AlignedBytes qd(ks.quantize_acts.data_bytes(M, K));
  std::vector<float> sc(M), zp(M), y(static_cast<size_t>(M) * N);
  kern::QActs qa{qd.p, sc.data(), zp.data(), M, K};
  ks.quantize_acts.run(x.data(), K, 0, M, &qa);
  for (auto _ : st) {
    if (q8)
      ks.matmul_q8c.run(qa, w.p, N, K, 0, N, y.data(), N);
    else if (kind == QKind::kQ4GF16S)
      ks.matmul_q4g_f16s.run(qa, w.p, N, K, 0, N, y.data(), N);
    else
      ks.matmul_q4g.run(qa, w.p, N, K, 0, N, y.data(), N);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.counters["weights/s"] = benchmark::Counter(static_cast<double>(N) * K * M * st.iterations(),
                                                benchmark::Counter::kIsRate);
  // Bytes of packed weights streamed per second (decode is bound by this).
  st.counters["wbytes/s"] =
      benchmark::Counter(static_cast<double>(q8                        ? pack::Q8CBytes(N, K)
                                             : kind == QKind::kQ4GF16S ? pack::Q4GF16SBytes(N, K)
                                                                       : pack::Q4GBytes(N, K)) *
                             st.iterations(),
                         benchmark::Counter::kIsRate);
}

void BenchQuant(benchmark::State& st, kern::Tier tier, int K, int M) {
  const kern::KernelSet& ks = kern::Kernels(tier);
  const std::vector<float> x = Acts(M, K);
  AlignedBytes qd(ks.quantize_acts.data_bytes(M, K));
  std::vector<float> sc(M), zp(M);
  kern::QActs qa{qd.p, sc.data(), zp.data(), M, K};
  for (auto _ : st) {
    ks.quantize_acts.run(x.data(), K, 0, M, &qa);
    benchmark::ClobberMemory();
  }
}

void BenchFloat(benchmark::State& st, kern::Tier tier, int wtype, int N, int K) {
  const kern::KernelSet& ks = kern::Kernels(tier);
  AlignedBytes w(static_cast<size_t>(N) * K * (wtype == 0 ? 4 : 2));
  const std::vector<float> x = Acts(1, K);
  std::vector<float> y(N);
  for (auto _ : st) {
    ks.matmul_float.run(x.data(), K, 1, w.p, wtype, N, K, 0, N, y.data(), N);
    benchmark::DoNotOptimize(y.data());
  }
}

const bool kRegistered = [] {
  for (kern::Tier t : kTiers) {
    if (!kern::TierAvailable(t)) continue;
    const std::string tn = kern::TierName(t);
    for (const Model& m : kModels) {
      const int hd = m.dim / m.n_heads, kv = m.n_kv_heads * hd;
      struct Mat {
        const char* name;
        QKind kind;
        int N, K;
      };
      const Mat mats[] = {
          {"attn_q", QKind::kQ4G, m.dim, m.dim},       {"attn_kv", QKind::kQ4G, kv, m.dim},
          {"ffn_gate", QKind::kQ4G, m.ffn, m.dim},     {"ffn_down", QKind::kQ4G, m.dim, m.ffn},
          {"ffn_gate", QKind::kQ4GF16S, m.ffn, m.dim}, {"ffn_down", QKind::kQ4GF16S, m.dim, m.ffn},
          {"output_q8c", QKind::kQ8C, m.vocab, m.dim}};
      for (const Mat& mt : mats)
        for (int M : {1, 32}) {
          const bool q8 = mt.kind == QKind::kQ8C;
          if (t == kern::Tier::kRef && (M > 1 || q8)) continue;  // scalar: keep it short
          const char* op = q8                           ? "matmul_q8c/"
                           : mt.kind == QKind::kQ4GF16S ? "matmul_q4g_f16s/"
                                                        : "matmul_q4g/";
          const std::string name =
              std::string(op) + tn + "/" + m.name + "/" + mt.name + "/M:" + std::to_string(M);
          benchmark::RegisterBenchmark(name.c_str(), BenchQ, t, mt.kind, mt.N, mt.K, M)
              ->Unit(benchmark::kMicrosecond);
        }
      for (int M : {1, 32})
        benchmark::RegisterBenchmark(
            ("quantize_acts/" + tn + "/" + m.name + "/M:" + std::to_string(M)).c_str(), BenchQuant,
            t, m.dim, M)
            ->Unit(benchmark::kMicrosecond);
      for (int wt : {0, 2})
        benchmark::RegisterBenchmark(
            ("matmul_float/" + tn + "/" + m.name + "/" + (wt == 0 ? "f32" : "bf16") + "/attn_q/M:1")
                .c_str(),
            BenchFloat, t, wt, m.dim, m.dim)
            ->Unit(benchmark::kMicrosecond);
    }
  }
  return true;
}();

}  // namespace
