// Non-finite weights in checkpoints (issue 11, finding 3): every float path
// of the converters (convert_common.cpp EmitMatrix / EmitVector, every output
// dtype) refuses a NaN or Inf with an error naming the tensor and the first
// bad (row, col); lamina-convert exits non-zero and leaves no output. Inputs:
// direct emission, a llama2.c .bin, a GGUF, an HF safetensors directory and a
// Meta bf16 checkpoint, each with one value patched.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "loader/model_writer.h"
#include "loader/pack.h"
#include "tests/testutil.h"
#include "tools/convert/convert.h"
#include "tools/convert/convert_util.h"
#include "tools/convert/meta_test_util.h"
#include "tools/convert/pth_reader.h"
#include "tools/import/json.h"

namespace lamina {
namespace {

using convert::ConvertOptions;
using convert::Role;

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

ConvertOptions Opts(const std::string& scheme) {
  ConvertOptions o;
  o.weights = scheme;
  o.quiet = true;
  return o;
}

TEST(ConvertCorrupt, NonFiniteFloatsEveryScheme) {
  const std::string dir = test::TestDataDir("convert_nonfinite");
  for (const char* scheme : {"f32", "bf16", "q8", "q4"})
    for (float bad : {kNaN, kInf, -kInf})
      for (Role role : {Role::kLinear, Role::kEmbedding, Role::kLora}) {
        SCOPED_TRACE(std::string(scheme) + " " + std::to_string(bad));
        const uint64_t N = 37, K = 45;
        std::vector<float> v(N * K, 0.25f);
        v[29 * K + 44] = bad;  // row 29 (chunk tail block), col 44 (last group's tail)
        v[30 * K + 0] = bad;   // a later one is not reported
        ModelWriter w;
        std::string err;
        ASSERT_TRUE(w.Open(dir + "/m.lamina", &err)) << err;
        EXPECT_FALSE(convert::EmitFloatTensor(w, "blk.3.ffn_up", role, v.data(), {N, K},
                                              Opts(scheme), &err));
        EXPECT_NE(err.find(std::string("tensor blk.3.ffn_up: ") + (bad != bad ? "NaN" : "Inf") +
                           " at [29, 44]"),
                  std::string::npos)
            << err;
      }
  // Vectors (norms): EmitVector.
  ModelWriter w;
  std::string err;
  ASSERT_TRUE(w.Open(dir + "/v.lamina", &err)) << err;
  std::vector<float> n(64, 1.f);
  n[63] = -kInf;
  EXPECT_FALSE(
      convert::EmitFloatTensor(w, "output_norm", Role::kNorm, n.data(), {64}, Opts("q4"), &err));
  EXPECT_NE(err.find("tensor output_norm: Inf at [0, 63]"), std::string::npos) << err;
}

TEST(ConvertCorrupt, QuantizersNeverCastNonFinite) {
  // pack's quantizers define non-finite input (q = 0, scale NaN) rather than
  // casting NaN to int8 (UB); the converter refuses such input before them.
  std::vector<float> w(32, 0.5f);
  std::vector<int8_t> q(32, 9);
  for (float bad : {kNaN, kInf, -kInf}) {
    w[7] = bad;
    EXPECT_TRUE(std::isnan(pack::QuantizeGroupQ4(w.data(), 32, q.data())));
    for (int8_t x : q) EXPECT_EQ(x, 0);
    std::fill(q.begin(), q.end(), 9);
    EXPECT_TRUE(std::isnan(pack::QuantizeRowQ8(w.data(), 32, q.data())));
    for (int8_t x : q) EXPECT_EQ(x, 0);
  }
  w[7] = 3e38f;  // finite extremes still quantize
  EXPECT_TRUE(std::isfinite(pack::QuantizeRowQ8(w.data(), 32, q.data())));
  EXPECT_EQ(q[7], 127);
}

// Converts `in` with the lamina-convert CLI; expects failure, `needle` in its
// output and no output file.
void ExpectCliRefuses(const std::string& in, const std::string& needle,
                      const std::string& extra = "") {
  const std::string out = in + ".out.lamina", log = in + ".log";
  ::unlink(out.c_str());
  const int rc = test::Run(test::Tool("lamina-convert") + " '" + in + "' -o '" + out + "' " +
                           extra + " >'" + log + "' 2>&1");
  EXPECT_NE(rc, 0);
  const auto l = test::ReadFileBytes(log);
  const std::string text(l.begin(), l.end());
  EXPECT_NE(text.find(needle), std::string::npos) << text;
  EXPECT_FALSE(test::FileExists(out));
  EXPECT_FALSE(test::FileExists(out + ".tmp"));
}

TEST(ConvertCorrupt, Llama2cBinWithNaN) {
  LAMINA_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  auto v = test::ReadFileBytes(test::SharedDir() + "/models/stories260K/stories260K.bin");
  int32_t dim;
  std::memcpy(&dim, v.data(), 4);
  // The token embedding table follows the 28-byte header: row 5, column 3.
  std::memcpy(v.data() + 28 + 4 * (5 * dim + 3), &kNaN, 4);
  const std::string in = test::TestDataDir("convert_nonfinite") + "/nan260.bin";
  test::WriteFileBytes(in, v);
  for (const char* scheme : {"q4", "f32"}) {
    std::string err;
    EXPECT_FALSE(convert::ConvertLlama2c(in, in + ".lamina", Opts(scheme), &err));
    EXPECT_NE(err.find("tensor tok_embd: NaN at [5, 3]"), std::string::npos) << err;
  }
  ExpectCliRefuses(in, "tensor tok_embd: NaN at [5, 3]");
}

TEST(ConvertCorrupt, HfSafetensorsWithInf) {
  LAMINA_REQUIRE_TORCH();
  const auto src = test::ReadFileBytes(test::SourceDir() + "/tests/gen_hf_model.py");
  const std::string root =
      test::GenerateOnce("convert_nonfinite", std::string(src.begin(), src.end()),
                         test::Python() + " '" + test::SourceDir() +
                             "/tests/gen_hf_model.py' {OUT} --variants tied_bf16 >/dev/null");
  ASSERT_FALSE(root.empty()) << "tests/gen_hf_model.py failed";
  const std::string dir = test::TestDataDir("convert_nonfinite") + "/hf_inf";
  ASSERT_EQ(test::Run("rm -rf '" + dir + "' && cp -r '" + root + "/tied_bf16' '" + dir + "'"), 0);
  // Locate mlp.up_proj of layer 1 in the safetensors header; set bf16 element
  // (row 2, col 7) to +Inf (0x7f80).
  auto st = test::ReadFileBytes(dir + "/model.safetensors");
  uint64_t hlen;
  std::memcpy(&hlen, st.data(), 8);
  json::Value h;
  std::string err;
  ASSERT_TRUE(
      json::Parse(std::string_view(reinterpret_cast<const char*>(st.data()) + 8, hlen), &h, &err))
      << err;
  const json::Value* t = h.Find("model.layers.1.mlp.up_proj.weight");
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->Find("dtype")->as_string(), "BF16");
  int64_t begin, K;
  ASSERT_TRUE(t->Find("data_offsets")->items()[0].as_int64(&begin));
  ASSERT_TRUE(t->Find("shape")->items()[1].as_int64(&K));
  const uint16_t inf_bf16 = 0x7f80;
  std::memcpy(st.data() + 8 + hlen + begin + 2 * (2 * K + 7), &inf_bf16, 2);
  test::WriteFileBytes(dir + "/model.safetensors", st);
  EXPECT_FALSE(convert::ConvertHf(dir, dir + ".lamina", Opts("q4"), &err));
  EXPECT_NE(err.find("tensor blk.1.ffn_up: Inf at [2, 7]"), std::string::npos) << err;
  ExpectCliRefuses(dir, "tensor blk.1.ffn_up: Inf at [2, 7]", "--weights bf16");
}

TEST(ConvertCorrupt, MetaBf16CheckpointWithNaN) {
  LAMINA_REQUIRE_TORCH();
  const auto src = test::ReadFileBytes(test::SourceDir() + "/tests/gen_meta_checkpoint.py");
  const std::string root = test::GenerateOnce(
      "meta", std::string(src.begin(), src.end()),
      test::Python() + " " + test::SourceDir() +
          "/tests/gen_meta_checkpoint.py --out {OUT} --flavour bf16  >/dev/null");
  ASSERT_FALSE(root.empty()) << "tests/gen_meta_checkpoint.py failed";
  const std::string dir = test::TestDataDir("convert_nonfinite") + "/meta_nan";
  ASSERT_EQ(test::Run("rm -rf '" + dir + "' && cp -r '" + root + "' '" + dir + "'"), 0);
  const std::string pth = dir + "/consolidated.00.pth";
  auto bytes = test::ReadFileBytes(pth);
  uint64_t off = 0, K = 0;
  {
    pth::StateDict sd;
    std::string err;
    ASSERT_TRUE(sd.OpenMemory(bytes.data(), bytes.size(), "c.pth", &err)) << err;
    const pth::Tensor* t = sd.Find("layers.0.feed_forward.w3.weight");
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->dtype, pth::DType::kBF16);
    off = static_cast<uint64_t>(t->data - bytes.data());
    K = static_cast<uint64_t>(t->shape[1]);
  }
  const uint16_t nan_bf16 = 0x7fc0;
  std::memcpy(bytes.data() + off + 2 * (4 * K + 1), &nan_bf16, 2);  // row 4, col 1
  test::WriteFileBytes(pth, bytes);
  std::string err;
  EXPECT_FALSE(convert::ConvertMeta(dir, dir + ".lamina", Opts("q8"), &err));
  EXPECT_NE(err.find("tensor blk.0.ffn_up: NaN at [4, 1]"), std::string::npos) << err;
  ExpectCliRefuses(dir, "tensor blk.0.ffn_up: NaN at [4, 1]");
}

}  // namespace
}  // namespace lamina
