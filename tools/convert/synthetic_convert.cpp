// Random-weight Llama 3.2-shaped models ("tiny", "tiny-tied", "1b", "3b"),
// generated directly in C++, tensor by tensor. Seeded and deterministic.
//
// q4/q8 schemes on the big presets generate int4/int8 values and scales
// directly in the packed layouts (a 1B file takes seconds); everything else
// (and every tensor whose shape is not a multiple of the block sizes) goes
// through the regular float -> quantizer path.
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/ref/fp16.h"
#include "loader/pack.h"
#include "tokenizer/tokenizer.h"
#include "tools/convert/convert.h"
#include "tools/convert/convert_util.h"

namespace lamina::convert {
namespace {

using format::DType;
using format::Layout;

struct Preset {
  const char* name;
  uint32_t dim, n_layers, n_heads, n_kv_heads, ffn, vocab, max_ctx;
  bool tied;
  bool byte_tokenizer;
  bool direct;  // q4/q8: generate packed int values directly (else float -> quantizer)
};

// "tiny" goes through the float path, so `--weights f32` and `--weights q4`
// with the same seed are the same model (before / after quantization).
// "direct-mini" exercises the direct generator at test size.
constexpr Preset kPresets[] = {
    {"tiny", 64, 2, 4, 2, 160, 258, 2048, false, true, false},
    {"tiny-tied", 64, 2, 4, 2, 160, 258, 2048, true, true, false},
    {"direct-mini", 128, 1, 2, 1, 256, 260, 2048, false, true, true},
    {"1b", 2048, 16, 32, 8, 8192, 128256, 131072, true, false, true},
    {"3b", 3072, 28, 24, 8, 8192, 128256, 131072, true, false, true},
};

uint64_t SplitMix(uint64_t* s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
// Uniform in [-1, 1).
float Uniform(uint64_t* s) {
  return static_cast<float>(SplitMix(s) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

uint64_t TensorSeed(uint64_t seed, uint64_t idx) {
  uint64_t s = seed * 0x2545F4914F6CDD1Dull + idx * 0x9E3779B97F4A7C15ull + 1;
  return SplitMix(&s);
}

// Uniform floats with standard deviation `std` (row-seeded: deterministic
// whatever the chunking).
RowFn FloatRows(uint64_t tseed, uint64_t K, float std) {
  const float a = std * std::sqrt(3.0f);
  return [=](uint64_t r0, uint64_t n, float* out) {
    for (uint64_t r = 0; r < n; ++r) {
      uint64_t s = tseed ^ ((r0 + r) * 0xD1B54A32D192ED03ull);
      for (uint64_t k = 0; k < K; ++k) out[r * K + k] = a * Uniform(&s);
    }
  };
}

// Direct q4g: random nibbles and scales, packed as format.h specifies, in
// `layout` (Q4G_R4K8_F16S: the scales are drawn, then rounded to f16).
bool DirectQ4G(ModelWriter& w, Stats* st, const std::string& name, uint64_t N, uint64_t K,
               Layout layout, uint64_t tseed, float std, std::string* err) {
  // Sum of the two signed nibbles of a byte (thread-safe static init).
  struct PairSum {
    int8_t v[256];
    PairSum() {
      for (int b = 0; b < 256; ++b) {
        const int lo = (b & 15) >= 8 ? (b & 15) - 16 : (b & 15);
        const int hi = (b >> 4) >= 8 ? (b >> 4) - 16 : (b >> 4);
        v[b] = static_cast<int8_t>(lo + hi);
      }
    }
  };
  static const PairSum kPairSum;
  const int8_t* pair_sum = kPairSum.v;
  const bool f16s = layout == Layout::kQ4G_R4K8_F16S;
  const uint64_t G = K / 32, bb = f16s ? format::kQ4F16SBlockBytes(K) : format::kQ4BlockBytes(K);
  const uint64_t gs = f16s ? 64 : 80, corr_off = bb - 16;
  std::vector<uint8_t> out(N / 4 * bb);
  uint64_t s = tseed;
  // Uniform int4 in [-8, 7] has standard deviation ~4.61.
  const float base = std / 4.61f;
  for (uint64_t b = 0; b < N / 4; ++b) {
    uint8_t* blk = out.data() + b * bb;
    float corr[4] = {0, 0, 0, 0};
    for (uint64_t g = 0; g < G; ++g) {
      uint8_t* gp = blk + g * gs;
      for (int j = 0; j < 64; j += 8) {
        const uint64_t r = SplitMix(&s);
        std::memcpy(gp + j, &r, 8);
      }
      const uint64_t rs = SplitMix(&s);
      for (int r = 0; r < 4; ++r) {
        int wsum = 0;
        for (int c = 0; c < 4; ++c)
          for (int i = 0; i < 4; ++i) wsum += pair_sum[gp[16 * c + 4 * r + i]];
        float scale =
            base * (0.75f + 0.5f * static_cast<float>((rs >> (16 * r)) & 0xFFFF) / 65536.0f);
        if (f16s) {
          const uint16_t h = F32ToF16(scale);
          scale = F16ToF32(h);
          std::memcpy(blk + format::kQ4F16SScaleOffset(K) + 8 * g + 2 * r, &h, 2);
        } else {
          std::memcpy(gp + 64 + 4 * r, &scale, 4);
        }
        corr[r] = std::fma(scale, static_cast<float>(wsum), corr[r]);
      }
    }
    std::memcpy(blk + corr_off, corr, 16);
  }
  if (!w.AddTensor(name, DType::kQ4G, layout, {N, K}, 32, 0, out.data(), out.size(), err))
    return false;
  st->Add(name, DType::kQ4G, {N, K});
  return true;
}

// Direct q8c: random int8 in [-127, 127] and per-row scales.
bool DirectQ8C(ModelWriter& w, Stats* st, const std::string& name, uint64_t N, uint64_t K,
               uint64_t tseed, float std, std::string* err) {
  const uint64_t bb = format::kQ8BlockBytes(K);
  std::vector<uint8_t> out(N / 4 * bb);
  uint64_t s = tseed;
  const float base = std / 73.6f;  // uniform int8 std ~73.6
  for (uint64_t b = 0; b < N / 4; ++b) {
    uint8_t* blk = out.data() + b * bb;
    for (uint64_t j = 0; j < K * 4; j += 8) {
      uint64_t r = SplitMix(&s);
      for (int t = 0; t < 8; ++t, r >>= 8) {
        const uint8_t v = static_cast<uint8_t>(r);
        blk[j + t] = v == 0x80 ? 0x81 : v;  // never -128
      }
    }
    int32_t wsum[4] = {0, 0, 0, 0};
    for (uint64_t j = 0; j < K * 4; ++j) wsum[(j % 16) / 4] += static_cast<int8_t>(blk[j]);
    const uint64_t rs = SplitMix(&s);
    for (int r = 0; r < 4; ++r) {
      const float scale =
          base * (0.75f + 0.5f * static_cast<float>((rs >> (16 * r)) & 0xFFFF) / 65536.0f);
      std::memcpy(blk + K * 4 + 4 * r, &scale, 4);
      std::memcpy(blk + K * 4 + 16 + 4 * r, &wsum[r], 4);
    }
  }
  if (!w.AddTensor(name, DType::kQ8C, Layout::kQ8C_R4K4, {N, K}, 0, 0, out.data(), out.size(), err))
    return false;
  st->Add(name, DType::kQ8C, {N, K});
  return true;
}

}  // namespace

bool ConvertSynthetic(const std::string& preset, uint64_t seed, const std::string& out,
                      const ConvertOptions& o, std::string* err) {
  const Preset* p = nullptr;
  for (const auto& c : kPresets)
    if (preset == c.name) p = &c;
  if (!p) {
    *err = "unknown synthetic preset '" + preset +
           "' (expected tiny, tiny-tied, direct-mini, 1b or 3b)";
    return false;
  }
  DType probe;
  if (!TypeFor(Role::kLinear, o, &probe, err)) return false;

  schema::LlamaDims dims;
  dims.dim = p->dim;
  dims.n_layers = p->n_layers;
  dims.n_heads = p->n_heads;
  dims.n_kv_heads = p->n_kv_heads;
  dims.ffn_dim = p->ffn;
  dims.vocab_size = p->vocab;
  dims.max_context = p->max_ctx;
  dims.norm_eps = 1e-5f;
  dims.rope_theta = 500000.f;
  dims.rope_llama3 = true;
  dims.rope_factor = 32.f;
  dims.rope_low_freq_factor = 1.f;
  dims.rope_high_freq_factor = 4.f;
  dims.rope_orig_max_pos = 8192;
  format::HParams hp;
  if (!schema::MakeHParams(dims, &hp, err)) return false;
  if (p->byte_tokenizer) {
    hp.bos_id = 256;
    hp.eos_id = 257;
    hp.n_stop_ids = 1;
    hp.stop_ids[0] = 257;
  } else {  // Llama 3.2 Instruct ids
    hp.bos_id = 128000;
    hp.eos_id = 128009;
    hp.n_stop_ids = 3;
    hp.stop_ids[0] = 128001;
    hp.stop_ids[1] = 128008;
    hp.stop_ids[2] = 128009;
  }

  ModelWriter w;
  if (!w.Open(out, err)) return false;
  if (o.no_tokenizer) {
  } else if (!o.tokenizer_path.empty()) {
    if (!EmbedTokenizerFile(w, o.tokenizer_path, &hp, p->byte_tokenizer ? false : true, err))
      return false;
  } else if (p->byte_tokenizer) {
    auto tok = Tokenizer::Bytes();
    if (!tok) {
      *err = "byte tokenizer unavailable";
      return false;
    }
    w.SetTokenizer(tok->Serialize());
  }
  // Tied presets with different output / embedding types get an "output"
  // tensor drawn from the embedding's seed (two tensors, OutputUntied): the
  // same float values on the float path (direct presets draw packed values).
  const bool untie = p->tied && OutputUntied(o);
  const bool tied = p->tied && !untie;
  w.SetFlags(tied ? static_cast<uint32_t>(format::kFlagTiedEmbeddings) : 0u);
  w.SetScheme("synthetic-" + o.weights);

  Stats st(o.quiet);
  st.Begin(schema::CountTensors(hp, tied));
  uint64_t idx = 0;
  const bool direct = p->direct;
  // Tensors draw their values in schema order, one seed index each; an
  // untied output layer reuses the embedding's (index 0). Matrices are
  // uniform with standard deviation 1/sqrt(K), norms 1 + 0.1 U(-1, 1).
  const bool ok = schema::ForEachTensor(hp, tied, [&](const schema::TensorRef& r) {
    const bool reuse = untie && r.spec->id == schema::TensorId::kOutput;
    const uint64_t ts = TensorSeed(seed, reuse ? 0 : idx++);
    if (r.spec->role == Role::kNorm) {
      uint64_t s = ts;
      std::vector<float> v(r.rows());
      for (auto& x : v) x = 1.0f + 0.1f * Uniform(&s);
      return EmitVector(w, &st, r.name, v.data(), v.size(), err);
    }
    const uint64_t N = r.rows(), K = r.cols();
    const float sdev = 1.0f / std::sqrt(static_cast<float>(K));
    DType dt;
    if (!TypeFor(r.spec->role, o, &dt, err)) return false;
    if (direct && N % 4 == 0 && K % 32 == 0) {
      if (dt == DType::kQ4G) return DirectQ4G(w, &st, r.name, N, K, Q4Layout(o), ts, sdev, err);
      if (dt == DType::kQ8C) return DirectQ8C(w, &st, r.name, N, K, ts, sdev, err);
    }
    return EmitMatrix(w, &st, r.name, r.spec->role, N, K, FloatRows(ts, K, sdev), o, err);
  });
  if (!ok) return false;
  w.SetHParams(hp);
  if (!w.Finish(err)) return false;
  st.Summary(out, w.bytes_written());
  return true;
}

}  // namespace lamina::convert
