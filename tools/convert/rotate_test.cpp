// Hadamard rotations (rotate.h): the block Hadamards are orthogonal (and the
// unsigned one is the engine's online transform), and a rotated f32 model
// computes the original logits (to 1e-4) for each rotation and combination,
// untied and tied; bad inputs are clear errors.
#include "tools/convert/rotate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "kernels/ref/ref.h"
#include "loader/model_file.h"
#include "tests/engine_test_models.h"
#include "tests/quality_test_util.h"
#include "tests/testutil.h"

namespace lamina::convert {
namespace {

TEST(Rotate, ParseRotations) {
  Rotations r;
  std::string err;
  ASSERT_TRUE(ParseRotations("all", &r, &err));
  EXPECT_TRUE(r.r1 && r.r2 && r.r4);
  EXPECT_EQ(RotationsTag(r), "r124");
  ASSERT_TRUE(ParseRotations("none", &r, &err));
  EXPECT_FALSE(r.any());
  EXPECT_EQ(RotationsTag(r), "");
  ASSERT_TRUE(ParseRotations("r4,r1", &r, &err));
  EXPECT_TRUE(r.r1 && !r.r2 && r.r4);
  EXPECT_EQ(RotationsTag(r), "r14");
  EXPECT_FALSE(ParseRotations("r3", &r, &err));
  EXPECT_NE(err.find("'r3'"), std::string::npos);
  EXPECT_FALSE(ParseRotations("r1,", &r, &err));
  EXPECT_FALSE(ParseRotations("", &r, &err));
}

TEST(Rotate, BlockHadamardIsOrthogonal) {
  for (int n : {64, 96, 12, 7}) {
    const BlockHadamard R(n, 42);
    EXPECT_EQ(R.block(), n & -n) << n;
    // Rows of R: e_i R. R R^T = I.
    std::vector<std::vector<float>> rows(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      rows[i].assign(static_cast<size_t>(n), 0.0f);
      rows[i][i] = 1;
      R.Apply(rows[i].data());
    }
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double dot = 0;
        for (int k = 0; k < n; ++k) dot += static_cast<double>(rows[i][k]) * rows[j][k];
        EXPECT_NEAR(dot, i == j ? 1.0 : 0.0, 1e-6) << n << " " << i << " " << j;
      }
  }
  // Unsigned, one block: the engine's online transform (kernels/ref).
  const BlockHadamard H(256, 0);
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(256);
  std::vector<float> y(256);
  for (int i = 0; i < 256; ++i) y[i] = x[i] = nd(g);
  H.Apply(y.data());
  ref::Hadamard(x.data(), 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], x[i]) << i;  // the same arithmetic
}

// A random float Llama model (tests/engine_test_models.h): dim 96 (blocks of
// 32: R1 is block-diagonal), 6 heads of 16, 2 kv heads, ffn 256 (R4), 2
// layers, norm gains 1 +- 0.1 (the folding matters).
bool WriteToyModel(const std::string& path, bool tied, int ffn, std::string* err) {
  test::TestModelSpec s;
  s.dim = 96;
  s.n_heads = 6;
  s.n_kv_heads = 2;
  s.ffn = ffn;
  s.vocab = 300;
  s.tied = tied;
  s.seed = 7;
  return test::WriteTestModel(s, path, err);
}

// Logits of every position of a fixed token sequence (f32 KV cache).
std::vector<float> Logits(const std::string& path) {
  std::string err;
  auto m = engine::Model::Load(path, engine::ModelOptions{}, &err);
  EXPECT_TRUE(m) << err;
  if (!m) return {};
  engine::ContextOptions co;
  co.n_ctx = 64;
  co.n_batch = 32;
  co.n_threads = 1;
  co.logits_all = true;
  co.kv_type = kern::KvType::kF32;
  auto ctx = engine::Context::Create(*m, co, &err);
  EXPECT_TRUE(ctx) << err;
  if (!ctx) return {};
  std::vector<int32_t> toks = {1, 5, 17, 33, 2, 60, 9, 9, 41, 12, 3, 50};
  for (int32_t& t : toks) t %= m->config().vocab;
  EXPECT_EQ(ctx->Eval(toks.data(), static_cast<int>(toks.size()), &err), engine::EvalStatus::kOk)
      << err;
  std::vector<float> out;
  for (int i = 0; i < ctx->n_logits(); ++i)
    out.insert(out.end(), ctx->logits_row(i), ctx->logits_row(i) + m->config().vocab);
  return out;
}

TEST(Rotate, RotatedF32ModelKeepsLogits) {
  const std::string dir = test::TestDataDir("rotate");
  for (bool tied : {false, true}) {
    const std::string base = dir + (tied ? "/tied.lamina" : "/untied.lamina");
    std::string err;
    ASSERT_TRUE(WriteToyModel(base, tied, 256, &err)) << err;
    const std::vector<float> ref = Logits(base);
    ASSERT_EQ(ref.size(), 12u * 300u);
    float amax = 0;
    for (float v : ref) amax = std::max(amax, std::fabs(v));
    ASSERT_GT(amax, 1.0f);  // not a degenerate model
    for (const char* spec : {"r1", "r2", "r4", "r1,r2", "all"}) {
      Rotations rot;
      ASSERT_TRUE(ParseRotations(spec, &rot, &err));
      ConvertOptions o;
      o.weights = "f32";
      o.quiet = true;
      const std::string out = dir + "/rot.lamina";
      ASSERT_TRUE(RewriteF32Model(base, out, o, rot, 1, "f32+" + RotationsTag(rot), &err))
          << spec << ": " << err;
      const std::vector<float> got = Logits(out);
      ASSERT_EQ(got.size(), ref.size());
      double worst = 0;
      for (size_t i = 0; i < ref.size(); ++i)
        worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - ref[i]));
      EXPECT_LT(worst, 1e-4) << spec << (tied ? " tied" : "");
      // The weights did change, and the file says what was done.
      auto mf = ModelFile::Open(out, LoadOptions{}, &err);
      ASSERT_TRUE(mf) << err;
      const format::TensorEntry* down = mf->Find("blk.0.ffn_down");
      ASSERT_TRUE(down);
      EXPECT_EQ((down->flags & format::kTensorHadamardInput) != 0, rot.r4) << spec;
      EXPECT_EQ(mf->tied_embeddings(), tied && !rot.r1) << spec;
      const format::TensorEntry* norm = mf->Find("blk.1.ffn_norm");
      ASSERT_TRUE(norm);
      EXPECT_EQ(reinterpret_cast<const float*>(mf->Data(*norm))[5] == 1.0f, rot.r1) << spec;
      EXPECT_EQ(std::string(mf->header().weight_scheme), "f32+" + RotationsTag(rot));
    }
  }
}

// q4 after rotation: a valid model, still close to the float one (the
// rotations change the weights the quantizer sees, not the function).
TEST(Rotate, RotatedQ4ModelStaysClose) {
  const std::string dir = test::TestDataDir("rotate_q4");
  const std::string base = dir + "/base.lamina", out = dir + "/q4.lamina";
  std::string err;
  ASSERT_TRUE(WriteToyModel(base, false, 256, &err)) << err;
  const std::vector<float> ref = Logits(base);
  Rotations rot;
  ASSERT_TRUE(ParseRotations("all", &rot, &err));
  ConvertOptions o;
  o.quiet = true;
  ASSERT_TRUE(RewriteF32Model(base, out, o, rot, 1, "q4+r124", &err)) << err;
  auto mf = ModelFile::Open(out, LoadOptions{}, &err);
  ASSERT_TRUE(mf) << err;
  EXPECT_EQ(mf->Find("blk.0.attn_q")->dtype, static_cast<uint32_t>(format::DType::kQ4G));
  const std::vector<float> got = Logits(out);
  ASSERT_EQ(got.size(), ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  EXPECT_LT(std::sqrt(num / den), 0.2);  // int4 noise, not a broken graph
}

TEST(RotateMalformed, PreQuantizedAndUnsupportedShapes) {
  const std::string dir = test::TestDataDir("rotate_bad");
  std::string err;
  // ffn 160: no online Hadamard.
  const std::string odd = dir + "/odd.lamina";
  ASSERT_TRUE(WriteToyModel(odd, false, 160, &err)) << err;
  Rotations r4;
  ASSERT_TRUE(ParseRotations("r4", &r4, &err));
  ConvertOptions f32;
  f32.weights = "f32";
  f32.quiet = true;
  EXPECT_FALSE(RewriteF32Model(odd, dir + "/x.lamina", f32, r4, 1, "f32", &err));
  EXPECT_NE(err.find("power-of-two ffn_dim"), std::string::npos) << err;
  EXPECT_FALSE(test::FileExists(dir + "/x.lamina"));
  // A quantized model cannot be rotated (nor rewritten).
  ConvertOptions q4;
  q4.quiet = true;
  const std::string q = dir + "/q4.lamina";
  ASSERT_TRUE(RewriteF32Model(odd, q, q4, Rotations{}, 1, "q4", &err)) << err;
  std::string why;
  EXPECT_FALSE(IsPlainF32Model(q, &why));
  EXPECT_NE(why.find("pre-quantized"), std::string::npos) << why;
  Rotations r1;
  ASSERT_TRUE(ParseRotations("r1", &r1, &err));
  EXPECT_FALSE(RewriteF32Model(q, dir + "/y.lamina", f32, r1, 1, "f32", &err));
  EXPECT_NE(err.find("pre-quantized"), std::string::npos) << err;
  EXPECT_FALSE(
      RewriteF32Model(dir + "/missing.lamina", dir + "/z.lamina", f32, r1, 1, "f32", &err));
}

// The CLI: --rotate on a float input (the "tiny" synthetic preset goes
// through the float path), what --info says, and the errors.
TEST(RotateCli, SyntheticTinyRotatedAndInfo) {
  const std::string dir = test::TestDataDir("rotate_cli");
  const std::string out = dir + "/r.lamina", info = dir + "/r.info", e = dir + "/err.txt";
  ASSERT_EQ(test::Run(test::Tool("lamina-convert") +
                      " --synthetic tiny-tied -q --rotate r1,r2 -o " + out),
            0);
  ASSERT_EQ(test::Run(test::Tool("lamina-convert") + " --info " + out + " > " + info), 0);
  const std::string s = test::Slurp(info);
  EXPECT_NE(s.find("scheme 'q4-search+r12'"), std::string::npos) << s;
  EXPECT_NE(s.find("rotations: R1 (residual stream, fused), R2 (per head on v/o, fused)"),
            std::string::npos)
      << s;
  EXPECT_EQ(s.find("tied embeddings"), std::string::npos) << s;  // R1 unties
  // The default for --synthetic: no rotation.
  ASSERT_EQ(test::Run(test::Tool("lamina-convert") + " --synthetic tiny -q -o " + out), 0);
  ASSERT_EQ(test::Run(test::Tool("lamina-convert") + " --info " + out + " > " + info), 0);
  EXPECT_NE(test::Slurp(info).find("rotations: none"), std::string::npos) << test::Slurp(info);
  // tiny's ffn_dim 160: no R4; a bad list is a usage error.
  EXPECT_EQ(test::Run(test::Tool("lamina-convert") + " --synthetic tiny -q --rotate r4 -o " + out +
                      " 2> " + e),
            1);
  EXPECT_NE(test::Slurp(e).find("power-of-two ffn_dim"), std::string::npos) << test::Slurp(e);
  EXPECT_EQ(test::Run(test::Tool("lamina-convert") + " --synthetic tiny -q --rotate r5 -o " + out +
                      " 2> " + e),
            2);
  EXPECT_NE(test::Slurp(e).find("unknown rotation 'r5'"), std::string::npos) << test::Slurp(e);
  EXPECT_FALSE(test::FileExists(out + ".rot-f32.tmp"));
}

// The header probe that spares non-power-of-two inputs the f32 pass.
TEST(Rotate, InputMayTakeR4ReadsTheDeclaredFfnDim) {
  const std::string dir = test::TestDataDir("rotate_probe");
  ASSERT_TRUE(test::WriteLlama2cCheckpoint(dir + "/a.bin", 1, 128, 256));
  ASSERT_TRUE(test::WriteLlama2cCheckpoint(dir + "/b.bin", 1, 128, 160));
  EXPECT_TRUE(InputMayTakeR4(dir + "/a.bin"));
  EXPECT_FALSE(InputMayTakeR4(dir + "/b.bin"));
  for (int ffn : {8192, 5632}) {
    const std::string hf = dir + "/hf" + std::to_string(ffn);
    ASSERT_EQ(test::Run("mkdir -p " + hf), 0);
    test::WriteFile(hf + "/config.json",
                    "{\"hidden_size\": 2048, \"intermediate_size\": " + std::to_string(ffn) + "}");
    EXPECT_EQ(InputMayTakeR4(hf), ffn == 8192) << ffn;
  }
  // GGUF: llama.feed_forward_length, and no default R4 for quantized tensors.
  auto gguf = [&](const std::string& name, uint32_t ffn, uint32_t type, size_t data_bytes) {
    std::string b = "GGUF";
    auto put = [&b](const void* p, size_t n) { b.append(static_cast<const char*>(p), n); };
    auto u32 = [&](uint32_t v) { put(&v, 4); };
    auto u64 = [&](uint64_t v) { put(&v, 8); };
    auto str = [&](const std::string& v) {
      u64(v.size());
      b += v;
    };
    u32(3);  // version
    u64(1);  // tensors
    u64(1);  // key/values
    str("llama.feed_forward_length");
    u32(4);  // u32
    u32(ffn);
    str("output_norm.weight");
    u32(1);   // dims
    u64(32);  // 32 elements
    u32(type);
    u64(0);  // offset
    b.resize((b.size() + 31) / 32 * 32, '\0');
    b.append(data_bytes, '\0');
    test::WriteFile(dir + "/" + name, b);
    return dir + "/" + name;
  };
  EXPECT_TRUE(InputMayTakeR4(gguf("f32_8192.gguf", 8192, 0, 128)));  // F32
  EXPECT_FALSE(InputMayTakeR4(gguf("f32_5632.gguf", 5632, 0, 128)));
  EXPECT_FALSE(InputMayTakeR4(gguf("q4_0_8192.gguf", 8192, 2, 18)));  // Q4_0: one block
  // Unknown: the conversion finds out (and reports what is wrong).
  EXPECT_TRUE(InputMayTakeR4(dir + "/missing"));
  ASSERT_EQ(test::Run("mkdir -p " + dir + "/empty"), 0);
  EXPECT_TRUE(InputMayTakeR4(dir + "/empty"));
  test::WriteFile(dir + "/short.bin", "abc");
  EXPECT_TRUE(InputMayTakeR4(dir + "/short.bin"));
}

// The default (no --rotate): R4 on a float input that lamina-convert
// quantizes to q4 when ffn_dim is a power of two, and that model stays close
// to the f32 one; with ffn_dim 160, or --weights q8, nothing is rotated (the
// file is --rotate none's, byte for byte).
TEST(RotateCli, DefaultR4OnlyForPowerOfTwoFfn) {
  const std::string dir = test::TestDataDir("rotate_default");
  const std::string cvt = test::Tool("lamina-convert") + " -q ";
  for (int ffn : {256, 160}) {
    const std::string tag = dir + "/ffn" + std::to_string(ffn);
    const std::string bin = tag + ".bin", def = tag + "_default.lamina",
                      none = tag + "_none.lamina", f32 = tag + "_f32.lamina", info = tag + ".info";
    ASSERT_TRUE(test::WriteLlama2cCheckpoint(bin, 5, 128, ffn));
    ASSERT_EQ(test::Run(cvt + bin + " -o " + def), 0);
    ASSERT_EQ(test::Run(cvt + bin + " --rotate none -o " + none), 0);
    ASSERT_EQ(test::Run(cvt + bin + " --weights f32 -o " + f32), 0);
    const bool pow2 = ffn == 256;
    std::string err;
    {
      auto mf = ModelFile::Open(def, LoadOptions{}, &err);
      ASSERT_TRUE(mf) << err;
      for (const char* n : {"blk.0.ffn_down", "blk.1.ffn_down"}) {
        const format::TensorEntry* down = mf->Find(n);
        ASSERT_TRUE(down) << n;
        EXPECT_EQ((down->flags & format::kTensorHadamardInput) != 0, pow2) << ffn << " " << n;
      }
      const std::string scheme(mf->header().weight_scheme);
      EXPECT_EQ(scheme.find("+r4") != std::string::npos, pow2) << scheme;
      EXPECT_EQ(scheme.rfind("q4-", 0), 0u) << scheme;
    }
    ASSERT_EQ(test::Run(test::Tool("lamina-convert") + " --info " + def + " > " + info), 0);
    EXPECT_NE(test::Slurp(info).find(pow2 ? "rotations: R4 (online Hadamard before ffn_down); "
                                            "online Hadamard on 2 ffn_down"
                                          : "rotations: none; online Hadamard on 0 ffn_down"),
              std::string::npos)
        << test::Slurp(info);
    EXPECT_FALSE(test::FileExists(def + ".rot-f32.tmp"));
    if (!pow2) {
      EXPECT_EQ(test::Slurp(def), test::Slurp(none));
      continue;
    }
    EXPECT_NE(test::Slurp(def), test::Slurp(none));
    // Close to the float model: int4 noise, not a broken graph (R4 is exact
    // in f32: Rotate.RotatedF32ModelKeepsLogits).
    const std::vector<float> ref = Logits(f32);
    ASSERT_FALSE(ref.empty());
    auto rel_err = [&](const std::string& path) {
      const std::vector<float> got = Logits(path);
      EXPECT_EQ(got.size(), ref.size()) << path;
      double num = 0, den = 0;
      for (size_t i = 0; i < ref.size() && i < got.size(); ++i) {
        num += (got[i] - ref[i]) * (got[i] - ref[i]);
        den += ref[i] * ref[i];
      }
      return std::sqrt(num / den);
    };
    const double e_def = rel_err(def), e_none = rel_err(none);
    std::printf("relative logit error vs f32: default (r4) %.4f, --rotate none %.4f\n", e_def,
                e_none);
    // Measured on this random model (uniform weights): 0.097 vs 0.115 with
    // --quant auto (self-calibrated GPTQ), 0.223 vs 0.211 with the search; a
    // wrong rotation gives errors of order 1.
    EXPECT_GT(e_def, 0.0);
    EXPECT_LT(e_def, 0.3);
    EXPECT_LT(e_def, 1.25 * e_none);
    // q8 weights: no default rotation.
    const std::string q8 = tag + "_q8.lamina", q8none = tag + "_q8none.lamina";
    ASSERT_EQ(test::Run(cvt + bin + " --weights q8 -o " + q8), 0);
    ASSERT_EQ(test::Run(cvt + bin + " --weights q8 --rotate none -o " + q8none), 0);
    EXPECT_EQ(test::Slurp(q8), test::Slurp(q8none));
  }
}

}  // namespace
}  // namespace lamina::convert
