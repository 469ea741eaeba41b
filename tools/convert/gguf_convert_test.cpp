// GGUF -> lamina: stories260K.gguf against the llama2.c .bin of the same model
// (tensor by tensor and greedy text), exact Q4_0 -> q4g mapping, Q8_0
// re-quantization bound, llama3 RoPE detection from rope_freqs, and clean
// errors on damaged files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/ref/fp16.h"
#include "lamina/lamina.h"
#include "loader/format.h"
#include "loader/model_file.h"
#include "loader/pack.h"
#include "tests/testutil.h"
#include "tools/convert/convert.h"
#include "tools/convert/gguf_reader.h"
#include "tools/convert/meta_test_util.h"
#include "tools/import/json.h"

namespace lamina {
namespace {

// ------------------------------------------------------------ a GGUF writer
class GgufWriter {
 public:
  void Str(const std::string& key, const std::string& v) {
    Key(key, 8);
    PutStr(&kv_, v);
    ++n_kv_;
  }
  void U32(const std::string& key, uint32_t v) {
    Key(key, 4);
    Put(&kv_, v);
    ++n_kv_;
  }
  void F32(const std::string& key, float v) {
    Key(key, 6);
    Put(&kv_, v);
    ++n_kv_;
  }
  void I32Array(const std::string& key, const std::vector<int32_t>& v) {
    Key(key, 9);
    Put(&kv_, uint32_t{5});
    Put(&kv_, static_cast<uint64_t>(v.size()));
    for (int32_t x : v) Put(&kv_, x);
    ++n_kv_;
  }
  /// An array of `n` u8 elements, all `fill`.
  void U8Array(const std::string& key, uint64_t n, uint8_t fill = 0) {
    Key(key, 9);
    Put(&kv_, uint32_t{0});
    Put(&kv_, n);
    kv_.insert(kv_.end(), n, fill);
    ++n_kv_;
  }
  void StrArray(const std::string& key, const std::vector<std::string>& v) {
    Key(key, 9);
    Put(&kv_, uint32_t{8});
    Put(&kv_, static_cast<uint64_t>(v.size()));
    for (const auto& s : v) PutStr(&kv_, s);
    ++n_kv_;
  }
  /// dims in PyTorch order ([N, K]); data already in the ggml type's layout.
  void Tensor(const std::string& name, std::vector<uint64_t> pt_dims, uint32_t type,
              const std::vector<uint8_t>& data) {
    PutStr(&ti_, name);
    Put(&ti_, static_cast<uint32_t>(pt_dims.size()));
    for (size_t i = pt_dims.size(); i-- > 0;) Put(&ti_, pt_dims[i]);
    Put(&ti_, type);
    while (data_.size() % 32) data_.push_back(0);
    Put(&ti_, static_cast<uint64_t>(data_.size()));
    data_.insert(data_.end(), data.begin(), data.end());
    ++n_t_;
  }
  std::vector<uint8_t> Bytes(uint32_t version = 3) const {
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
    Put(&out, version);
    Put(&out, n_t_);
    Put(&out, n_kv_);
    out.insert(out.end(), kv_.begin(), kv_.end());
    out.insert(out.end(), ti_.begin(), ti_.end());
    while (out.size() % 32) out.push_back(0);
    out.insert(out.end(), data_.begin(), data_.end());
    return out;
  }

 private:
  template <typename T>
  static void Put(std::vector<uint8_t>* o, T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    o->insert(o->end(), p, p + sizeof(T));
  }
  static void PutStr(std::vector<uint8_t>* o, const std::string& s) {
    Put(o, static_cast<uint64_t>(s.size()));
    o->insert(o->end(), s.begin(), s.end());
  }
  void Key(const std::string& k, uint32_t type) {
    PutStr(&kv_, k);
    Put(&kv_, type);
  }
  std::vector<uint8_t> kv_, ti_, data_;
  uint64_t n_kv_ = 0, n_t_ = 0;
};

struct Synth {
  int dim = 64, heads = 4, kv = 2, ffn = 96, vocab = 70, layers = 1;
};

std::vector<uint8_t> F32Bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Random Q4_0 blocks for an [N, K] matrix (f16 d, nibbles as llama.cpp lays them).
std::vector<uint8_t> RandQ4_0(int N, int K, std::mt19937* rng) {
  std::vector<uint8_t> b(static_cast<size_t>(N) * K / 32 * 18);
  std::uniform_real_distribution<float> ud(0.001f, 0.05f);
  for (size_t blk = 0; blk < b.size() / 18; ++blk) {
    const uint16_t d = F32ToF16(ud(*rng));
    std::memcpy(&b[blk * 18], &d, 2);
    for (int j = 0; j < 16; ++j) b[blk * 18 + 2 + j] = static_cast<uint8_t>((*rng)());
  }
  return b;
}

std::vector<uint8_t> RandQ8_0(int N, int K, std::mt19937* rng) {
  std::vector<uint8_t> b(static_cast<size_t>(N) * K / 32 * 34);
  std::uniform_real_distribution<float> ud(0.001f, 0.02f);
  for (size_t blk = 0; blk < b.size() / 34; ++blk) {
    const uint16_t d = F32ToF16(ud(*rng));
    std::memcpy(&b[blk * 34], &d, 2);
    for (int j = 0; j < 32; ++j) b[blk * 34 + 2 + j] = static_cast<uint8_t>((*rng)() % 255 + 1);
  }
  return b;
}

std::vector<uint8_t> Rand16(int n, bool bf16, std::mt19937* rng) {
  std::normal_distribution<float> nd(0.f, 0.1f);
  std::vector<uint8_t> b(static_cast<size_t>(n) * 2);
  for (int i = 0; i < n; ++i) {
    const uint16_t h = bf16 ? F32ToBF16(nd(*rng)) : F32ToF16(nd(*rng));
    std::memcpy(&b[2 * i], &h, 2);
  }
  return b;
}

// Value (n, k) of a GGUF matrix, dequantized exactly as ggml does.
float GgufValue(uint32_t type, const std::vector<uint8_t>& d, int K, int n, int k) {
  const size_t i = static_cast<size_t>(n) * K + k;
  uint16_t h;
  switch (type) {
    case gguf::kGgmlF32: {
      float f;
      std::memcpy(&f, &d[4 * i], 4);
      return f;
    }
    case gguf::kGgmlF16:
      std::memcpy(&h, &d[2 * i], 2);
      return F16ToF32(h);
    case gguf::kGgmlBF16:
      std::memcpy(&h, &d[2 * i], 2);
      return BF16ToF32(h);
    case gguf::kGgmlQ4_0: {
      const uint8_t* b = &d[i / 32 * 18];
      std::memcpy(&h, b, 2);
      const int j = static_cast<int>(i % 32);
      const int q = j < 16 ? (b[2 + j] & 0xF) - 8 : (b[2 + j - 16] >> 4) - 8;
      return static_cast<float>(q) * F16ToF32(h);
    }
    case gguf::kGgmlQ8_0: {
      const uint8_t* b = &d[i / 32 * 34];
      std::memcpy(&h, b, 2);
      return static_cast<float>(static_cast<int8_t>(b[2 + i % 32])) * F16ToF32(h);
    }
  }
  return NAN;
}

struct SynthModel {
  std::vector<uint8_t> bytes;
  struct T {
    std::string name;  // lamina name
    uint32_t type;
    int N, K;
    std::vector<uint8_t> data;
  };
  std::vector<T> mats;
};

// A llama3-shaped GGUF: Q8_0 embedding/output, Q4_0 linears except one F16,
// one BF16 and one Q8_0 linear, F32 norms, rope_freqs for llama3 scaling.
SynthModel MakeSynth(const Synth& s, uint32_t seed, bool with_rope_freqs = true,
                     bool with_output = true) {
  std::mt19937 rng(seed);
  GgufWriter w;
  w.Str("general.architecture", "llama");
  w.Str("general.name", "synthetic");
  w.U32("llama.embedding_length", s.dim);
  w.U32("llama.block_count", s.layers);
  w.U32("llama.feed_forward_length", s.ffn);
  w.U32("llama.attention.head_count", s.heads);
  w.U32("llama.attention.head_count_kv", s.kv);
  w.U32("llama.context_length", 131072);
  w.U32("llama.rope.dimension_count", s.dim / s.heads);
  w.F32("llama.rope.freq_base", 500000.f);
  w.F32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  SynthModel m;
  auto mat = [&](const std::string& gname, const std::string& name, int N, int K, uint32_t type) {
    std::vector<uint8_t> d = type == gguf::kGgmlQ4_0 ? RandQ4_0(N, K, &rng)
                             : type == gguf::kGgmlQ8_0
                                 ? RandQ8_0(N, K, &rng)
                                 : Rand16(N * K, type == gguf::kGgmlBF16, &rng);
    w.Tensor(gname, {static_cast<uint64_t>(N), static_cast<uint64_t>(K)}, type, d);
    m.mats.push_back({name, type, N, K, std::move(d)});
  };
  auto norm = [&](const std::string& gname) {
    std::vector<float> v(s.dim);
    for (auto& x : v) x = 1.f + 0.01f * static_cast<float>(rng() % 100);
    w.Tensor(gname, {static_cast<uint64_t>(s.dim)}, gguf::kGgmlF32, F32Bytes(v));
  };
  mat("token_embd.weight", "tok_embd", s.vocab, s.dim, gguf::kGgmlQ8_0);
  if (with_output) mat("output.weight", "output", s.vocab, s.dim, gguf::kGgmlQ8_0);
  norm("output_norm.weight");
  if (with_rope_freqs) {  // llama.cpp's generate_extra_tensors for llama3 scaling
    const int hd = s.dim / s.heads;
    std::vector<float> f;
    for (int i = 0; i < hd; i += 2) {
      const double freq = 1.0 / std::pow(500000.0, static_cast<double>(i) / hd);
      const double wl = 2 * M_PI / freq;
      if (wl < 8192.0 / 4)
        f.push_back(1.f);
      else if (wl > 8192.0)
        f.push_back(32.f);
      else {
        const double sm = (8192.0 / wl - 1) / 3;
        f.push_back(static_cast<float>(1 / ((1 - sm) / 32 + sm)));
      }
    }
    w.Tensor("rope_freqs.weight", {static_cast<uint64_t>(hd / 2)}, gguf::kGgmlF32, F32Bytes(f));
  }
  const int hd = s.dim / s.heads;
  for (int i = 0; i < s.layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    norm(b + "attn_norm.weight");
    norm(b + "ffn_norm.weight");
    mat(b + "attn_q.weight", b + "attn_q", s.heads * hd, s.dim, gguf::kGgmlQ4_0);
    mat(b + "attn_k.weight", b + "attn_k", s.kv * hd, s.dim, gguf::kGgmlF16);
    mat(b + "attn_v.weight", b + "attn_v", s.kv * hd, s.dim, gguf::kGgmlBF16);
    mat(b + "attn_output.weight", b + "attn_output", s.dim, s.heads * hd, gguf::kGgmlQ8_0);
    mat(b + "ffn_gate.weight", b + "ffn_gate", s.ffn, s.dim, gguf::kGgmlQ4_0);
    mat(b + "ffn_up.weight", b + "ffn_up", s.ffn, s.dim, gguf::kGgmlQ4_0);
    mat(b + "ffn_down.weight", b + "ffn_down", s.dim, s.ffn, gguf::kGgmlQ4_0);
  }
  m.bytes = w.Bytes();
  return m;
}

bool Convert(const std::string& in, const std::string& out, const std::string& weights,
             std::string* err) {
  convert::ConvertOptions o;
  o.quiet = true;
  o.weights = weights;
  // Re-quantized tensors are checked against RTN's bound (half a step).
  o.q4_method = convert::Q4Method::kRtn;
  return convert::ConvertGguf(in, out, o, err);
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(GgufConvert, Q4_0MapsExactlyOntoQ4gAndOthersFollowTheScheme) {
  const std::string dir = test::TestDataDir("gguf");
  const SynthModel m = MakeSynth(Synth{}, 7);
  test::WriteFileBytes(dir + "/synth.gguf", m.bytes);
  std::string err;
  ASSERT_TRUE(Convert(dir + "/synth.gguf", dir + "/synth_q4.lamina", "q4", &err)) << err;
  auto mf = ModelFile::Open(dir + "/synth_q4.lamina", {}, &err);
  ASSERT_NE(mf, nullptr) << err;
  const auto& hp = mf->hparams();
  EXPECT_EQ(hp.dim, 64u);
  EXPECT_EQ(hp.ffn_dim, 96u);
  EXPECT_EQ(hp.n_kv_heads, 2u);
  EXPECT_EQ(hp.vocab_size, 70u);
  EXPECT_EQ(hp.rope_theta, 500000.f);
  EXPECT_EQ(hp.rope_scaling, static_cast<uint32_t>(format::RopeScaling::kLlama3));
  EXPECT_EQ(hp.rope_factor, 32.f);
  EXPECT_EQ(hp.rope_orig_max_pos, 8192u);
  EXPECT_EQ(hp.max_context, 131072u);
  EXPECT_FALSE(mf->tied_embeddings());
  int exact = 0, requant = 0;
  for (const auto& t : m.mats) {
    SCOPED_TRACE(t.name);
    const format::TensorEntry* e = mf->Find(t.name);
    ASSERT_NE(e, nullptr);
    const uint8_t* p = mf->Data(*e);
    const bool linear = t.name != "tok_embd" && t.name != "output";
    // lamina's own q4g uses f16 scales (the default); Q4_0's are f16: exact.
    const bool f16s = e->layout == static_cast<uint32_t>(format::Layout::kQ4G_R4K8_F16S);
    if (e->dtype == static_cast<uint32_t>(format::DType::kQ4G)) {
      EXPECT_TRUE(f16s);
    }
    if (t.type == gguf::kGgmlQ4_0) {  // exact: same values, same scales
      ASSERT_EQ(e->dtype, static_cast<uint32_t>(format::DType::kQ4G));
      for (int n = 0; n < t.N; ++n) {
        for (int g = 0; g < t.K / 32; ++g) {
          uint16_t h;
          std::memcpy(&h, &t.data[(static_cast<size_t>(n) * t.K / 32 + g) * 18], 2);
          ASSERT_EQ(Bits(pack::Q4GScaleAny(p, f16s, t.N, t.K, n, g)), Bits(F16ToF32(h)));
        }
        for (int k = 0; k < t.K; ++k)
          ASSERT_EQ(static_cast<float>(pack::Q4GValueAny(p, f16s, t.N, t.K, n, k)) *
                        pack::Q4GScaleAny(p, f16s, t.N, t.K, n, k / 32),
                    GgufValue(t.type, t.data, t.K, n, k));
      }
      ++exact;
    } else {  // re-quantized: within half a step of the new scale
      ASSERT_EQ(e->dtype,
                static_cast<uint32_t>(linear ? format::DType::kQ4G : format::DType::kQ8C));
      for (int n = 0; n < t.N; ++n)
        for (int k = 0; k < t.K; ++k) {
          const float want = GgufValue(t.type, t.data, t.K, n, k);
          const float s = linear ? pack::Q4GScaleAny(p, f16s, t.N, t.K, n, k / 32)
                                 : pack::Q8CScale(p, t.N, t.K, n);
          const float got = linear ? pack::Q4GValueAny(p, f16s, t.N, t.K, n, k) * s
                                   : pack::Q8CValue(p, t.N, t.K, n, k) * s;
          // f16 scales: the group amax may sit ~0.4% of a step past 7.5.
          ASSERT_LE(std::fabs(got - want), 0.505f * s) << n << "," << k;
        }
      ++requant;
    }
  }
  EXPECT_EQ(exact, 4);
  EXPECT_EQ(requant, 5);
  // --weights f32: every value exactly the GGUF's dequantized value.
  ASSERT_TRUE(Convert(dir + "/synth.gguf", dir + "/synth_f32.lamina", "f32", &err)) << err;
  auto mf32 = ModelFile::Open(dir + "/synth_f32.lamina", {}, &err);
  ASSERT_NE(mf32, nullptr) << err;
  for (const auto& t : m.mats) {
    SCOPED_TRACE(t.name);
    const format::TensorEntry* e = mf32->Find(t.name);
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(e->dtype, static_cast<uint32_t>(format::DType::kF32));
    const float* p = reinterpret_cast<const float*>(mf32->Data(*e));
    for (int n = 0; n < t.N; ++n)
      for (int k = 0; k < t.K; ++k)
        ASSERT_EQ(Bits(p[static_cast<size_t>(n) * t.K + k]),
                  Bits(GgufValue(t.type, t.data, t.K, n, k)));
  }
  // The converted model runs (no tokenizer: token ids).
  lamina_model* model = nullptr;
  ASSERT_EQ(lamina_model_load((dir + "/synth_q4.lamina").c_str(), nullptr, &model), LAMINA_OK)
      << lamina_last_error();
  lamina_context* ctx = nullptr;
  ASSERT_EQ(lamina_context_create(model, nullptr, &ctx), LAMINA_OK) << lamina_last_error();
  const int32_t toks[3] = {1, 5, 9};
  ASSERT_EQ(lamina_eval(ctx, toks, 3), LAMINA_OK) << lamina_last_error();
  const float* l = lamina_get_logits(ctx);
  ASSERT_NE(l, nullptr);
  for (int v = 0; v < 70; ++v) ASSERT_TRUE(std::isfinite(l[v]));
  lamina_context_free(ctx);
  lamina_model_free(model);
}

// ------------------------------------------------------------- stories260K
const char* kStories = "models/stories260K/stories260K.gguf";

// A tied GGUF (no output.weight) stays tied by default; with an --output type other than the
// embedding's it becomes two tensors, and the missing "output" is not counted as unused.
TEST(GgufConvert, TiedFileConvertsTiedAndUntiedWithADifferentOutputType) {
  const std::string dir = test::TestDataDir("gguf_tied");
  const SynthModel m = MakeSynth(Synth{}, 11, true, /*with_output=*/false);
  test::WriteFileBytes(dir + "/tied.gguf", m.bytes);
  for (const char* output : {"", "q8", "q4", "f32"}) {
    SCOPED_TRACE(std::string("--output ") + output);
    convert::ConvertOptions o;
    o.quiet = true;
    o.weights = "q4";
    o.output = output;
    const std::string out = dir + "/tied_" + (*output ? output : "default") + ".lamina";
    std::string err;
    ASSERT_TRUE(convert::ConvertGguf(dir + "/tied.gguf", out, o, &err)) << err;
    auto mf = ModelFile::Open(out, {}, &err);
    ASSERT_NE(mf, nullptr) << err;
    const bool untied = *output && std::string(output) != "q8";
    EXPECT_EQ(mf->tied_embeddings(), !untied);
    EXPECT_EQ(mf->Find("output") != nullptr, untied);
  }
}

TEST(GgufConvert, Stories260KEqualsTheLlama2cBinTensorByTensor) {
  LAMINA_REQUIRE_SHARED(kStories);
  const std::string s = test::SharedDir() + "/models/stories260K/";
  const std::string dir = test::TestDataDir("gguf");
  std::string err;
  ASSERT_TRUE(Convert(s + "stories260K.gguf", dir + "/stories_gguf.lamina", "f32", &err)) << err;
  convert::ConvertOptions o;
  o.quiet = true;
  o.weights = "f32";
  o.tokenizer_path = s + "tok512.bin";
  ASSERT_TRUE(convert::ConvertLlama2c(s + "stories260K.bin", dir + "/stories_bin.lamina", o, &err))
      << err;
  auto g = ModelFile::Open(dir + "/stories_gguf.lamina", {}, &err);
  ASSERT_NE(g, nullptr) << err;
  auto b = ModelFile::Open(dir + "/stories_bin.lamina", {}, &err);
  ASSERT_NE(b, nullptr) << err;
  const auto &hg = g->hparams(), &hb = b->hparams();
  EXPECT_EQ(hg.dim, hb.dim);
  EXPECT_EQ(hg.n_layers, hb.n_layers);
  EXPECT_EQ(hg.n_heads, hb.n_heads);
  EXPECT_EQ(hg.n_kv_heads, hb.n_kv_heads);
  EXPECT_EQ(hg.ffn_dim, hb.ffn_dim);
  EXPECT_EQ(hg.vocab_size, hb.vocab_size);
  EXPECT_EQ(hg.norm_eps, hb.norm_eps);
  EXPECT_EQ(hg.rope_theta, hb.rope_theta);
  EXPECT_EQ(hg.bos_id, hb.bos_id);
  EXPECT_EQ(hg.eos_id, hb.eos_id);
  size_t compared = 0;
  for (size_t i = 0; i < g->n_tensors(); ++i) {
    const format::TensorEntry& tg = g->tensor(i);
    // The GGUF carries the tied classifier as its own "output" tensor.
    const std::string name = std::string(tg.name) == "output" && b->tied_embeddings()
                                 ? "tok_embd"
                                 : std::string(tg.name);
    const format::TensorEntry* tb = b->Find(name);
    ASSERT_NE(tb, nullptr) << tg.name;
    ASSERT_EQ(tg.dtype, tb->dtype) << tg.name;
    ASSERT_EQ(tg.size, tb->size) << tg.name;
    EXPECT_EQ(std::memcmp(g->Data(tg), b->Data(*tb), tg.size), 0) << tg.name;
    ++compared;
  }
  EXPECT_EQ(compared, 48u);
}

std::vector<int32_t> Greedy(const std::string& path, const std::string& prompt, int n,
                            std::string* text) {
  std::vector<int32_t> out;
  lamina_model* model = nullptr;
  EXPECT_EQ(lamina_model_load(path.c_str(), nullptr, &model), LAMINA_OK) << lamina_last_error();
  if (!model) return out;
  int32_t ids[256];
  size_t n_ids = 0;
  EXPECT_EQ(lamina_tokenize(model, prompt.data(), prompt.size(), 1, 0, ids, 256, &n_ids),
            LAMINA_OK);
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = 512;
  cp.n_threads = 1;
  cp.kv_type = LAMINA_KV_F32;
  lamina_context* ctx = nullptr;
  EXPECT_EQ(lamina_context_create(model, &cp, &ctx), LAMINA_OK) << lamina_last_error();
  if (ctx && lamina_eval(ctx, ids, n_ids) == LAMINA_OK) {
    for (int i = 0; i < n; ++i) {
      const float* l = lamina_get_logits(ctx);
      int best = 0;
      for (int v = 1; v < 512; ++v) best = l[v] > l[best] ? v : best;
      out.push_back(best);
      if (lamina_eval(ctx, &out.back(), 1) != LAMINA_OK) break;
    }
    std::vector<char> buf(8192);
    size_t nb = 0;
    if (lamina_detokenize(model, out.data(), out.size(), buf.data(), buf.size(), &nb) == LAMINA_OK)
      text->assign(buf.data(), nb);
  }
  lamina_context_free(ctx);
  lamina_model_free(model);
  return out;
}

TEST(GgufConvert, Stories260KGreedyTextEqualsTheLlama2cBin) {
  LAMINA_REQUIRE_SHARED(kStories);
  const std::string s = test::SharedDir() + "/models/stories260K/";
  const std::string dir = test::TestDataDir("gguf");
  std::string err;
  ASSERT_TRUE(Convert(s + "stories260K.gguf", dir + "/stories_gguf2.lamina", "f32", &err)) << err;
  convert::ConvertOptions o;
  o.quiet = true;
  o.weights = "f32";
  o.tokenizer_path = s + "tok512.bin";
  ASSERT_TRUE(convert::ConvertLlama2c(s + "stories260K.bin", dir + "/stories_bin2.lamina", o, &err))
      << err;
  std::string tg, tb;
  const auto g = Greedy(dir + "/stories_gguf2.lamina", "Once upon a time", 64, &tg);
  const auto b = Greedy(dir + "/stories_bin2.lamina", "Once upon a time", 64, &tb);
  ASSERT_EQ(g.size(), 64u);
  EXPECT_EQ(g, b);
  EXPECT_EQ(tg, tb);
  // And it is run.c's text (reference_greedy_runc.txt, first prompt).
  const std::vector<uint8_t> ref = test::ReadFileBytes(s + "reference_greedy_runc.txt");
  const std::string r(ref.begin(), ref.end());
  const std::string head = "Once upon a time, there was a little girl named Lily.";
  ASSERT_NE(r.find(head), std::string::npos);
  const std::string want = r.substr(r.find(head) + std::string("Once upon a time").size(), 150);
  EXPECT_EQ(tg.substr(0, 150), want);
}

// A Llama 3 GGUF vocabulary (tokenizer.ggml.model "gpt2", pre "llama-bpe"),
// built from ../shared's tokenizer.json as llama.cpp's converter writes it.
TEST(GgufConvert, Llama3BpeVocabularyFromMetadata) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.json");
  const std::string tdir = test::SharedDir() + "/tokenizers/llama3/";
  json::Value tj, vj;
  std::string err;
  ASSERT_TRUE(json::ParseFile(tdir + "tokenizer.json", &tj, &err)) << err;
  ASSERT_TRUE(json::ParseFile(tdir + "vectors.json", &vj, &err)) << err;
  const json::Value* model = tj.Find("model");
  ASSERT_NE(model, nullptr);
  std::vector<std::string> tokens(128256);
  std::vector<int32_t> types(128256, 1);
  for (const auto& [tok, id] : model->Find("vocab")->members()) {
    int64_t i;
    ASSERT_TRUE(id.as_int64(&i));
    tokens[static_cast<size_t>(i)] = tok;
  }
  for (const auto& a : tj.Find("added_tokens")->items()) {
    int64_t i;
    ASSERT_TRUE(a.Find("id")->as_int64(&i));
    tokens[static_cast<size_t>(i)] = a.Find("content")->as_string();
    types[static_cast<size_t>(i)] = 3;  // control
  }
  std::vector<std::string> merges;
  for (const auto& m : model->Find("merges")->items()) {
    if (m.is_string())
      merges.push_back(m.as_string());
    else
      merges.push_back(m.items()[0].as_string() + " " + m.items()[1].as_string());
  }
  Synth s;
  s.vocab = 128256;
  s.dim = 32;
  s.heads = 2;
  s.kv = 1;
  s.ffn = 32;
  std::mt19937 rng(5);
  GgufWriter w;
  w.Str("general.architecture", "llama");
  w.U32("llama.embedding_length", s.dim);
  w.U32("llama.block_count", 1);
  w.U32("llama.feed_forward_length", s.ffn);
  w.U32("llama.attention.head_count", s.heads);
  w.U32("llama.attention.head_count_kv", s.kv);
  w.F32("llama.rope.freq_base", 500000.f);
  w.Str("tokenizer.ggml.model", "gpt2");
  w.Str("tokenizer.ggml.pre", "llama-bpe");
  w.StrArray("tokenizer.ggml.tokens", tokens);
  w.I32Array("tokenizer.ggml.token_type", types);
  w.StrArray("tokenizer.ggml.merges", merges);
  w.U32("tokenizer.ggml.bos_token_id", 128000);
  w.U32("tokenizer.ggml.eos_token_id", 128009);
  w.Tensor("token_embd.weight", {128256, 32}, gguf::kGgmlQ8_0, RandQ8_0(128256, 32, &rng));
  std::vector<float> ones(s.dim, 1.f);
  w.Tensor("output_norm.weight", {32}, gguf::kGgmlF32, F32Bytes(ones));
  w.Tensor("blk.0.attn_norm.weight", {32}, gguf::kGgmlF32, F32Bytes(ones));
  w.Tensor("blk.0.ffn_norm.weight", {32}, gguf::kGgmlF32, F32Bytes(ones));
  for (const char* n : {"attn_q", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
    w.Tensor(std::string("blk.0.") + n + ".weight", {32, 32}, gguf::kGgmlQ4_0,
             RandQ4_0(32, 32, &rng));
  for (const char* n : {"attn_k", "attn_v"})
    w.Tensor(std::string("blk.0.") + n + ".weight", {16, 32}, gguf::kGgmlQ4_0,
             RandQ4_0(16, 32, &rng));
  const std::string dir = test::TestDataDir("gguf");
  test::WriteFileBytes(dir + "/llama3_vocab.gguf", w.Bytes());
  ASSERT_TRUE(Convert(dir + "/llama3_vocab.gguf", dir + "/llama3_vocab.lamina", "q4", &err)) << err;
  lamina_model* m = nullptr;
  ASSERT_EQ(lamina_model_load((dir + "/llama3_vocab.lamina").c_str(), nullptr, &m), LAMINA_OK)
      << lamina_last_error();
  lamina_model_info info;
  ASSERT_EQ(lamina_model_get_info(m, &info), LAMINA_OK);
  EXPECT_TRUE(info.has_tokenizer);
  EXPECT_EQ(info.bos_id, 128000);
  EXPECT_EQ(info.eos_id, 128009);
  std::vector<int32_t> stops(info.stop_ids, info.stop_ids + info.n_stop_ids);
  for (int32_t want : {128001, 128009})
    EXPECT_NE(std::find(stops.begin(), stops.end(), want), stops.end()) << want;
  int checked = 0;
  for (const auto& v : vj.items()) {
    const std::string& text = v.Find("text")->as_string();
    std::vector<int32_t> want;
    for (const auto& x : v.Find("ids")->items()) {
      int64_t i;
      x.as_int64(&i);
      want.push_back(static_cast<int32_t>(i));
    }
    std::vector<int32_t> got(4096);
    size_t n = 0;
    ASSERT_EQ(lamina_tokenize(m, text.data(), text.size(), 0, 1, got.data(), got.size(), &n),
              LAMINA_OK);
    got.resize(n);
    EXPECT_EQ(got, want) << text;
    if (++checked == 60) break;
  }
  lamina_model_free(m);
}

// ----------------------------------------------------------- damaged files
TEST(GgufConvert, MalformedFilesGiveClearErrors) {
  const std::string dir = test::TestDataDir("gguf");
  const SynthModel m = MakeSynth(Synth{}, 3);
  auto expect_err = [&](std::vector<uint8_t> bytes, const std::string& want) {
    const std::string p = dir + "/bad.gguf";
    test::WriteFileBytes(p, bytes);
    std::string err;
    EXPECT_FALSE(Convert(p, dir + "/bad.lamina", "q4", &err)) << want;
    EXPECT_NE(err.find(want), std::string::npos) << "want '" << want << "' got: " << err;
    EXPECT_FALSE(test::FileExists(dir + "/bad.lamina"));
  };
  std::vector<uint8_t> b = m.bytes;
  b[0] = 'X';
  expect_err(b, "not a GGUF file");
  b = m.bytes;
  b[4] = 1;
  expect_err(b, "GGUF version 1 is not supported");
  b = m.bytes;
  b[8] = 0xFF, b[13] = 0x7F;  // n_tensors huge
  expect_err(b, "exceed the file size");
  expect_err(std::vector<uint8_t>(m.bytes.begin(), m.bytes.end() - 100), "beyond end of file");
  expect_err(std::vector<uint8_t>(m.bytes.begin(), m.bytes.begin() + 300), "bad.gguf: ");
  {
    GgufWriter w;
    w.Str("general.architecture", "gpt2");
    expect_err(w.Bytes(), "architecture 'gpt2' is not supported");
  }
  {
    GgufWriter w;
    w.Str("general.architecture", "llama");
    expect_err(w.Bytes(), "llama.embedding_length missing");
  }
  {  // an unknown ggml type id
    GgufWriter w;
    w.Str("general.architecture", "llama");
    w.Tensor("x", {1, 256}, gguf::kGgmlQ2_K, std::vector<uint8_t>(84));
    w.Tensor("y", {1, 32}, 99, std::vector<uint8_t>(84));
    expect_err(w.Bytes(), "tensor y: unknown ggml type 99");
  }
  {  // an unsupported block type on a real tensor
    Synth s;
    SynthModel mm = MakeSynth(s, 5);
    // Patch the type of blk.0.attn_q.weight (Q4_0 = 2) to Q2_K (10): sizes then disagree.
    const std::string key = "blk.0.attn_q.weight";
    auto it = std::search(mm.bytes.begin(), mm.bytes.end(), key.begin(), key.end());
    ASSERT_NE(it, mm.bytes.end());
    const size_t at = static_cast<size_t>(it - mm.bytes.begin()) + key.size() + 4 + 16;
    ASSERT_EQ(mm.bytes[at], gguf::kGgmlQ4_0);
    mm.bytes[at] = gguf::kGgmlQ4_1;  // Q4_1: 20 bytes/block, so the data overlaps the next
    test::WriteFileBytes(dir + "/q41.gguf", mm.bytes);
    std::string err;
    // Either accepted as Q4_1 (dequantized, valid bounds) or a clean error: never a crash.
    Convert(dir + "/q41.gguf", dir + "/q41.lamina", "q4", &err);
  }
}

TEST(GgufConvert, MalformedHugeMetadataArrayIsRejectedNotABadAlloc) {
  // Each array element costs a ~100-byte Value in memory: a 4 MB file with one
  // u8 array just above the per-array cap (1 << 22) must be a clean error.
  {
    GgufWriter w;
    w.Str("general.architecture", "llama");
    w.U8Array("bomb", (uint64_t{1} << 22) + 1);
    const std::vector<uint8_t> b = w.Bytes();
    gguf::File f;
    std::string err;
    EXPECT_FALSE(f.OpenMemory(b.data(), b.size(), "bomb.gguf", &err));
    EXPECT_NE(err.find("bomb.gguf"), std::string::npos) << err;
    EXPECT_NE(err.find("metadata bomb: array of 4194305 elements exceeds the limit"),
              std::string::npos)
        << err;
  }
  // A Llama 3-sized array (280147 merges) is well within the limits.
  {
    GgufWriter w;
    w.Str("general.architecture", "llama");
    w.U8Array("big", 280147, 7);
    const std::vector<uint8_t> b = w.Bytes();
    gguf::File f;
    std::string err;
    ASSERT_TRUE(f.OpenMemory(b.data(), b.size(), "big.gguf", &err)) << err;
    const gguf::Value* v = f.Find("big");
    ASSERT_NE(v, nullptr);
    ASSERT_EQ(v->arr.size(), 280147u);
    EXPECT_EQ(v->arr.back().u, 7u);
  }
}

TEST(GgufConvert, TruncatedAndFuzzedFilesNeverCrash) {
  const SynthModel m = MakeSynth(Synth{}, 11);
  int rejected = 0, total = 0;
  for (size_t len = 0; len < m.bytes.size(); len += 61, ++total) {
    gguf::File f;
    std::string err;
    rejected += !f.OpenMemory(m.bytes.data(), len, "cut.gguf", &err);
  }
  EXPECT_EQ(rejected, total);
  std::mt19937 rng(1);
  // Flip bytes in the header/metadata/tensor-info region.
  size_t meta_end = m.bytes.size();
  {
    gguf::File f;
    std::string err;
    ASSERT_TRUE(f.OpenMemory(m.bytes.data(), m.bytes.size(), "ok.gguf", &err)) << err;
    meta_end = static_cast<size_t>(f.tensors().front().data - m.bytes.data());
  }
  int ok = 0;
  for (int it = 0; it < 2000; ++it) {
    std::vector<uint8_t> b = m.bytes;
    for (int k = 0; k < 1 + it % 3; ++k) b[rng() % meta_end] = static_cast<uint8_t>(rng());
    gguf::File f;
    std::string err;
    if (f.OpenMemory(b.data(), b.size(), "fuzz.gguf", &err)) {
      ++ok;
      for (const auto& t : f.tensors()) {
        ASSERT_GE(t.data, b.data());
        ASSERT_LE(t.data + t.nbytes, b.data() + b.size());
      }
      if (ok % 16 == 0) {  // the converter on what the reader accepts: error or a file
        const std::string dir = test::TestDataDir("gguf");
        test::WriteFileBytes(dir + "/fuzz.gguf", b);
        Convert(dir + "/fuzz.gguf", dir + "/fuzz.lamina", "q4", &err);
      }
    } else {
      EXPECT_FALSE(err.empty());
    }
  }
  EXPECT_LT(ok, 2000);
}

}  // namespace
}  // namespace lamina

namespace lamina {
namespace {

// Issue 11: a NaN / Inf in a float tensor (here the BF16 attn_v) is refused
// with the tensor and the first bad (row, col), whatever the output scheme;
// nothing is written and lamina-convert exits non-zero.
TEST(GgufConvert, CorruptNonFiniteWeightsAreRefused) {
  const SynthModel m = MakeSynth(Synth{}, 13);
  const std::string d = test::TestDataDir("gguf_nonfinite");
  const std::string in = d + "/inf.gguf", out = d + "/inf.lamina";
  std::vector<uint8_t> b = m.bytes;
  for (const auto& t : m.mats)
    if (t.name == "blk.0.attn_v") {
      ASSERT_EQ(t.type, gguf::kGgmlBF16);
      const auto at = std::search(b.begin(), b.end(), t.data.begin(), t.data.end());
      ASSERT_NE(at, b.end());
      const uint16_t minus_inf_bf16 = 0xff80;
      std::memcpy(&*at + 2 * (3 * t.K + 9), &minus_inf_bf16, 2);  // row 3, col 9
    }
  test::WriteFileBytes(in, b);
  for (const char* scheme : {"q4", "q8", "bf16", "f32"}) {
    std::string err;
    ::unlink(out.c_str());
    EXPECT_FALSE(Convert(in, out, scheme, &err)) << scheme;
    EXPECT_NE(err.find("tensor blk.0.attn_v: Inf at [3, 9]"), std::string::npos) << err;
    EXPECT_FALSE(test::FileExists(out));
  }
  const int rc =
      test::Run(test::Tool("lamina-convert") + " '" + in + "' -o '" + out + "' >/dev/null 2>&1");
  EXPECT_NE(rc, 0);
  EXPECT_FALSE(test::FileExists(out));
}

}  // namespace
}  // namespace lamina
