// Google Benchmark: the x86-64 element-wise and attention ops
// (kernels/x86/x86_ops.h) against kernels/ref at the Llama 3.2 1B shapes
// (dim 2048, 32 heads / 8 KV heads of 64, ffn 8192) and 3B (dim 3072, 24
// heads / 8 KV heads of 128). Names:
// x86_ops/<op>/<ref|avx2>/<shape>. Registered only on a CPU with AVX2 + FMA +
// F16C. Filter with --benchmark_filter=x86_ops/.
#if defined(__x86_64__)

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/ref.h"
#include "kernels/x86/x86_ops.h"

namespace {

using namespace lamina;

struct Ops {
  const char* name;
  decltype(&ref::RmsNorm) rmsnorm;
  decltype(&ref::SiluMul) silu_mul;
  decltype(&ref::Softmax) softmax;
  decltype(&ref::Hadamard) hadamard;
  decltype(&ref::Rope) rope;
  decltype(&ref::Attention) attention;
  decltype(&ref::MatmulFloat) matmul_float;
};
const Ops kRef{"ref",         ref::RmsNorm, ref::SiluMul,   ref::Softmax,
               ref::Hadamard, ref::Rope,    ref::Attention, ref::MatmulFloat};
const Ops kAvx2{
    "avx2",        x86::RmsNormAvx2,   x86::SiluMulAvx2,    x86::SoftmaxAvx2, x86::HadamardAvx2,
    x86::RopeAvx2, x86::AttentionAvx2, x86::MatmulFloatAvx2};

/// Deterministic values in [-1, 1).
std::vector<float> Vals(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    x = static_cast<float>(s >> 8) / 8388608.f - 1.f;
  }
  return v;
}

void BenchRmsNorm(benchmark::State& st, const Ops* o, int n) {
  const std::vector<float> x = Vals(n, 1), w = Vals(n, 2);
  std::vector<float> y(n);
  for (auto _ : st) {
    o->rmsnorm(y.data(), x.data(), w.data(), n, 1e-5f);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * n);
}

void BenchSiluMul(benchmark::State& st, const Ops* o, int n) {
  const std::vector<float> g0 = Vals(n, 3), u = Vals(n, 4);
  std::vector<float> g = g0;
  for (auto _ : st) {
    o->silu_mul(g.data(), u.data(), n);  // values shrink, stay finite: same cost
    benchmark::DoNotOptimize(g.data());
  }
  st.SetItemsProcessed(st.iterations() * n);
}

void BenchSoftmax(benchmark::State& st, const Ops* o, int n) {
  std::vector<float> x0 = Vals(n, 5);
  for (auto& v : x0) v *= 8.f;
  std::vector<float> x(n);
  for (auto _ : st) {
    x = x0;
    o->softmax(x.data(), n);
    benchmark::DoNotOptimize(x.data());
  }
  st.SetItemsProcessed(st.iterations() * n);
}

void BenchHadamard(benchmark::State& st, const Ops* o, int n) {
  std::vector<float> x = Vals(n, 6);
  for (auto _ : st) {
    o->hadamard(x.data(), n);  // orthonormal: magnitudes stay put
    benchmark::DoNotOptimize(x.data());
  }
  st.SetItemsProcessed(st.iterations() * n);
}

void BenchRope(benchmark::State& st, const Ops* o, int n_heads, int head_dim) {
  std::vector<float> x = Vals(static_cast<size_t>(n_heads) * head_dim, 7);
  std::vector<float> c(head_dim / 2), s(head_dim / 2);
  for (int j = 0; j < head_dim / 2; ++j) c[j] = std::cos(0.1f * j), s[j] = std::sin(0.1f * j);
  for (auto _ : st) {
    o->rope(x.data(), n_heads, head_dim, c.data(), s.data());  // a rotation: stays bounded
    benchmark::DoNotOptimize(x.data());
  }
}

/// One decode token's attention over n_pos cached positions, all heads.
void BenchAttention(benchmark::State& st, const Ops* o, bool f16, int n_pos, int n_heads, int hd) {
  const int n_kv = 8;
  const size_t stride = static_cast<size_t>(n_kv) * hd;
  const std::vector<float> q = Vals(static_cast<size_t>(n_heads) * hd, 8);
  const std::vector<float> kf = Vals(n_pos * stride, 9), vf = Vals(n_pos * stride, 10);
  std::vector<uint16_t> kh(kf.size()), vh(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) kh[i] = F32ToF16(kf[i]), vh[i] = F32ToF16(vf[i]);
  const void* kc = f16 ? static_cast<const void*>(kh.data()) : kf.data();
  const void* vc = f16 ? static_cast<const void*>(vh.data()) : vf.data();
  std::vector<float> scratch(static_cast<size_t>(kern::kAttentionScratchRows) * n_pos),
      out(static_cast<size_t>(n_heads) * hd);
  const kern::KvType kt = f16 ? kern::KvType::kF16 : kern::KvType::kF32;
  for (auto _ : st) {
    o->attention(q.data(), kc, vc, kt, stride, n_pos, n_heads, n_kv, hd, 0, n_heads, scratch.data(),
                 out.data());
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["head_pos/s"] = benchmark::Counter(
      static_cast<double>(n_heads) * n_pos * st.iterations(), benchmark::Counter::kIsRate);
}

void BenchMatmulFloat(benchmark::State& st, const Ops* o, int wtype, int N, int K, int M) {
  const std::vector<float> wf = Vals(static_cast<size_t>(N) * K, 11);
  std::vector<uint16_t> w16(wtype == 0 ? 0 : wf.size());
  for (size_t i = 0; i < w16.size(); ++i) w16[i] = wtype == 1 ? F32ToF16(wf[i]) : F32ToBF16(wf[i]);
  const void* w = wtype == 0 ? static_cast<const void*>(wf.data()) : w16.data();
  const std::vector<float> x = Vals(static_cast<size_t>(M) * K, 12);
  std::vector<float> y(static_cast<size_t>(M) * N);
  for (auto _ : st) {
    o->matmul_float(x.data(), K, M, w, wtype, N, K, 0, N, y.data(), N);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["weights/s"] = benchmark::Counter(static_cast<double>(N) * K * M * st.iterations(),
                                                benchmark::Counter::kIsRate);
}

const bool kRegistered = [] {
  const kern::CpuFeatures& f = kern::DetectCpu();
  if (!(f.avx2 && f.fma && f.f16c)) return false;
  for (const Ops* o : {&kRef, &kAvx2}) {
    const std::string p = std::string("x86_ops/");
    const std::string t = std::string("/") + o->name + "/";
    auto reg = [](const std::string& name, auto fn, auto... args) {
      benchmark::RegisterBenchmark(name.c_str(), fn, args...)->Unit(benchmark::kMicrosecond);
    };
    reg(p + "rmsnorm" + t + "1b/n:2048", BenchRmsNorm, o, 2048);
    reg(p + "rmsnorm" + t + "3b/n:3072", BenchRmsNorm, o, 3072);
    reg(p + "silu_mul" + t + "1b/n:8192", BenchSiluMul, o, 8192);
    for (int n : {128, 1024, 4096})
      reg(p + "softmax" + t + "n:" + std::to_string(n), BenchSoftmax, o, n);
    reg(p + "hadamard" + t + "1b/n:8192", BenchHadamard, o, 8192);
    reg(p + "rope" + t + "1b/q:32x64", BenchRope, o, 32, 64);
    for (bool f16 : {true, false})
      for (int n_pos : {128, 1024, 4096})
        reg(p + "attention" + t + "1b/" + (f16 ? "f16" : "f32") + "/n_pos:" + std::to_string(n_pos),
            BenchAttention, o, f16, n_pos, 32, 64);
    reg(p + "attention" + t + "3b/f16/n_pos:1024", BenchAttention, o, true, 1024, 24, 128);
    const char* wn[] = {"f32", "f16", "bf16"};
    for (int wt : {0, 1, 2})
      for (int M : {1, 32}) {
        if (o == &kRef && M > 1 && wt != 2) continue;  // scalar: keep it short
        reg(p + "matmul_float" + t + "1b/" + wn[wt] + "/attn_q/M:" + std::to_string(M),
            BenchMatmulFloat, o, wt, 2048, 2048, M);
      }
    reg(p + "matmul_float" + t + "3b/bf16/attn_q/M:1", BenchMatmulFloat, o, 2, 3072, 3072, 1);
    // LoRA rank 16: down-projection A [16, 2048], up-projection B [2048, 16].
    for (int M : {1, 32}) {
      reg(p + "matmul_float" + t + "1b/f32/lora_a_r16/M:" + std::to_string(M), BenchMatmulFloat, o,
          0, 16, 2048, M);
      reg(p + "matmul_float" + t + "1b/f32/lora_b_r16/M:" + std::to_string(M), BenchMatmulFloat, o,
          0, 2048, 16, M);
    }
  }
  return true;
}();

}  // namespace

#endif  // defined(__x86_64__)
