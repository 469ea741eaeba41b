// Self-calibration (tools/convert/self_calib.h): the sampled windows, their
// determinism, models without BOS or with a tiny context, and --quant auto's
// cost rule.
#include "tools/convert/self_calib.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "loader/format.h"
#include "tests/quality_test_util.h"
#include "tests/testutil.h"
#include "tools/convert/convert.h"

namespace lamina::convert {
namespace {

// A random llama2.c checkpoint (BOS 1, EOS 2, vocab 40) as an f32 .lamina.
std::string F32Model(const std::string& name, int32_t seq_len) {
  const std::string dir = test::TestDataDir("self_calib");
  const std::string bin = dir + "/" + name + ".bin", out = dir + "/" + name + ".lamina";
  EXPECT_TRUE(test::WriteLlama2cCheckpoint(bin, 7, seq_len));
  ConvertOptions o;
  o.weights = "f32";
  o.quiet = true;
  std::string err;
  EXPECT_TRUE(ConvertLlama2c(bin, out, o, &err)) << err;
  return out;
}

// Overwrites one u32 of the file's hparams (e.g. bos_id).
void PatchHParam(const std::string& path, size_t offset_in_hparams, uint32_t v) {
  FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(
      std::fseek(f, static_cast<long>(offsetof(format::FileHeader, hparams) + offset_in_hparams),
                 SEEK_SET),
      0);
  ASSERT_EQ(std::fwrite(&v, 4, 1, f), 1u);
  ASSERT_EQ(std::fclose(f), 0);
}

std::string WriteEmpty(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f) std::fclose(f);
  return path;
}

// A GGUF v3 file holding one [1 x 32] tensor of ggml type `type` (0 F32,
// 2 Q4_0) and no metadata.
bool WriteOneTensorGguf(const std::string& path, uint32_t type) {
  std::string b = "GGUF";
  auto u32 = [&](uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); };
  u32(3);
  u64(1);  // tensors
  u64(0);  // metadata
  u64(1);
  b += "w";
  u32(2);  // dims: 32, 1
  u64(32);
  u64(1);
  u32(type);
  u64(0);                                     // offset
  b.resize((b.size() + 31) / 32 * 32, '\0');  // alignment 32
  b.append(type == 0 ? 32 * 4 : 18, '\0');    // F32 or one Q4_0 block
  test::WriteFile(path, b);
  return test::FileExists(path);
}

TEST(SelfCalib, WindowsStartWithBosAreFullAndDeterministic) {
  const std::string m = F32Model("ctx128", 128);
  SelfCalibOptions o;
  o.n_tokens = 300;  // -> 3 windows of 128 (the model's context < 512)
  o.seed = 11;
  std::vector<int32_t> a, b, c;
  std::string err;
  ASSERT_TRUE(SampleCalibrationIds(m, 512, o, 2, true, &a, &err)) << err;
  ASSERT_TRUE(SampleCalibrationIds(m, 512, o, 1, true, &b, &err)) << err;
  ASSERT_EQ(a.size(), 3u * 128);
  EXPECT_EQ(a, b);  // the same seed, any thread count: the same tokens
  for (size_t w = 0; w < 3; ++w) EXPECT_EQ(a[w * 128], 1) << w;
  for (int32_t t : a) EXPECT_TRUE(t >= 0 && t < 40) << t;
  // A stop token is always followed by BOS (the next story).
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == 2 && (i + 1) % 128 != 0) {
      EXPECT_EQ(a[i + 1], 1) << i;
    }
  o.seed = 12;
  ASSERT_TRUE(SampleCalibrationIds(m, 512, o, 2, true, &c, &err)) << err;
  EXPECT_NE(a, c);
  // Windows of `window` tokens when the context is longer.
  o.n_tokens = 64;
  ASSERT_TRUE(SampleCalibrationIds(m, 32, o, 2, true, &c, &err)) << err;
  ASSERT_EQ(c.size(), 64u);
  EXPECT_EQ(c[0], 1);
  EXPECT_EQ(c[32], 1);
}

TEST(SelfCalib, ModelWithoutBosStartsWithADrawnToken) {
  const std::string m = F32Model("nobos", 64);
  PatchHParam(m, offsetof(format::HParams, bos_id), 0xFFFFFFFFu);
  SelfCalibOptions o;
  o.n_tokens = 128;
  std::vector<int32_t> ids;
  std::string err;
  ASSERT_TRUE(SampleCalibrationIds(m, 512, o, 2, true, &ids, &err)) << err;
  ASSERT_EQ(ids.size(), 128u);
  for (int32_t t : ids) EXPECT_TRUE(t >= 0 && t < 40) << t;
  // And GPTQ runs on them (no BOS to set).
  Q4Plan plan;
  CalibOptions co;
  co.quiet = true;
  ASSERT_TRUE(CalibrateGptqIds(m, ids, "self-generated calibration", co, &plan, &err)) << err;
  EXPECT_EQ(plan.size(), 2u * 7);
}

TEST(SelfCalibMalformed, ContextTooShortIsAClearError) {
  const std::string m = F32Model("ctx1", 1);
  SelfCalibOptions o;
  std::vector<int32_t> ids;
  std::string err;
  EXPECT_FALSE(SampleCalibrationIds(m, 512, o, 2, true, &ids, &err));
  EXPECT_NE(err.find("a context of 1 token(s) is too short"), std::string::npos) << err;
  EXPECT_NE(err.find(m), std::string::npos) << err;
}

// --quant auto: self-calibration for small float models, the search (with a
// note) where sampling would take long.
TEST(SelfCalib, AutoRuleByEstimatedCost) {
  ModelShape s260k{64, 5, 64, 32, 172, 512, 512};             // stories260K
  ModelShape l1b{2048, 16, 2048, 512, 8192, 128256, 131072};  // Llama 3.2 1B
  EXPECT_LT(EstimateSelfCalibSeconds(s260k, 2048, 512), kAutoSelfMaxSeconds);
  EXPECT_GT(EstimateSelfCalibSeconds(l1b, 2048, 512), 10 * kAutoSelfMaxSeconds);
  // More tokens cost more.
  EXPECT_LT(EstimateSelfCalibSeconds(s260k, 1024, 512), EstimateSelfCalibSeconds(s260k, 4096, 512));
  const std::string dir = test::TestDataDir("self_calib_auto");
  GptqSource g;
  g.copts.quiet = true;
  auto decide = [&](const std::string& input) {
    g.mode = GptqSource::Mode::kAuto;
    g.DecideByInput(input);
    return g.mode;
  };
  // 1 MiB of llama2.c: decided later, on the float model.
  ASSERT_TRUE(test::WriteLlama2cCheckpoint(dir + "/small.bin", 1));
  EXPECT_EQ(decide(dir + "/small.bin"), GptqSource::Mode::kAuto);
  // 2.5 GB (a 1B bf16 checkpoint's size; sparse): certainly too big.
  const std::string big = dir + "/big.bin";
  ASSERT_EQ(::truncate(WriteEmpty(big).c_str(), int64_t{2500} << 20), 0);
  EXPECT_EQ(decide(big), GptqSource::Mode::kNone);
  // A GGUF with a Q4_0 tensor: pre-quantized, kept.
  const std::string q4 = dir + "/q4_0.gguf";
  ASSERT_TRUE(WriteOneTensorGguf(q4, 2));  // 2 = Q4_0
  EXPECT_EQ(decide(q4), GptqSource::Mode::kNone);
  ASSERT_TRUE(WriteOneTensorGguf(q4, 0));  // F32
  EXPECT_EQ(decide(q4), GptqSource::Mode::kAuto);
  // On the float model: the small one is self-calibrated.
  g.mode = GptqSource::Mode::kAuto;
  std::string err;
  ASSERT_TRUE(g.Decide(F32Model("auto", 128), &err)) << err;
  EXPECT_EQ(g.mode, GptqSource::Mode::kSelf);
  EXPECT_STREQ(g.method(), "self");
  ::unlink(big.c_str());
}

}  // namespace
}  // namespace lamina::convert
