// Converter tests: HF round trip (tests/gen_hf_model.py), llama2.c
// stories260K, synthetic presets, quantizer formulas, q/k permutation,
// atomic writes and malformed inputs.
#include "tools/convert/convert.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>

#include "kernels/ref/fp16.h"
#include "loader/model_file.h"
#include "loader/pack.h"
#include "tests/testutil.h"
#include "tokenizer/tokenizer.h"
#include "tools/import/json.h"
#include "tools/import/tokenizer_import.h"

namespace lamina::convert {
namespace {

using format::DType;

std::vector<uint8_t> ReadAll(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}
void WriteAll(const std::string& p, const std::vector<uint8_t>& v) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size()));
}

// A minimal independent safetensors reader (F32 only): name -> (shape, data).
struct Ref {
  std::vector<uint64_t> shape;
  std::vector<float> data;
};
std::map<std::string, Ref> ReadExpected(const std::string& path) {
  std::map<std::string, Ref> out;
  const auto bytes = ReadAll(path);
  if (bytes.size() < 8) return out;
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  json::Value h;
  std::string err;
  if (!json::Parse(std::string_view(reinterpret_cast<const char*>(bytes.data()) + 8, n), &h, &err))
    return out;
  for (const auto& [name, v] : h.members()) {
    if (name == "__metadata__") continue;
    Ref r;
    for (const auto& d : v.Find("shape")->items()) r.shape.push_back(d.as_number());
    const auto& off = v.Find("data_offsets")->items();
    const uint64_t b = off[0].as_number(), e = off[1].as_number();
    r.data.resize((e - b) / 4);
    std::memcpy(r.data.data(), bytes.data() + 8 + n + b, e - b);
    out[name] = std::move(r);
  }
  return out;
}

// Checks a file tensor against its float source under the scheme's rules:
// exact for f32 / bf16 (after RNE rounding), and for q8c / q4g the scales
// equal the scalar formula, values are round-half-even(w / s) clamped, the
// error is within s/2, and padding is zero.
void CheckTensor(const ModelFile& m, const std::string& name, const std::vector<float>& w,
                 const std::vector<uint64_t>& shape, DType want) {
  SCOPED_TRACE(name);
  const format::TensorEntry* t = m.Find(name);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->n_dims, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) ASSERT_EQ(t->shape[i], shape[i]);
  ASSERT_EQ(t->dtype, static_cast<uint32_t>(want));
  const uint8_t* p = m.Data(*t);
  const uint64_t total = w.size();
  if (want == DType::kF32) {
    EXPECT_EQ(std::memcmp(p, w.data(), total * 4), 0);
    return;
  }
  if (want == DType::kBF16) {
    for (uint64_t i = 0; i < total; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      ASSERT_EQ(h, F32ToBF16(w[i])) << i;
    }
    return;
  }
  ASSERT_EQ(shape.size(), 2u);
  const int N = static_cast<int>(shape[0]), K = static_cast<int>(shape[1]);
  if (want == DType::kQ8C) {
    for (int n = 0; n < N; ++n) {
      float amax = 0;
      for (int k = 0; k < K; ++k) amax = std::max(amax, std::fabs(w[n * K + k]));
      const float s = std::max(amax / 127.0f, FLT_EPSILON);
      ASSERT_EQ(pack::Q8CScale(p, N, K, n), s) << "row " << n;
      int32_t sum = 0;
      for (int k = 0; k < K; ++k) {
        const float x = w[n * K + k];
        const int q = pack::Q8CValue(p, N, K, n, k);
        ASSERT_EQ(q, static_cast<int>(std::fmax(-127.f, std::fmin(127.f, std::nearbyint(x / s)))))
            << n << "," << k;
        ASSERT_LE(std::fabs(x - q * s), 0.5f * s * (1 + 1e-5f));
        sum += q;
      }
      // wsum (the kernels' zero-point term) sits after the scales.
      const size_t Kp = format::RoundUp(K, 32);
      int32_t stored;
      std::memcpy(&stored, p + (n / 4) * format::kQ8BlockBytes(Kp) + Kp * 4 + 16 + 4 * (n % 4), 4);
      ASSERT_EQ(stored, sum) << "wsum row " << n;
    }
    return;
  }
  ASSERT_EQ(want, DType::kQ4G);
  // Both q4g layouts: f16 scales (the default) are the f32 scale rounded to
  // f16 first, and the values are quantized with the rounded scale.
  const bool f16s = t->layout == static_cast<uint32_t>(format::Layout::kQ4G_R4K8_F16S);
  auto scale_at = [&](int n, int g) {
    return f16s ? pack::Q4GF16SScale(p, N, K, n, g) : pack::Q4GScale(p, N, K, n, g);
  };
  const int G = (K + 31) / 32;
  const size_t Kp = format::RoundUp(K, 32);
  for (int n = 0; n < N; ++n) {
    float corr = 0;
    for (int g = 0; g < G; ++g) {
      float amax = 0;
      for (int k = g * 32; k < std::min(K, g * 32 + 32); ++k)
        amax = std::max(amax, std::fabs(w[n * K + k]));
      // The RTN quantizer (--quant rtn; callers set it): f16 scale, rounded up
      // (the same value in either q4g layout).
      const float s = F16ScaleUp(std::max(amax / 7.5f, FLT_EPSILON));
      ASSERT_EQ(scale_at(n, g), s) << n << " g" << g;
      int wsum = 0;
      for (int k = g * 32; k < g * 32 + 32; ++k) {
        const int q = f16s ? pack::Q4GF16SValue(p, N, K, n, k) : pack::Q4GValue(p, N, K, n, k);
        if (k >= K) {
          ASSERT_EQ(q, 0) << "padding " << n << "," << k;
          continue;
        }
        const float x = w[n * K + k];
        ASSERT_EQ(q, static_cast<int>(std::fmax(-8.f, std::fmin(7.f, std::nearbyint(x / s)))))
            << n << "," << k;
        // f16 scales: the group's amax may sit up to ~0.4% of a step past 7.5.
        ASSERT_LE(std::fabs(x - q * s), (f16s ? 0.505f : 0.5f) * s * (1 + 1e-5f));
        wsum += q;
      }
      corr = std::fma(s, static_cast<float>(wsum), corr);
    }
    float stored;
    const size_t corr_off = f16s ? format::kQ4F16SCorrOffset(Kp) : static_cast<size_t>(G) * 80;
    const size_t bb = f16s ? format::kQ4F16SBlockBytes(Kp) : format::kQ4BlockBytes(Kp);
    std::memcpy(&stored, p + (n / 4) * bb + corr_off + 4 * (n % 4), 4);
    ASSERT_EQ(stored, corr) << "corr row " << n;
  }
  // Padding rows (N not a multiple of 4) carry zero scales.
  for (int n = N; n % 4 != 0; ++n)
    for (int g = 0; g < G; ++g) ASSERT_EQ(scale_at(n, g), 0.f);
}

DType Expected(const std::string& name, const std::string& scheme) {
  const bool norm = name.find("norm") != std::string::npos;
  if (norm || scheme == "f32") return DType::kF32;
  if (scheme == "bf16") return DType::kBF16;
  if (scheme == "q8") return DType::kQ8C;
  const bool emb = name == "tok_embd" || name == "output";
  return emb ? DType::kQ8C : DType::kQ4G;
}

class HfRoundTrip : public ::testing::Test {
 protected:
  // One generation per process, in a per-process directory: ctest runs each
  // case as its own process, possibly in parallel.
  static void SetUpTestSuite() {
    have_torch_ = test::HaveTorch();
    if (!have_torch_) return;
    root_ = test::TestDataDir("convert/hf." + std::to_string(::getpid()));
    gen_ok_ = test::Run(test::Python() + " '" + test::SourceDir() + "/tests/gen_hf_model.py' '" +
                        root_ + "'") == 0;
  }
  static void TearDownTestSuite() {
    if (!root_.empty()) test::Run("rm -rf '" + root_ + "'");
  }
  void RoundTrip(const std::string& variant, const std::string& scheme, bool tied) {
    SCOPED_TRACE(variant + " --weights " + scheme);
    ASSERT_TRUE(gen_ok_) << "tests/gen_hf_model.py failed";
    const std::string dir = root_ + "/" + variant;
    const std::string out = root_ + "/" + variant + "_" + scheme + ".lamina";
    ConvertOptions o;
    o.q4_method = Q4Method::kRtn;  // the checks below are RTN's
    o.weights = scheme;
    o.quiet = true;
    std::string err;
    ASSERT_TRUE(ConvertHf(dir, out, o, &err)) << err;
    auto m = ModelFile::Open(out, LoadOptions{}, &err);
    ASSERT_TRUE(m) << err;
    EXPECT_EQ(m->tied_embeddings(), tied);
    const auto& hp = m->hparams();
    EXPECT_EQ(hp.rope_scaling, static_cast<uint32_t>(format::RopeScaling::kLlama3));
    EXPECT_EQ(hp.rope_factor, 32.f);
    EXPECT_EQ(hp.rope_low_freq_factor, 1.f);
    EXPECT_EQ(hp.rope_high_freq_factor, 4.f);
    EXPECT_EQ(hp.rope_orig_max_pos, 8192u);
    EXPECT_EQ(hp.rope_theta, 500000.f);
    EXPECT_EQ(hp.norm_eps, 1e-5f);
    EXPECT_EQ(hp.bos_id, 1u);
    EXPECT_EQ(hp.eos_id, 2u);
    ASSERT_EQ(hp.n_stop_ids, 3u);
    EXPECT_EQ(hp.stop_ids[2], 4u);
    EXPECT_EQ(m->tokenizer_size(), 0u);
    const auto ref = ReadExpected(dir + "/expected.safetensors");
    ASSERT_FALSE(ref.empty());
    size_t checked = 0;
    for (const auto& [name, r] : ref) {
      CheckTensor(*m, name, r.data, r.shape, Expected(name, scheme));
      ++checked;
    }
    EXPECT_EQ(checked, m->n_tensors());
  }
  static inline std::string root_;
  static inline bool gen_ok_ = false, have_torch_ = false;
};

// Skips without torch (fails under CI), without re-importing torch per case.
#define REQUIRE_GENERATOR()                   \
  do {                                        \
    if (!have_torch_) LAMINA_REQUIRE_TORCH(); \
  } while (0)

TEST_F(HfRoundTrip, TiedBf16) {
  REQUIRE_GENERATOR();
  for (const char* s : {"f32", "bf16", "q4", "q8"}) RoundTrip("tied_bf16", s, true);
}
TEST_F(HfRoundTrip, UntiedF32Sharded) {
  REQUIRE_GENERATOR();
  for (const char* s : {"f32", "bf16", "q4", "q8"}) RoundTrip("untied_f32_sharded", s, false);
}
TEST_F(HfRoundTrip, UntiedF16ShardsWithoutIndex) {
  REQUIRE_GENERATOR();
  for (const char* s : {"f32", "bf16", "q4", "q8"}) RoundTrip("untied_f16", s, false);
}

// A tied checkpoint stored once as lm_head.weight (shared-tensor
// deduplication kept that name): it becomes the embedding and the output.
TEST_F(HfRoundTrip, TiedStoredAsLmHeadOnly) {
  REQUIRE_GENERATOR();
  for (const char* s : {"f32", "q4"}) RoundTrip("tied_lm_head_only", s, true);
  // Not tied: lm_head.weight alone is no embedding.
  const std::string dir = root_ + "/untied_lm_head_only";
  ASSERT_EQ(test::Run("rm -rf '" + dir + "' && cp -r '" + root_ + "/tied_lm_head_only' '" + dir +
                      "' && sed -i 's/\"tie_word_embeddings\": true/\"tie_word_embeddings\": "
                      "false/' '" +
                      dir + "/config.json'"),
            0);
  ConvertOptions o;
  o.quiet = true;
  std::string err;
  EXPECT_FALSE(ConvertHf(dir, root_ + "/untied_lm_head_only.lamina", o, &err));
  EXPECT_NE(err.find("model.embed_tokens.weight missing"), std::string::npos) << err;
}

// A Hugging Face directory with a SentencePiece-style tokenizer.json
// (Mistral's): it is embedded, encodes as the file does, and llama-run
// tokenizes and decodes through it; --chat says there is no template.
TEST_F(HfRoundTrip, SentencePieceTokenizerJson) {
  REQUIRE_GENERATOR();
  LAMINA_REQUIRE_SHARED("tokenizers/mistral/tokenizer.json");
  ASSERT_TRUE(gen_ok_);
  const std::string dir = root_ + "/spm_vocab32000";
  const std::string tok_dir = test::SharedDir() + "/tokenizers/mistral";
  ASSERT_EQ(test::Run("cp '" + tok_dir + "/tokenizer.json' '" + tok_dir +
                      "/tokenizer_config.json' '" + dir + "/'"),
            0);
  const std::string out = root_ + "/spm_vocab32000.lamina";
  ConvertOptions o;
  o.quiet = true;
  std::string err;
  ASSERT_TRUE(ConvertHf(dir, out, o, &err)) << err;
  auto m = ModelFile::Open(out, LoadOptions{}, &err);
  ASSERT_TRUE(m) << err;
  ASSERT_GT(m->tokenizer_size(), 0u);
  auto embedded = Tokenizer::Deserialize(m->tokenizer_data(), m->tokenizer_size(), &err);
  ASSERT_TRUE(embedded) << err;
  auto file = TokenizerFromFile(dir + "/tokenizer.json", &err);
  ASSERT_TRUE(file) << err;
  EXPECT_TRUE(embedded->Serialize() == file->Serialize());
  std::vector<int32_t> ids;
  ASSERT_TRUE(embedded->Encode("Hello world", true, true, &ids, &err));
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 22557, 1526}));
  // llama-run: the prompt goes through the embedded tokenizer and back.
  const std::string log = root_ + "/spm_run.txt";
  ASSERT_EQ(test::Run(test::Tool("llama-run") + " -m '" + out +
                      "' -p 'Hello world' -n 3 --temp 0 > '" + log + "' 2>&1"),
            0);
  const auto text = ReadAll(log);
  EXPECT_NE(std::string(text.begin(), text.end()).find("prompt 3 tokens"), std::string::npos);
  // lamina-tokenize through the embedded blob: ids and text back.
  ASSERT_EQ(
      test::Run(test::Tool("lamina-tokenize") + " --tokenizer '" + out +
                "' -p 'Hello world' --bos > '" + log + "' && " + test::Tool("lamina-tokenize") +
                " --tokenizer '" + out + "' --decode 1,22557,1526 >> '" + log + "'"),
      0);
  const auto tk = ReadAll(log);
  EXPECT_EQ(std::string(tk.begin(), tk.end()).substr(0, 26), "1,22557,1526\nHello world\n");
  EXPECT_NE(test::Run(test::Tool("llama-run") + " -m '" + out + "' --chat < /dev/null > '" + log +
                      "' 2>&1"),
            0);
  const auto chat = ReadAll(log);
  EXPECT_NE(std::string(chat.begin(), chat.end()).find("has no chat template"), std::string::npos)
      << std::string(chat.begin(), chat.end());
  // --tokenizer none: no tokenizer embedded.
  o.no_tokenizer = true;
  ASSERT_TRUE(ConvertHf(dir, out, o, &err)) << err;
  m = ModelFile::Open(out, LoadOptions{}, &err);
  ASSERT_TRUE(m) << err;
  EXPECT_EQ(m->tokenizer_size(), 0u);
}

// A small Llama 2-style model (tests/gen_hf_model.py spm_small: its own
// SentencePiece-style tokenizer.json) converted from its Hugging Face
// directory and from the same weights as a GGUF with a "llama" vocabulary:
// same prompt ids, same greedy text.
TEST_F(HfRoundTrip, SentencePieceHfDirGreedyEqualsGguf) {
  REQUIRE_GENERATOR();
  ASSERT_TRUE(gen_ok_);
  ConvertOptions o;
  o.quiet = true;
  o.weights = "f32";
  std::string err;
  const std::string a = root_ + "/spm_small_hf.lamina", b = root_ + "/spm_small_gguf.lamina";
  ASSERT_TRUE(ConvertHf(root_ + "/spm_small", a, o, &err)) << err;
  ASSERT_TRUE(ConvertGguf(root_ + "/spm_small.gguf", b, o, &err)) << err;
  std::string out[2];
  for (int i = 0; i < 2; ++i) {
    const std::string m = i ? b : a, log = m + ".txt";
    ASSERT_EQ(test::Run(test::Tool("lamina-tokenize") + " --tokenizer '" + m +
                        "' -p 'Once upon a time, the cat sat.' --bos > '" + log + "' && " +
                        test::Tool("llama-run") + " -m '" + m +
                        "' -p 'Once upon a time' -n 24 --temp 0 >> '" + log + "' 2>/dev/null"),
              0);
    const auto t = ReadAll(log);
    out[i].assign(t.begin(), t.end());
  }
  EXPECT_GT(out[0].size(), 40u) << out[0];
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(out[0].substr(0, 6), "1,259,");  // <s> ▁ ...
}

// Atomicity: a conversion that fails half-way leaves neither the output nor
// its temp file, and an existing output survives untouched.
TEST_F(HfRoundTrip, FailedConversionLeavesNoFile) {
  REQUIRE_GENERATOR();
  ASSERT_TRUE(gen_ok_);
  const std::string src = root_ + "/tied_bf16";
  const std::string dir = root_ + "/broken";
  ASSERT_EQ(test::Run("rm -rf '" + dir + "' && cp -r '" + src + "' '" + dir + "'"), 0);
  // Truncate the weights: the last tensors' data_offsets now point past EOF.
  auto st = ReadAll(dir + "/model.safetensors");
  st.resize(st.size() - 1000);
  WriteAll(dir + "/model.safetensors", st);
  const std::string out = root_ + "/broken.lamina";
  ::unlink(out.c_str());
  ConvertOptions o;
  o.quiet = true;
  std::string err;
  EXPECT_FALSE(ConvertHf(dir, out, o, &err));
  EXPECT_NE(err.find("beyond end of file"), std::string::npos) << err;
  EXPECT_FALSE(test::FileExists(out));
  EXPECT_FALSE(test::FileExists(out + ".tmp"));
  // A missing tensor found only late in the conversion: same guarantee, and
  // a previous good output is not replaced.
  ASSERT_EQ(test::Run("cp '" + src + "/model.safetensors' '" + dir + "/'"), 0);
  ASSERT_TRUE(ConvertHf(dir, out, o, &err)) << err;
  const auto good = ReadAll(out);
  auto cfg = ReadAll(dir + "/config.json");
  std::string cs(cfg.begin(), cfg.end());
  const size_t pos = cs.find("\"num_hidden_layers\": 2");
  ASSERT_NE(pos, std::string::npos);
  cs.replace(pos, 22, "\"num_hidden_layers\": 3");
  WriteAll(dir + "/config.json", std::vector<uint8_t>(cs.begin(), cs.end()));
  EXPECT_FALSE(ConvertHf(dir, out, o, &err));
  EXPECT_NE(err.find("model.layers.2.input_layernorm.weight missing"), std::string::npos) << err;
  EXPECT_EQ(ReadAll(out), good);
  EXPECT_FALSE(test::FileExists(out + ".tmp"));
}

TEST_F(HfRoundTrip, CorruptSafetensorsHeaders) {
  REQUIRE_GENERATOR();
  ASSERT_TRUE(gen_ok_);
  const std::string src = root_ + "/tied_bf16";
  const std::string dir = root_ + "/corrupt";
  ASSERT_EQ(test::Run("rm -rf '" + dir + "' && cp -r '" + src + "' '" + dir + "'"), 0);
  const auto orig = ReadAll(src + "/model.safetensors");
  const std::string out = root_ + "/corrupt.lamina";
  ConvertOptions o;
  o.quiet = true;
  std::mt19937 rng(5);
  uint64_t hn;
  std::memcpy(&hn, orig.data(), 8);
  for (int it = 0; it < 40; ++it) {
    auto v = orig;
    if (it == 0) {
      v.resize(5);
    } else if (it == 1) {
      const uint64_t huge = ~0ull;
      std::memcpy(v.data(), &huge, 8);
    } else if (it < 20) {
      v.resize(rng() % (8 + hn));  // truncated inside the header
    } else {
      for (int k = 0; k < 4; ++k) v[8 + rng() % hn] = static_cast<uint8_t>(rng());
    }
    WriteAll(dir + "/model.safetensors", v);
    std::string err;
    if (!ConvertHf(dir, out, o, &err)) {
      EXPECT_FALSE(err.empty());
      EXPECT_FALSE(test::FileExists(out));
    } else {
      std::string e2;  // a harmless mutation: the result still validates
      EXPECT_TRUE(ModelFile::Open(out, LoadOptions{}, &e2)) << e2;
      ::unlink(out.c_str());
    }
  }
}

TEST(ConvertHelpers, PermutationMatchesHfFormula) {
  // HF's permute (Meta -> HF): view(H, hd/2, 2, K).transpose(1, 2): Meta row
  // h*hd + 2j + t lands on HF row h*hd + t*hd/2 + j. Ours is the inverse.
  const int H = 3, hd = 8, K = 2;
  std::vector<int32_t> meta(H * hd * K), hf(H * hd * K), back(H * hd * K);
  for (size_t i = 0; i < meta.size(); ++i) meta[i] = static_cast<int32_t>(i);
  for (int h = 0; h < H; ++h)
    for (int j = 0; j < hd / 2; ++j)
      for (int t = 0; t < 2; ++t)
        for (int k = 0; k < K; ++k)
          hf[(h * hd + t * hd / 2 + j) * K + k] = meta[(h * hd + 2 * j + t) * K + k];
  PermuteRotateHalfToInterleaved(hf.data(), back.data(), H, hd, K * 4);
  EXPECT_EQ(back, meta);
}

TEST(ConvertHelpers, EmitFloatTensorQuantizesByScheme) {
  // K = 40 (zero-padded to 64), N = 6 (padded to 8), values incl. exact ties.
  const int N = 6, K = 40;
  std::vector<float> w(N * K);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 0.05f);
  for (auto& x : w) x = nd(rng);
  w[0] = 0.75f;                                    // amax of group 0 row 0 -> scale 0.1
  w[1] = 0.25f;                                    // 2.5 -> round-half-even 2
  w[2] = -0.75f;                                   // -7.5 -> -8
  for (int k = 0; k < K; ++k) w[5 * K + k] = 0.f;  // all-zero row: scale FLT_EPSILON
  for (const std::string scheme : {"q4", "q8", "bf16", "f32"}) {
    SCOPED_TRACE(scheme);
    const std::string path = test::TestDataDir("convert") + "/emit_" + scheme + ".lamina";
    // Wrap the matrix in a minimal valid model (dim 40 would need heads; use
    // the tensor as ffn_down of a 1-layer model with dim = N... instead check
    // through the writer directly and read back with ValidateModelImage-free
    // access: write then read the temp image bytes.)
    ModelWriter mw;
    std::string err;
    ASSERT_TRUE(mw.Open(path, &err)) << err;
    ConvertOptions o;
    o.q4_method = Q4Method::kRtn;  // the checks below are RTN's
    o.weights = scheme;
    ASSERT_TRUE(EmitFloatTensor(mw, "blk.0.ffn_down", Role::kLinear, w.data(), {N, K}, o, &err))
        << err;
    // Complete a valid model around it: dim 6 = 3 heads x 2, ffn 40.
    format::HParams hp{};
    hp.arch = 1;
    hp.dim = 6;
    hp.n_layers = 1;
    hp.n_heads = 3;
    hp.n_kv_heads = 1;
    hp.head_dim = 2;
    hp.ffn_dim = 40;
    hp.vocab_size = 4;
    hp.max_context = 16;
    hp.norm_eps = 1e-5f;
    hp.rope_theta = 10000.f;
    std::vector<float> z(64 * 64, 0.01f);
    auto add = [&](const char* n, Role r, std::vector<uint64_t> s) {
      ASSERT_TRUE(EmitFloatTensor(mw, n, r, z.data(), s, o, &err)) << err;
    };
    add("tok_embd", Role::kEmbedding, {4, 6});
    add("output_norm", Role::kNorm, {6});
    add("blk.0.attn_norm", Role::kNorm, {6});
    add("blk.0.ffn_norm", Role::kNorm, {6});
    add("blk.0.attn_q", Role::kLinear, {6, 6});
    add("blk.0.attn_k", Role::kLinear, {2, 6});
    add("blk.0.attn_v", Role::kLinear, {2, 6});
    add("blk.0.attn_output", Role::kLinear, {6, 6});
    add("blk.0.ffn_gate", Role::kLinear, {40, 6});
    add("blk.0.ffn_up", Role::kLinear, {40, 6});
    mw.SetHParams(hp);
    mw.SetFlags(format::kFlagTiedEmbeddings);
    ASSERT_TRUE(mw.Finish(&err)) << err;
    auto m = ModelFile::Open(path, LoadOptions{}, &err);
    ASSERT_TRUE(m) << err;
    CheckTensor(*m, "blk.0.ffn_down", w, {N, K}, Expected("blk.0.ffn_down", scheme));
    CheckTensor(*m, "tok_embd", std::vector<float>(24, 0.01f), {4, 6},
                Expected("tok_embd", scheme));
    if (scheme == "q4") {
      // The default layout has f16 scales; RTN rounds 0.1 up to 0.100037, so
      // 0.25 / s = 2.499 -> 2.
      const auto* t = m->Find("blk.0.ffn_down");
      ASSERT_EQ(t->layout, static_cast<uint32_t>(format::Layout::kQ4G_R4K8_F16S));
      EXPECT_EQ(pack::Q4GF16SScale(m->Data(*t), N, K, 0, 0), F16ScaleUp(0.1f));
      EXPECT_EQ(pack::Q4GF16SValue(m->Data(*t), N, K, 0, 1), 2);
      // -0.75 / f16 scale 0.100037 = -7.497: the f16 scale rounded up moves
      // RTN's -7.5 tie to -7.
      EXPECT_EQ(pack::Q4GF16SValue(m->Data(*t), N, K, 0, 2), -7);
      EXPECT_EQ(pack::Q4GF16SScale(m->Data(*t), N, K, 5, 0), FLT_EPSILON);
    }
  }
  ConvertOptions bad;
  bad.weights = "q3";
  ModelWriter mw;
  std::string err;
  ASSERT_TRUE(mw.Open(test::TestDataDir("convert") + "/bad_scheme.lamina", &err));
  EXPECT_FALSE(EmitFloatTensor(mw, "x", Role::kLinear, w.data(), {N, K}, bad, &err));
  EXPECT_NE(err.find("unknown weight scheme"), std::string::npos);
  bad.weights = "q4";
  bad.group_size = 64;
  EXPECT_FALSE(EmitFloatTensor(mw, "x", Role::kLinear, w.data(), {N, K}, bad, &err));
  EXPECT_NE(err.find("group-size"), std::string::npos);
}

TEST(ConvertSynthetic, TinyIsDeterministicAndValid) {
  const std::string d = test::TestDataDir("convert");
  ConvertOptions o;
  o.quiet = true;
  std::string err;
  ASSERT_TRUE(ConvertSynthetic("tiny", 7, d + "/tiny_a.lamina", o, &err)) << err;
  ASSERT_TRUE(ConvertSynthetic("tiny", 7, d + "/tiny_b.lamina", o, &err)) << err;
  ASSERT_TRUE(ConvertSynthetic("tiny", 8, d + "/tiny_c.lamina", o, &err)) << err;
  const auto a = ReadAll(d + "/tiny_a.lamina");
  EXPECT_EQ(a, ReadAll(d + "/tiny_b.lamina"));
  EXPECT_NE(a, ReadAll(d + "/tiny_c.lamina"));
  auto m = ModelFile::Open(d + "/tiny_a.lamina", LoadOptions{}, &err);
  ASSERT_TRUE(m) << err;
  const auto& hp = m->hparams();
  EXPECT_EQ(hp.dim, 64u);
  EXPECT_EQ(hp.n_layers, 2u);
  EXPECT_EQ(hp.n_heads, 4u);
  EXPECT_EQ(hp.n_kv_heads, 2u);
  EXPECT_EQ(hp.ffn_dim, 160u);
  EXPECT_EQ(hp.vocab_size, 258u);
  EXPECT_EQ(hp.rope_theta, 500000.f);
  EXPECT_EQ(hp.bos_id, 256u);
  EXPECT_FALSE(m->tied_embeddings());
  EXPECT_EQ(m->Find("blk.1.ffn_down")->dtype, static_cast<uint32_t>(DType::kQ4G));
  EXPECT_EQ(m->Find("output")->dtype, static_cast<uint32_t>(DType::kQ8C));
  ASSERT_GT(m->tokenizer_size(), 0u);
  auto tok = Tokenizer::Deserialize(m->tokenizer_data(), m->tokenizer_size(), &err);
  ASSERT_TRUE(tok) << err;
  EXPECT_EQ(tok->vocab_size(), 258);

  ASSERT_TRUE(ConvertSynthetic("tiny-tied", 7, d + "/tiny_t.lamina", o, &err)) << err;
  m = ModelFile::Open(d + "/tiny_t.lamina", LoadOptions{}, &err);
  ASSERT_TRUE(m) << err;
  EXPECT_TRUE(m->tied_embeddings());
  EXPECT_EQ(m->Find("output"), nullptr);
  o.weights = "f32";
  ASSERT_TRUE(ConvertSynthetic("tiny", 7, d + "/tiny_f.lamina", o, &err)) << err;
  m = ModelFile::Open(d + "/tiny_f.lamina", LoadOptions{}, &err);
  ASSERT_TRUE(m) << err;
  EXPECT_EQ(m->Find("blk.0.attn_q")->dtype, static_cast<uint32_t>(DType::kF32));
  EXPECT_FALSE(ConvertSynthetic("7b", 1, d + "/x.lamina", o, &err));
  EXPECT_NE(err.find("unknown synthetic preset"), std::string::npos);
}

// The direct int4/int8 generator (used for the 1b/3b presets) must produce
// packed tensors whose redundant fields (q4g corr, q8c wsum) agree with the
// values and scales, exactly as the packers would write them.
TEST(ConvertSynthetic, DirectGeneratorIsConsistent) {
  const std::string path = test::TestDataDir("convert") + "/direct_mini.lamina";
  ConvertOptions o;
  o.quiet = true;
  std::string err;
  for (const char* scheme : {"q4", "q8"}) {
    o.weights = scheme;
    ASSERT_TRUE(ConvertSynthetic("direct-mini", 5, path, o, &err)) << err;
    auto m = ModelFile::Open(path, LoadOptions{}, &err);
    ASSERT_TRUE(m) << err;
    for (const char* name : {"blk.0.attn_q", "blk.0.ffn_down", "output", "tok_embd"}) {
      SCOPED_TRACE(std::string(scheme) + " " + name);
      const auto* t = m->Find(name);
      ASSERT_NE(t, nullptr);
      const int N = static_cast<int>(t->shape[0]), K = static_cast<int>(t->shape[1]);
      const uint8_t* p = m->Data(*t);
      // Rebuild the packed bytes from the unpacked values with the packers.
      std::vector<int8_t> q(static_cast<size_t>(N) * K);
      std::vector<uint8_t> re(t->size);
      if (t->dtype == static_cast<uint32_t>(DType::kQ4G)) {
        // The default q4g layout: f16 scales.
        ASSERT_EQ(t->layout, static_cast<uint32_t>(format::Layout::kQ4G_R4K8_F16S));
        std::vector<float> sc(static_cast<size_t>(N) * (K / 32));
        for (int n = 0; n < N; ++n) {
          for (int k = 0; k < K; ++k) q[n * K + k] = pack::Q4GF16SValue(p, N, K, n, k);
          for (int g = 0; g < K / 32; ++g) {
            sc[n * (K / 32) + g] = pack::Q4GF16SScale(p, N, K, n, g);
            ASSERT_GT(sc[n * (K / 32) + g], 0.f);
          }
        }
        ASSERT_TRUE(pack::PackQ4GF16S(q.data(), sc.data(), N, K, re.data()));
      } else {
        ASSERT_EQ(t->dtype, static_cast<uint32_t>(DType::kQ8C));
        std::vector<float> sc(N);
        for (int n = 0; n < N; ++n) {
          for (int k = 0; k < K; ++k) {
            q[n * K + k] = static_cast<int8_t>(pack::Q8CValue(p, N, K, n, k));
            ASSERT_NE(q[n * K + k], -128);
          }
          sc[n] = pack::Q8CScale(p, N, K, n);
        }
        pack::PackQ8C(q.data(), sc.data(), N, K, re.data());
      }
      EXPECT_EQ(std::memcmp(re.data(), p, t->size), 0);
    }
  }
}

// llama2.c stories260K: f32 keeps every value bit-exactly; q4 follows the
// quantizer formulas. Offsets recomputed here independently of the converter.
class Llama2cStories : public ::testing::TestWithParam<std::string> {};

TEST_P(Llama2cStories, ConvertsAndMatchesSource) {
  LAMINA_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  const std::string bin = test::SharedDir() + "/models/stories260K/stories260K.bin";
  const std::string scheme = GetParam();
  const std::string out = test::TestDataDir("convert") + "/stories260K_" + scheme + ".lamina";
  ConvertOptions o;
  o.q4_method = Q4Method::kRtn;  // the checks below are RTN's
  o.weights = scheme;
  o.quiet = true;
  std::string err;
  ASSERT_TRUE(ConvertLlama2c(bin, out, o, &err)) << err;
  auto m = ModelFile::Open(out, LoadOptions{}, &err);
  ASSERT_TRUE(m) << err;
  const auto src = ReadAll(bin);
  int32_t h[7];
  std::memcpy(h, src.data(), 28);
  const uint64_t d = h[0], ff = h[1], L = h[2], H = h[3], KV = h[4], V = std::abs(h[5]);
  EXPECT_EQ(d, 64u);
  EXPECT_EQ(ff, 172u);  // not a multiple of 32: ffn_down is zero-padded
  const uint64_t kvd = KV * (d / H);
  const float* f = reinterpret_cast<const float*>(src.data() + 28);
  auto slice = [&](uint64_t off, uint64_t n) { return std::vector<float>(f + off, f + off + n); };
  uint64_t pos = 0;
  auto take = [&](uint64_t n) {
    const uint64_t p = pos;
    pos += n;
    return p;
  };
  const uint64_t emb = take(V * d), ra = take(L * d), wq = take(L * d * d), wk = take(L * kvd * d),
                 wv = take(L * kvd * d), wo = take(L * d * d), rf = take(L * d),
                 w1 = take(L * ff * d), w2 = take(L * d * ff), w3 = take(L * ff * d),
                 rfin = take(d);
  EXPECT_TRUE(m->tied_embeddings());
  CheckTensor(*m, "tok_embd", slice(emb, V * d), {V, d}, Expected("tok_embd", scheme));
  CheckTensor(*m, "output_norm", slice(rfin, d), {d}, DType::kF32);
  for (uint64_t l = 0; l < L; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    CheckTensor(*m, b + "attn_norm", slice(ra + l * d, d), {d}, DType::kF32);
    CheckTensor(*m, b + "ffn_norm", slice(rf + l * d, d), {d}, DType::kF32);
    const DType lt = Expected("blk", scheme);
    CheckTensor(*m, b + "attn_q", slice(wq + l * d * d, d * d), {d, d}, lt);
    CheckTensor(*m, b + "attn_k", slice(wk + l * kvd * d, kvd * d), {kvd, d}, lt);
    CheckTensor(*m, b + "attn_v", slice(wv + l * kvd * d, kvd * d), {kvd, d}, lt);
    CheckTensor(*m, b + "attn_output", slice(wo + l * d * d, d * d), {d, d}, lt);
    CheckTensor(*m, b + "ffn_gate", slice(w1 + l * ff * d, ff * d), {ff, d}, lt);
    CheckTensor(*m, b + "ffn_down", slice(w2 + l * d * ff, d * ff), {d, ff}, lt);
    CheckTensor(*m, b + "ffn_up", slice(w3 + l * ff * d, ff * d), {ff, d}, lt);
  }
  const auto& hp = m->hparams();
  EXPECT_EQ(hp.n_kv_heads, KV);
  EXPECT_EQ(hp.max_context, 512u);
  EXPECT_EQ(hp.rope_theta, 10000.f);
  EXPECT_EQ(hp.rope_scaling, 0u);
  EXPECT_EQ(hp.bos_id, 1u);
  EXPECT_EQ(hp.eos_id, 2u);
  ASSERT_GT(m->tokenizer_size(), 0u) << "tok512.bin beside the checkpoint is embedded";
  auto tok = Tokenizer::Deserialize(m->tokenizer_data(), m->tokenizer_size(), &err);
  ASSERT_TRUE(tok) << err;
  EXPECT_EQ(tok->vocab_size(), 512);
}

INSTANTIATE_TEST_SUITE_P(Schemes, Llama2cStories, ::testing::Values("f32", "q4", "q8", "bf16"));

TEST(Llama2cCorrupt, TruncatedAndBadHeaders) {
  LAMINA_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  const auto src = ReadAll(test::SharedDir() + "/models/stories260K/stories260K.bin");
  const std::string d = test::TestDataDir("convert");
  const std::string in = d + "/corrupt260.bin", out = d + "/corrupt260.lamina";
  ConvertOptions o;
  o.quiet = true;
  std::mt19937 rng(11);
  for (int it = 0; it < 12; ++it) {
    auto v = src;
    if (it < 6) {
      v.resize(rng() % src.size());
    } else {
      int32_t bad = it == 6 ? 0 : it == 7 ? -5 : it == 8 ? (1 << 30) : static_cast<int32_t>(rng());
      std::memcpy(v.data() + 4 * (rng() % 7), &bad, 4);
    }
    WriteAll(in, v);
    std::string err;
    ::unlink(out.c_str());
    EXPECT_FALSE(ConvertLlama2c(in, out, o, &err)) << it;
    EXPECT_NE(err.find(in), std::string::npos) << err;
    EXPECT_FALSE(test::FileExists(out));
    EXPECT_FALSE(test::FileExists(out + ".tmp"));
  }
}

// ---- HF checkpoints written here in C++ (no torch needed) -------------------
namespace hfmini {

struct T {
  std::string name;
  std::vector<uint64_t> shape;
  std::vector<float> v;
};

// dim 8, 2 heads (head_dim 4), 1 kv head, ffn 16, vocab 10, 1 layer, tied.
std::vector<T> Tensors(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto mk = [&](std::string n, std::vector<uint64_t> s) {
    T t{std::move(n), s, {}};
    uint64_t c = 1;
    for (auto d : s) c *= d;
    t.v.resize(c);
    for (auto& x : t.v) x = u(rng);
    return t;
  };
  const std::string p = "model.layers.0.";
  return {mk("model.embed_tokens.weight", {10, 8}),
          mk(p + "input_layernorm.weight", {8}),
          mk(p + "self_attn.q_proj.weight", {8, 8}),
          mk(p + "self_attn.k_proj.weight", {4, 8}),
          mk(p + "self_attn.v_proj.weight", {4, 8}),
          mk(p + "self_attn.o_proj.weight", {8, 8}),
          mk(p + "post_attention_layernorm.weight", {8}),
          mk(p + "mlp.gate_proj.weight", {16, 8}),
          mk(p + "mlp.up_proj.weight", {16, 8}),
          mk(p + "mlp.down_proj.weight", {8, 16}),
          mk("model.norm.weight", {8})};
}

void WriteSafetensors(const std::string& path, const std::vector<T>& ts,
                      const std::string& dtype_override = "") {
  std::string h = "{";
  uint64_t off = 0;
  for (const auto& t : ts) {
    std::string shape;
    for (auto d : t.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    h += (h.size() > 1 ? "," : "") + std::string("\"") + t.name + "\":{\"dtype\":\"" +
         (dtype_override.empty() ? "F32" : dtype_override) + "\",\"shape\":[" + shape +
         "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + t.v.size() * 4) +
         "]}";
    off += t.v.size() * 4;
  }
  h += "}";
  std::vector<uint8_t> out(8);
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  out.insert(out.end(), h.begin(), h.end());
  for (const auto& t : ts) {
    const auto* b = reinterpret_cast<const uint8_t*>(t.v.data());
    out.insert(out.end(), b, b + t.v.size() * 4);
  }
  WriteAll(path, out);
}

std::string Config(const std::string& extra = "") {
  return "{\"model_type\":\"llama\",\"hidden_size\":8,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":16,"
         "\"vocab_size\":10,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
         "\"max_position_embeddings\":64,\"tie_word_embeddings\":true,"
         "\"bos_token_id\":1,\"eos_token_id\":2" +
         extra + "}";
}

void WriteDir(const std::string& dir, const std::string& cfg, const std::vector<T>& ts,
              const std::string& dtype_override = "") {
  test::Run("rm -rf '" + dir + "' && mkdir -p '" + dir + "'");
  WriteAll(dir + "/config.json", std::vector<uint8_t>(cfg.begin(), cfg.end()));
  WriteSafetensors(dir + "/model.safetensors", ts, dtype_override);
}

}  // namespace hfmini

TEST(ConvertHfMini, PermutesQkAndKeepsOthersExact) {
  const std::string dir = test::TestDataDir("convert") + "/hfmini_ok";
  const auto ts = hfmini::Tensors(1);
  hfmini::WriteDir(dir, hfmini::Config(), ts);
  ConvertOptions o;
  o.weights = "f32";
  o.quiet = true;
  std::string err;
  const std::string out = dir + ".lamina";
  ASSERT_TRUE(ConvertHf(dir, out, o, &err)) << err;
  auto m = ModelFile::Open(out, LoadOptions{}, &err);
  ASSERT_TRUE(m) << err;
  EXPECT_TRUE(m->tied_embeddings());
  EXPECT_EQ(m->hparams().rope_scaling, 0u);
  EXPECT_EQ(m->hparams().max_context, 64u);
  auto row = [&](const char* name, int r) {
    const auto* t = m->Find(name);
    const float* f = reinterpret_cast<const float*>(m->Data(*t));
    return std::vector<float>(f + r * 8, f + r * 8 + 8);
  };
  auto src_row = [&](int idx, int r) {
    return std::vector<float>(ts[idx].v.begin() + r * 8, ts[idx].v.begin() + r * 8 + 8);
  };
  // head_dim 4: lamina row h*4 + 2j + t = HF row h*4 + t*2 + j.
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 2; ++j)
      for (int t = 0; t < 2; ++t) {
        EXPECT_EQ(row("blk.0.attn_q", h * 4 + 2 * j + t), src_row(2, h * 4 + t * 2 + j));
        if (h == 0) {
          EXPECT_EQ(row("blk.0.attn_k", 2 * j + t), src_row(3, t * 2 + j));
        }
      }
  for (int r = 0; r < 4; ++r) EXPECT_EQ(row("blk.0.attn_v", r), src_row(4, r));
  for (int r = 0; r < 10; ++r) EXPECT_EQ(row("tok_embd", r), src_row(0, r));
}

TEST(ConvertHfMini, MalformedConfigsAndTensors) {
  const std::string dir = test::TestDataDir("convert") + "/hfmini_bad";
  const std::string out = dir + ".lamina";
  const auto ts = hfmini::Tensors(2);
  ConvertOptions o;
  o.quiet = true;
  struct Case {
    std::string cfg, dtype, needle;
  };
  auto edit = [](std::string from, std::string to) {
    std::string c = hfmini::Config();
    c.replace(c.find(from), from.size(), to);
    return c;
  };
  const std::string no_hidden = edit("\"hidden_size\":8,", "");
  const std::vector<Case> cases = {
      {no_hidden, "", "missing hidden_size"},
      {hfmini::Config(",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}"), "",
       "rope_scaling type 'yarn' is not supported"},
      {hfmini::Config(",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8}"), "",
       "missing low_freq_factor"},
      {"{\"model_type\":\"mistral\"}", "", "model_type 'mistral' is not supported"},
      {hfmini::Config(",\"head_dim\":3"), "", "head_dim * num_attention_heads != hidden_size"},
      {edit("\"intermediate_size\":16", "\"intermediate_size\":32"), "",
       "mlp.gate_proj.weight: shape [16, 8], expected [32, 8]"},
      {hfmini::Config(), "I32", "dtype I32 not supported"},
      {hfmini::Config(), "BF16", "does not match shape and dtype"},
      {"{\"hidden_size\": 8,", "", "config.json"},
      {edit("\"num_hidden_layers\":1", "\"num_hidden_layers\":-1"), "",
       "not a valid unsigned integer"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.needle);
    hfmini::WriteDir(dir, c.cfg, ts, c.dtype);
    std::string err;
    ::unlink(out.c_str());
    EXPECT_FALSE(ConvertHf(dir, out, o, &err));
    EXPECT_NE(err.find(c.needle), std::string::npos) << err;
    EXPECT_FALSE(test::FileExists(out));
    EXPECT_FALSE(test::FileExists(out + ".tmp"));
  }
}

}  // namespace
}  // namespace lamina::convert
