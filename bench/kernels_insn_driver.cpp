// lamina_kernels_insn: runs the kernel calls of a Llama-3.2-shaped forward pass
// (one thread, random weights in the packed layouts) so that
// tools/insn-report.sh can count instructions per decode / prefill token under
// QEMU's insncount plugin. Counting is done by differencing two runs that
// differ only in the number of tokens / batches, which cancels start-up,
// allocation and weight filling exactly (the kernels are data-independent).
//
// usage: lamina_kernels_insn [--tier T] [--model 1b|3b] [--decode N | --prefill M --batches B]
//                            [--ctx P] [--ops linears|all] [--q4 f16s|f32] [--kv f32|f16|q8]
//   --decode N     N decode steps (M = 1), each all layers + output layer.
//   --prefill M    batches of M tokens: all layers with GEMM (M rows), then the
//                  output layer for the last token only (as an engine does).
//   --ctx P        attention positions (decode: attends over P; prefill:
//                  causal over P + m). Default 0: no attention.
//   --ops linears  activation quantization + matmuls only (default);
//         all      + rmsnorm, rope, attention, silu_mul (tier's kernels).
//   --q4 f16s      q4g linears in Q4G_R4K8_F16S (f16 scales, lamina-convert's
//                  default; matmul_q4g_f16s), or f32: Q4G_R4K8 (matmul_q4g).
//   --kv T         KV cache type of the attention (default f32); each step
//                  also writes its K / V rows as the engine does.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/kv_q8.h"
#include "loader/format.h"
#include "loader/pack.h"

namespace {

using namespace lamina;

struct Shape {
  int dim, n_layers, n_heads, n_kv_heads, ffn, vocab;
};

struct Aligned {
  std::vector<uint8_t> v;
  uint8_t* p;
  explicit Aligned(size_t n) : v(n + 256) {
    p = v.data() + ((256 - reinterpret_cast<uintptr_t>(v.data()) % 256) % 256);
  }
};

void Fill(uint8_t* p, size_t n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const uint64_t v = (s >> 32) * 0x0101010101010101ull & 0x7f7f7f7f3f3f3f3full;  // finite floats
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; ++i) p[i] = static_cast<uint8_t>(i);
}

// Small finite float data (so scales stay finite): overwrite every float slot
// of a packed block's scale area would need the layout; the kernels' cost does
// not depend on values, so random bytes masked to finite floats suffice.
struct Q4 {
  int N, K;
  Aligned buf;
  Q4(int n, int k, uint64_t seed, bool f16s)
      : N(n), K(k), buf(f16s ? pack::Q4GF16SBytes(n, k) : pack::Q4GBytes(n, k)) {
    Fill(buf.p, f16s ? pack::Q4GF16SBytes(n, k) : pack::Q4GBytes(n, k), seed);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string tier_name, model = "1b", ops = "linears", q4_layout = "f16s", kv_name = "f32";
  int decode = 0, prefill = 0, batches = 1, ctx = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--tier")
      tier_name = next();
    else if (a == "--model")
      model = next();
    else if (a == "--decode")
      decode = std::atoi(next());
    else if (a == "--prefill")
      prefill = std::atoi(next());
    else if (a == "--batches")
      batches = std::atoi(next());
    else if (a == "--ctx")
      ctx = std::atoi(next());
    else if (a == "--ops")
      ops = next();
    else if (a == "--q4")
      q4_layout = next();
    else if (a == "--kv")
      kv_name = next();
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  Shape s{2048, 16, 32, 8, 8192, 128256};
  if (model == "3b") s = {3072, 28, 24, 8, 8192, 128256};
  const bool all_ops = ops == "all";
  kern::KvType kv = kern::KvType::kF32;
  if (kv_name == "f16") {
    kv = kern::KvType::kF16;
  } else if (kv_name == "q8") {
    kv = kern::KvType::kQ8;
  } else if (kv_name != "f32") {
    std::fprintf(stderr, "--kv: expected f32, f16 or q8\n");
    return 2;
  }
  const int head_dim = s.dim / s.n_heads, kv_dim = s.n_kv_heads * head_dim;

  kern::Tier tier;
  char err[256];
  if (!kern::SelectTier(tier_name.empty() ? nullptr : tier_name.c_str(), &tier, err, sizeof err)) {
    std::fprintf(stderr, "%s\n", err);
    return 1;
  }
  const kern::KernelSet& ks = kern::Kernels(tier);
  const bool f16s = q4_layout != "f32";
  std::fprintf(stderr, "tier %s model %s decode %d prefill %d x %d ctx %d ops %s q4 %s kv %s\n",
               kern::TierName(tier), model.c_str(), decode, prefill, batches, ctx, ops.c_str(),
               f16s ? "f16s" : "f32", kv_name.c_str());

  // One layer's weights, reused by every layer (identical instruction count).
  Q4 wq(s.dim, s.dim, 1, f16s), wk(kv_dim, s.dim, 2, f16s), wv(kv_dim, s.dim, 3, f16s),
      wo(s.dim, s.dim, 4, f16s), wg(s.ffn, s.dim, 5, f16s), wu(s.ffn, s.dim, 6, f16s),
      wd(s.dim, s.ffn, 7, f16s);
  Aligned wout(pack::Q8CBytes(s.vocab, s.dim));
  Fill(wout.p, pack::Q8CBytes(s.vocab, s.dim), 8);

  const int M = prefill > 0 ? prefill : 1;
  const int maxk = s.ffn > s.dim ? s.ffn : s.dim;
  std::vector<float> x(static_cast<size_t>(M) * maxk), h(static_cast<size_t>(M) * maxk),
      qkv(static_cast<size_t>(M) * (s.dim + 2 * kv_dim)), g(static_cast<size_t>(M) * s.ffn),
      u(static_cast<size_t>(M) * s.ffn), logits(s.vocab), norm_w(maxk, 1.f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 1000) / 500.f - 1.f;
  Aligned qdata(ks.quantize_acts.data_bytes(M, maxk));
  std::vector<float> qscale(M), qzp(M);
  const int max_pos = ctx + M + 1;
  // KV cache rows as the engine stores them (engine/forward.cpp): f32, f16, or
  // Q8 (kernels/ref/kv_q8.h); each step writes its rows with the engine's
  // conversion, then attends.
  const size_t kv_row = kv == kern::KvType::kQ8    ? ref::KvQ8RowBytes(s.n_kv_heads, head_dim)
                        : kv == kern::KvType::kF16 ? kv_dim * 2u
                                                   : kv_dim * 4u;
  const size_t kv_stride = kv == kern::KvType::kQ8 ? kv_row : static_cast<size_t>(kv_dim);
  std::vector<uint8_t> kc(static_cast<size_t>(max_pos) * kv_row),
      vc(static_cast<size_t>(max_pos) * kv_row);
  auto store_kv = [&](const float* k, const float* v, int pos) {
    uint8_t* kd = kc.data() + static_cast<size_t>(pos) * kv_row;
    uint8_t* vd = vc.data() + static_cast<size_t>(pos) * kv_row;
    if (kv == kern::KvType::kQ8) {
      ref::StoreKvQ8Row(k, s.n_kv_heads, head_dim, kd);
      ref::StoreKvQ8Row(v, s.n_kv_heads, head_dim, vd);
    } else if (kv == kern::KvType::kF16) {
      for (int i = 0; i < kv_dim; ++i) {
        const uint16_t a = F32ToF16(k[i]), b = F32ToF16(v[i]);
        std::memcpy(kd + 2 * i, &a, 2);
        std::memcpy(vd + 2 * i, &b, 2);
      }
    } else {
      std::memcpy(kd, k, kv_row);
      std::memcpy(vd, v, kv_row);
    }
  };
  {
    std::vector<float> k0(kv_dim, 0.01f), v0(kv_dim, 0.02f);
    for (int pos = 0; pos < max_pos; ++pos) store_kv(k0.data(), v0.data(), pos);
  }
  std::vector<float> scratch(static_cast<size_t>(max_pos) * kern::kAttentionScratchRows),
      att(static_cast<size_t>(M) * s.dim), rc(head_dim, 0.5f), rs(head_dim, 0.5f);

  auto quant = [&](const float* src, int rows, int K) -> kern::QActs {
    kern::QActs qa{qdata.p, qscale.data(), qzp.data(), rows, K};
    ks.quantize_acts.run(src, K, 0, rows, &qa);
    return qa;
  };
  auto q4 = [&](const kern::QActs& qa, const Q4& w, float* y, size_t ldy) {
    (f16s ? ks.matmul_q4g_f16s : ks.matmul_q4g).run(qa, w.buf.p, w.N, w.K, 0, w.N, y, ldy);
  };

  const int steps = prefill > 0 ? batches : decode;
  for (int step = 0; step < steps; ++step) {
    for (int l = 0; l < s.n_layers; ++l) {
      if (all_ops)
        for (int m = 0; m < M; ++m)
          ks.rmsnorm.run(h.data() + m * s.dim, x.data() + m * s.dim, norm_w.data(), s.dim, 1e-5f);
      kern::QActs qa = quant(all_ops ? h.data() : x.data(), M, s.dim);
      const size_t ld = s.dim + 2 * kv_dim;
      q4(qa, wq, qkv.data(), ld);
      q4(qa, wk, qkv.data() + s.dim, ld);
      q4(qa, wv, qkv.data() + s.dim + kv_dim, ld);
      if (all_ops && ctx + M > 0) {
        for (int m = 0; m < M; ++m) {
          float* row = qkv.data() + m * ld;
          ks.rope.run(row, s.n_heads, head_dim, rc.data(), rs.data());
          ks.rope.run(row + s.dim, s.n_kv_heads, head_dim, rc.data(), rs.data());
          store_kv(row + s.dim, row + s.dim + kv_dim, ctx + m);
          ks.attention.run(row, kc.data(), vc.data(), kv, kv_stride, ctx + m + 1, s.n_heads,
                           s.n_kv_heads, head_dim, 0, s.n_heads, scratch.data(),
                           att.data() + m * s.dim);
        }
      }
      qa = quant(all_ops ? att.data() : x.data(), M, s.dim);
      q4(qa, wo, h.data(), s.dim);
      qa = quant(x.data(), M, s.dim);
      q4(qa, wg, g.data(), s.ffn);
      q4(qa, wu, u.data(), s.ffn);
      if (all_ops)
        for (int m = 0; m < M; ++m)
          ks.silu_mul.run(g.data() + m * s.ffn, u.data() + m * s.ffn, s.ffn);
      qa = quant(g.data(), M, s.ffn);
      q4(qa, wd, h.data(), s.dim);
    }
    // Output layer: the last token only.
    if (all_ops) ks.rmsnorm.run(h.data(), x.data(), norm_w.data(), s.dim, 1e-5f);
    kern::QActs qa = quant(x.data() + static_cast<size_t>(M - 1) * s.dim, 1, s.dim);
    ks.matmul_q8c.run(qa, wout.p, s.vocab, s.dim, 0, s.vocab, logits.data(), s.vocab);
  }
  float cs = 0;
  for (int i = 0; i < 16; ++i) cs += logits[i] + h[i] + g[i];
  std::printf("checksum %g\n", static_cast<double>(cs));
  return 0;
}
