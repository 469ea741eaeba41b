// Non-finite weights (issue 11, finding 1): a .lamina whose big tensors hold a
// NaN or Inf loads (they are not scanned at load), but evaluation stops with
// LAMINA_ERR_NUMERIC naming the stage (embedding, layer, logits) instead of
// sampling from NaN; llama-run exits non-zero with that message. Small norm
// vectors are checked at load.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "lamina/lamina.h"
#include "loader/format.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

std::vector<uint8_t> ReadFile(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}
void WriteFile(const std::string& p, const std::vector<uint8_t>& v) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size()));
}

// Byte offset of tensor `name` in a .lamina image.
uint64_t TensorOffset(const std::vector<uint8_t>& img, const std::string& name) {
  format::FileHeader h;
  std::memcpy(&h, img.data(), sizeof(h));
  for (uint64_t i = 0; i < h.n_tensors; ++i) {
    format::TensorEntry t;
    std::memcpy(&t, img.data() + h.tensor_dir_offset + i * sizeof(t), sizeof(t));
    if (name == t.name) return t.offset;
  }
  ADD_FAILURE() << "no tensor " << name;
  return 0;
}

void PutF32(std::vector<uint8_t>* img, uint64_t off, float v) {
  std::memcpy(img->data() + off, &v, 4);
}

// A test model of `scheme` with one float patched at byte `delta` of tensor
// `tensor` (delta is in the packed layout: e.g. 64 = first group scale of a
// q4g row block, K*4 = first row scale of a q8c block).
std::string PatchedModel(const std::string& name, TestModelSpec spec, const std::string& tensor,
                         uint64_t delta, float v) {
  const std::string dir = TestDataDir("numeric");
  const std::string src = dir + "/" + name + "_src.lamina", dst = dir + "/" + name + ".lamina";
  std::string err;
  EXPECT_TRUE(WriteTestModel(spec, src, &err)) << err;
  std::vector<uint8_t> img = ReadFile(src);
  PutF32(&img, TensorOffset(img, tensor) + delta, v);
  WriteFile(dst, img);
  return dst;
}

struct Loaded {
  lamina_model* m = nullptr;
  lamina_context* c = nullptr;
  ~Loaded() {
    lamina_context_free(c);
    lamina_model_free(m);
  }
};

// Loads `path` (must succeed), evaluates `toks` in one call; returns the status.
lamina_status EvalOnce(Loaded* l, const std::string& path, const std::vector<int32_t>& toks) {
  EXPECT_EQ(lamina_model_load(path.c_str(), nullptr, &l->m), LAMINA_OK) << lamina_last_error();
  if (!l->m) return LAMINA_ERR_LOAD;
  lamina_context_params p = lamina_context_default_params();
  p.n_ctx = 64;
  p.n_threads = TestThreads(2);
  p.n_batch = 4;
  EXPECT_EQ(lamina_context_create(l->m, &p, &l->c), LAMINA_OK) << lamina_last_error();
  if (!l->c) return LAMINA_ERR_INTERNAL;
  return lamina_eval(l->c, toks.data(), toks.size());
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

TEST(EngineNumeric, CorruptQ4ScaleNamesTheLayer) {
  TestModelSpec s;
  s.scheme = "q4";
  s.q4_scales = "f32";  // the f32-scale layout: group 0's row-0 scale at byte 64
  s.n_layers = 3;
  // blk.1.ffn_down, row block 0, group 0: scale of row 0 at byte 64.
  const std::string path = PatchedModel("q4_scale_nan", s, "blk.1.ffn_down", 64, kNaN);
  Loaded l;
  // 6 tokens with n_batch 4: the first chunk already fails.
  EXPECT_EQ(EvalOnce(&l, path, {1, 2, 3, 4, 5, 6}), LAMINA_ERR_NUMERIC);
  const std::string e = lamina_last_error();
  EXPECT_NE(e.find("layer 1 "), std::string::npos) << e;
  EXPECT_NE(e.find("position 0"), std::string::npos) << e;
  EXPECT_EQ(lamina_n_past(l.c), 0);  // rewound: nothing cached
  EXPECT_EQ(lamina_get_logits(l.c), nullptr);
  EXPECT_STREQ(lamina_status_string(LAMINA_ERR_NUMERIC), "LAMINA_ERR_NUMERIC");
}

TEST(EngineNumeric, CorruptF32WeightInfAfterGoodTokensRewinds) {
  // An Inf in an f32 linear: the first eval fails at layer 0; the context
  // keeps what earlier successful calls cached.
  TestModelSpec s;
  s.scheme = "f32";
  const std::string path = PatchedModel("f32_inf", s, "blk.0.attn_v", 4 * 5, kInf);
  Loaded l;
  EXPECT_EQ(EvalOnce(&l, path, {7}), LAMINA_ERR_NUMERIC);
  EXPECT_NE(std::string(lamina_last_error()).find("layer 0 "), std::string::npos)
      << lamina_last_error();
  EXPECT_EQ(lamina_n_past(l.c), 0);
  // generate also reports it (not as an internal error)
  lamina_sampler* smp = nullptr;
  ASSERT_EQ(lamina_sampler_create(l.m, nullptr, &smp), LAMINA_OK);
  const int32_t prompt[2] = {3, 4};
  lamina_generate_result r;
  EXPECT_EQ(lamina_generate(l.c, smp, prompt, 2, 4, nullptr, nullptr, &r), LAMINA_ERR_NUMERIC);
  lamina_sampler_free(smp);
}

TEST(EngineNumeric, CorruptEmbeddingRowAndOutputLayer) {
  TestModelSpec s;
  s.scheme = "q4";  // q8c embedding and output layer
  s.tied = false;
  const uint64_t K = static_cast<uint64_t>(s.dim);  // q8c block: K*4 bytes, then 4 scales
  {
    // Scale of embedding row 5 (block 1, row 1): only token 5 is affected.
    const std::string path =
        PatchedModel("embd_nan", s, "tok_embd", (K * 4 + 32) + K * 4 + 4, kNaN);
    Loaded l;
    EXPECT_EQ(EvalOnce(&l, path, {1, 2}), LAMINA_OK) << lamina_last_error();
    EXPECT_EQ(lamina_eval(l.c, std::vector<int32_t>{3, 5}.data(), 2), LAMINA_ERR_NUMERIC);
    const std::string e = lamina_last_error();
    EXPECT_NE(e.find("token embedding"), std::string::npos) << e;
    EXPECT_NE(e.find("position 3 (token id 5)"), std::string::npos) << e;
    EXPECT_EQ(lamina_n_past(l.c), 2);  // the earlier call stays cached
    EXPECT_EQ(lamina_eval(l.c, std::vector<int32_t>{3, 4}.data(), 2), LAMINA_OK);
  }
  {
    const std::string path = PatchedModel("output_inf", s, "output", K * 4, kInf);
    Loaded l;
    EXPECT_EQ(EvalOnce(&l, path, {1, 2}), LAMINA_ERR_NUMERIC);
    EXPECT_NE(std::string(lamina_last_error()).find("logits"), std::string::npos)
        << lamina_last_error();
  }
}

TEST(EngineNumeric, CorruptNormWeightsFailAtLoad) {
  TestModelSpec s;
  s.scheme = "q4";
  for (const char* t : {"blk.1.attn_norm", "output_norm"}) {
    for (float v : {kNaN, -kInf}) {
      const std::string path = PatchedModel("norm", s, t, 4 * 3, v);
      lamina_model* m = nullptr;
      EXPECT_EQ(lamina_model_load(path.c_str(), nullptr, &m), LAMINA_ERR_LOAD);
      const std::string e = lamina_last_error();
      EXPECT_NE(e.find(std::string("tensor ") + t + ": element 3 is " + (v != v ? "NaN" : "Inf")),
                std::string::npos)
          << e;
      lamina_model_free(m);
    }
  }
}

TEST(EngineNumeric, LlamaRunExitsNonZeroOnCorruptWeights) {
  TestModelSpec s;
  s.scheme = "q4";
  s.q4_scales = "f32";  // group 0's row-0 scale at byte 64
  const std::string path = PatchedModel("cli", s, "blk.0.ffn_up", 64, kNaN);
  const std::string out = TestDataDir("numeric") + "/cli.out";
  const int rc = ::lamina::test::Run(Tool("llama-run") + " -m " + path +
                                     " --tokens 1,2,3 -n 4 --temp 0 >" + out + " 2>&1");
  EXPECT_NE(rc, 0);
  std::ifstream f(out);
  const std::string log((std::istreambuf_iterator<char>(f)), {});
  EXPECT_NE(log.find("LAMINA_ERR_NUMERIC"), std::string::npos) << log;
  EXPECT_NE(log.find("layer 0 "), std::string::npos) << log;
}

}  // namespace
}  // namespace lamina::test
