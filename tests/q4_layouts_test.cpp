// The two q4g layouts and the q4g output layer / embedding through the whole
// engine (C API): a format 1.0 file (Q4G_R4K8, f32 group scales) keeps loading
// and gives the same logits as the same values with f16 scales; a q4g
// embedding is looked up as its dequantized row; lamina-convert's --output /
// --embedding types, untying, and --info's decode bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "kernels/ref/fp16.h"
#include "lamina/lamina.h"
#include "loader/format.h"
#include "loader/model_file.h"
#include "loader/model_writer.h"
#include "loader/pack.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"
#include "tools/convert/convert.h"

namespace lamina::test {
namespace {

using format::DType;
using format::Layout;

// A replacement for one tensor: dtype, layout and bytes.
struct NewTensor {
  DType dtype;
  Layout layout;
  uint32_t group;
  std::vector<uint8_t> bytes;
};
using Transform = std::function<bool(const format::TensorEntry&, const uint8_t*, NewTensor*)>;

// Copies the model at `src` to `dst`, replacing the tensors `fn` rewrites
// (fn returns true and fills *out) and keeping every other byte.
void CopyModel(const std::string& src, const std::string& dst, const Transform& fn) {
  std::string err;
  auto m = ModelFile::Open(src, LoadOptions{}, &err);
  ASSERT_TRUE(m) << err;
  ModelWriter w;
  ASSERT_TRUE(w.Open(dst, &err)) << err;
  w.SetHParams(m->hparams());
  w.SetFlags(m->header().flags);
  w.SetScheme(m->header().weight_scheme);
  if (m->tokenizer_size())
    w.SetTokenizer(
        std::vector<uint8_t>(m->tokenizer_data(), m->tokenizer_data() + m->tokenizer_size()));
  for (size_t i = 0; i < m->n_tensors(); ++i) {
    const format::TensorEntry& t = m->tensor(i);
    std::vector<uint64_t> shape(t.shape, t.shape + t.n_dims);
    NewTensor nt;
    if (fn(t, m->Data(t), &nt)) {
      ASSERT_TRUE(w.AddTensor(t.name, nt.dtype, nt.layout, shape, nt.group, t.flags,
                              nt.bytes.data(), nt.bytes.size(), &err))
          << err;
    } else {
      ASSERT_TRUE(w.AddTensor(t.name, static_cast<DType>(t.dtype), static_cast<Layout>(t.layout),
                              shape, t.group_size, t.flags, m->Data(t), t.size, &err))
          << err;
    }
  }
  ASSERT_TRUE(w.Finish(&err)) << err;
}

// Logits of a 7-token prefill and 3 decode steps (kernel tier `tier`).
std::vector<float> Logits(const std::string& path, const char* tier) {
  lamina_model_params mp = lamina_model_default_params();
  mp.kernels = tier;
  lamina_model* m = nullptr;
  EXPECT_EQ(lamina_model_load(path.c_str(), &mp, &m), LAMINA_OK) << lamina_last_error();
  if (!m) return {};
  lamina_model_info mi;
  lamina_model_get_info(m, &mi);
  lamina_context_params p = lamina_context_default_params();
  p.n_ctx = 32;
  p.n_threads = 1;
  p.logits_all = 1;
  p.kv_type = LAMINA_KV_F32;
  lamina_context* c = nullptr;
  EXPECT_EQ(lamina_context_create(m, &p, &c), LAMINA_OK) << lamina_last_error();
  std::vector<float> out;
  const int32_t toks[10] = {5, 77, 200, 3, 9, 150, 42, 11, 250, 1};
  if (c && lamina_eval(c, toks, 7) == LAMINA_OK) {
    for (int i = 0; i < 7; ++i) {
      const float* l = lamina_get_logits_ith(c, i);
      out.insert(out.end(), l, l + mi.vocab_size);
    }
    for (int i = 7; i < 10; ++i) {
      EXPECT_EQ(lamina_eval(c, toks + i, 1), LAMINA_OK) << lamina_last_error();
      const float* l = lamina_get_logits_ith(c, 0);
      out.insert(out.end(), l, l + mi.vocab_size);
    }
  }
  lamina_context_free(c);
  lamina_model_free(m);
  return out;
}

// Runs `cmd`, its stdout into *out; returns the exit status.
int Capture(const std::string& cmd, std::string* out) {
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  const int rc = pclose(f);
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return !a.empty() && a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

TestModelSpec Spec() {
  TestModelSpec s;
  s.scheme = "q4";
  s.tied = false;
  s.vocab = 301;
  s.seed = 77;
  return s;
}

TEST(Q4Layouts, F32ScaleFileLoadsAndMatchesF16ScaleFile) {
  // The default q4 model (f16 scales), and the same values and scales
  // repacked in format 1.0's layout (f32 scales): identical logits on the
  // ref tier and on the best tier of this CPU.
  const std::string d = TestDataDir("q4_layouts");
  const std::string a = d + "/f16s.lamina", b = d + "/f32s.lamina";
  std::string err;
  ASSERT_TRUE(WriteTestModel(Spec(), a, &err)) << err;
  int repacked = 0;
  CopyModel(a, b, [&](const format::TensorEntry& t, const uint8_t* p, NewTensor* out) {
    if (t.layout != static_cast<uint32_t>(Layout::kQ4G_R4K8_F16S)) return false;
    const int N = static_cast<int>(t.shape[0]), K = static_cast<int>(t.shape[1]), G = (K + 31) / 32;
    std::vector<int8_t> v(static_cast<size_t>(N) * K);
    std::vector<float> s(static_cast<size_t>(N) * G);
    for (int n = 0; n < N; ++n) {
      for (int k = 0; k < K; ++k)
        v[static_cast<size_t>(n) * K + k] = pack::Q4GF16SValue(p, N, K, n, k);
      for (int g = 0; g < G; ++g)
        s[static_cast<size_t>(n) * G + g] = pack::Q4GF16SScale(p, N, K, n, g);
    }
    *out = {DType::kQ4G, Layout::kQ4G_R4K8, 32, std::vector<uint8_t>(pack::Q4GBytes(N, K))};
    pack::PackQ4G(v.data(), s.data(), N, K, out->bytes.data());
    ++repacked;
    return true;
  });
  EXPECT_EQ(repacked, 2 * 7);  // every linear of the 2 layers
  auto mb = ModelFile::Open(b, LoadOptions{}, &err);
  ASSERT_TRUE(mb) << err;
  EXPECT_EQ(mb->Find("blk.0.attn_q")->layout, static_cast<uint32_t>(Layout::kQ4G_R4K8));
  EXPECT_GT(mb->Find("blk.0.ffn_up")->size,
            ModelFile::Open(a, LoadOptions{}, &err)->Find("blk.0.ffn_up")->size);
  for (const char* tier : {"ref", "auto"}) {
    const std::vector<float> la = Logits(a, tier), lb = Logits(b, tier);
    EXPECT_TRUE(SameBits(la, lb)) << tier;
  }
}

TEST(Q4Layouts, Q4EmbeddingLookupIsTheDequantizedRow) {
  // --embedding q4: the lookup must give exactly (float)q * scale, so a copy
  // whose tok_embd is f32 holding those products gives the same logits.
  const std::string d = TestDataDir("q4_layouts");
  const std::string a = d + "/embd_q4.lamina", b = d + "/embd_f32.lamina";
  TestModelSpec s = Spec();
  s.embedding = "q4";
  std::string err;
  ASSERT_TRUE(WriteTestModel(s, a, &err)) << err;
  bool found = false;
  CopyModel(a, b, [&](const format::TensorEntry& t, const uint8_t* p, NewTensor* out) {
    if (std::string(t.name) != "tok_embd") return false;
    EXPECT_EQ(t.dtype, static_cast<uint32_t>(DType::kQ4G));
    EXPECT_EQ(t.layout, static_cast<uint32_t>(Layout::kQ4G_R4K8_F16S));
    const int N = static_cast<int>(t.shape[0]), K = static_cast<int>(t.shape[1]);
    std::vector<float> f(static_cast<size_t>(N) * K);
    for (int n = 0; n < N; ++n) {
      pack::Q4GDequantRow(p, true, N, K, n, &f[static_cast<size_t>(n) * K]);
      for (int k = 0; k < K; ++k)  // independent of Q4GDequantRow
        EXPECT_EQ(f[static_cast<size_t>(n) * K + k],
                  static_cast<float>(pack::Q4GF16SValue(p, N, K, n, k)) *
                      pack::Q4GF16SScale(p, N, K, n, k / 32));
    }
    *out = {DType::kF32, Layout::kRowMajor, 0, std::vector<uint8_t>(f.size() * 4)};
    std::memcpy(out->bytes.data(), f.data(), f.size() * 4);
    found = true;
    return true;
  });
  ASSERT_TRUE(found);
  for (const char* tier : {"ref", "auto"}) EXPECT_TRUE(SameBits(Logits(a, tier), Logits(b, tier)));
}

TEST(Q4Layouts, OutputAndEmbeddingTypesAndUntying) {
  using convert::ConvertOptions;
  using convert::ConvertSynthetic;
  const std::string d = TestDataDir("q4_layouts");
  std::string err;
  struct Case {
    const char* output;
    const char* embedding;
    const char* weights;
    bool want_tied;
    DType want_embd, want_out;
  } cases[] = {
      {"", "", "q4", true, DType::kQ8C, DType::kQ8C},          // default: still tied
      {"q4", "", "q4", false, DType::kQ8C, DType::kQ4G},       // untied: two tensors
      {"q4", "q4", "q4", true, DType::kQ4G, DType::kQ4G},      // tied q4g
      {"bf16", "q8", "q4", false, DType::kQ8C, DType::kBF16},  //
      {"q4", "", "f32", false, DType::kF32, DType::kQ4G},      // --weights f32 embedding
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.output) + "/" + c.embedding + "/" + c.weights);
    ConvertOptions o;
    o.quiet = true;
    o.weights = c.weights;
    o.output = c.output;
    o.embedding = c.embedding;
    o.q4_method = ::lamina::convert::Q4Method::kRtn;  // error <= half a step (checked below)
    const std::string path =
        d + "/tied_" + c.output + "_" + c.embedding + "_" + c.weights + ".lamina";
    ASSERT_TRUE(ConvertSynthetic("tiny-tied", 3, path, o, &err)) << err;
    auto m = ModelFile::Open(path, LoadOptions{}, &err);
    ASSERT_TRUE(m) << err;
    EXPECT_EQ(m->tied_embeddings(), c.want_tied);
    const format::TensorEntry* e = m->Find("tok_embd");
    const format::TensorEntry* out = m->Find("output");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->dtype, static_cast<uint32_t>(c.want_embd));
    if (c.want_tied) {
      EXPECT_EQ(out, nullptr);
    } else {
      ASSERT_NE(out, nullptr);
      EXPECT_EQ(out->dtype, static_cast<uint32_t>(c.want_out));
    }
    if (c.want_out == DType::kQ4G && !c.want_tied && c.want_embd == DType::kF32) {
      // The untied output layer holds the embedding's values, q4-quantized.
      const int N = static_cast<int>(e->shape[0]), K = static_cast<int>(e->shape[1]);
      const float* ef = reinterpret_cast<const float*>(m->Data(*e));
      std::vector<float> row(K);
      for (int n = 0; n < N; n += 37) {
        pack::Q4GDequantRow(m->Data(*out), true, N, K, n, row.data());
        for (int k = 0; k < K; ++k)
          ASSERT_LE(std::fabs(row[k] - ef[static_cast<size_t>(n) * K + k]),
                    0.505f * std::fabs(pack::Q4GF16SScale(m->Data(*out), N, K, n, k / 32)))
              << n << "," << k;
      }
    }
    // Every variant runs, and every tier gives the ref tier's logits.
    const std::vector<float> want = Logits(path, "ref");
    ASSERT_FALSE(want.empty());
    EXPECT_TRUE(SameBits(Logits(path, "auto"), want));
  }
  ConvertOptions bad;
  bad.quiet = true;
  bad.output = "q5";
  EXPECT_FALSE(ConvertSynthetic("tiny-tied", 3, d + "/bad.lamina", bad, &err));
  EXPECT_NE(err.find("unknown --output type 'q5'"), std::string::npos) << err;
}

TEST(Q4Layouts, InfoReportsDecodeBytesAndLayouts) {
  const std::string d = TestDataDir("q4_layouts");
  const std::string q8out = d + "/info_q8out.lamina", q4out = d + "/info_q4out.lamina";
  ASSERT_EQ(test::Run(Tool("lamina-convert") + " --synthetic tiny --quiet -o " + q8out), 0);
  ASSERT_EQ(test::Run(Tool("lamina-convert") + " --synthetic tiny --quiet --output q4 -o " + q4out),
            0);
  std::string out8, out4;
  ASSERT_EQ(Capture(Tool("lamina-convert") + " --info " + q8out, &out8), 0);
  ASSERT_EQ(Capture(Tool("lamina-convert") + " --info " + q4out, &out4), 0);
  EXPECT_NE(out8.find("q4g  q4g_r4k8_f16s"), std::string::npos) << out8;
  const size_t at = out4.find("\n  output ");
  ASSERT_NE(at, std::string::npos) << out4;
  EXPECT_NE(out4.substr(at, out4.find('\n', at + 1) - at).find("q4g  q4g_r4k8_f16s"),
            std::string::npos)
      << out4;
  // Bytes per decode token: every linear + the output layer, not the embedding.
  std::string err;
  for (const std::string& path : {q8out, q4out}) {
    auto m = ModelFile::Open(path, LoadOptions{}, &err);
    ASSERT_TRUE(m) << err;
    uint64_t want = 0;
    for (size_t i = 0; i < m->n_tensors(); ++i)
      if (m->tensor(i).n_dims == 2 && std::string(m->tensor(i).name) != "tok_embd")
        want += m->tensor(i).size;
    const std::string& o = path == q8out ? out8 : out4;
    EXPECT_NE(o.find("weights read per decode token: "), std::string::npos) << o;
    EXPECT_NE(o.find("(" + std::to_string(want) + " bytes"), std::string::npos) << o;
  }
}

}  // namespace
}  // namespace lamina::test
