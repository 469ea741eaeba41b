// lamina-convert --lora-adapter (tools/convert/lora_convert.cpp): what a PEFT
// adapter directory may hold, and every refusal naming its cause; the CLI
// flags of lamina-convert and llama-run --lora (adapter file or PEFT
// directory, --lora-scale).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "loader/model_file.h"
#include "tests/lora_test_util.h"

namespace lamina::test {
namespace {

class LoraConvert : public ::testing::Test {
 protected:
  void SetUp() override {
    LAMINA_REQUIRE_TORCH();
    dir_ = TestDataDir("lora_convert");
    hf_ = dir_ + "/tied_bf16";
    ASSERT_TRUE(GenHfModel(dir_, "tied_bf16"));
    base_ = dir_ + "/base.q4.lamina";
    std::string err;
    ASSERT_TRUE(ConvertBase(hf_, base_, "q4", &err)) << err;
  }
  std::string dir_, hf_, base_;
};

TEST_F(LoraConvert, MalformedPeftAdaptersAreRefused) {
  struct Case {
    const char* defect;
    const char* what;
  } cases[] = {
      {"unknown_module", "target module \"lm_head\" is not supported"},
      {"unknown_tensor",
       "tensor base_model.model.lm_head.lora_A.weight: not a LoRA A/B weight of q/k/v/o/gate/up/"
       "down_proj"},
      {"wrong_shape",
       "tensor base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight: shape [4, 65], "
       "expected [4, 64]"},
      {"extra_layer", "layers.2.self_attn.v_proj.lora_A.weight: layer 2 does not exist"},
      {"nan", "layers.0.self_attn.v_proj.lora_B.weight: element 3 is NaN or Inf"},
      {"rank_pattern", "rank_pattern / alpha_pattern"},
      {"half_pair", "layers.0.self_attn.q_proj.lora_A.weight: its lora_B is missing"},
      {"dora", "DoRA adapters are not supported"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.defect);
    const std::string peft = dir_ + "/peft_" + c.defect;
    ASSERT_TRUE(GenPeft(hf_, peft, std::string("--defect ") + c.defect));
    std::string err;
    EXPECT_FALSE(ConvertAdapter(peft, base_, dir_ + "/bad.lamina", &err));
    EXPECT_NE(err.find(c.what), std::string::npos) << "want '" << c.what << "' in: " << err;
    EXPECT_FALSE(FileExists(dir_ + "/bad.lamina"));
  }
  // No safetensors; -m an adapter; a corrupt config.
  const std::string peft = dir_ + "/peft_ok";
  ASSERT_TRUE(GenPeft(hf_, peft, ""));
  std::string err;
  ASSERT_TRUE(ConvertAdapter(peft, base_, dir_ + "/ok.lamina", &err)) << err;
  EXPECT_FALSE(ConvertAdapter(peft, dir_ + "/ok.lamina", dir_ + "/bad.lamina", &err));
  EXPECT_NE(err.find("this is an adapter file"), std::string::npos) << err;
  EXPECT_FALSE(ConvertAdapter(hf_, base_, dir_ + "/bad.lamina", &err));
  EXPECT_NE(err.find("adapter_config.json"), std::string::npos) << err;
  std::ofstream(peft + "/adapter_config.json") << "{\"r\": 4, \"lora_alpha\": ";
  EXPECT_FALSE(ConvertAdapter(peft, base_, dir_ + "/bad.lamina", &err));
  EXPECT_NE(err.find("adapter_config.json: invalid JSON: line 1"), std::string::npos) << err;
  std::ofstream(peft + "/adapter_config.json") << "{\"r\": 0, \"lora_alpha\": 8}";
  EXPECT_FALSE(ConvertAdapter(peft, base_, dir_ + "/bad.lamina", &err));
  EXPECT_NE(err.find("r missing or not in 1..1024"), std::string::npos) << err;
}

// A truncated adapter_model.safetensors is refused, never read past its end.
TEST_F(LoraConvert, TruncatedSafetensorsAreRefused) {
  const std::string peft = dir_ + "/peft_trunc";
  ASSERT_TRUE(GenPeft(hf_, peft, ""));
  const std::vector<char> b = ReadAll(peft + "/adapter_model.safetensors");
  for (size_t n : {size_t{4}, size_t{100}, b.size() / 2, b.size() - 1}) {
    std::ofstream(peft + "/adapter_model.safetensors", std::ios::binary).write(b.data(), n);
    std::string err;
    EXPECT_FALSE(ConvertAdapter(peft, base_, dir_ + "/bad.lamina", &err)) << n;
    EXPECT_NE(err.find("adapter_model.safetensors"), std::string::npos) << err;
  }
}

// The file: kFlagAdapter, the base's hparams with rank and alpha / r, the
// values as stored, q/k B rows permuted to the interleaved RoPE order.
TEST_F(LoraConvert, AdapterFileLayout) {
  const std::string peft = dir_ + "/peft_layout";
  ASSERT_TRUE(GenPeft(hf_, peft, "--dtype f32 --r 4 --alpha 6 --targets q_proj,v_proj"));
  const std::string out = dir_ + "/layout.lamina";
  std::string err;
  ASSERT_TRUE(ConvertAdapter(peft, base_, out, &err)) << err;
  auto f = ModelFile::Open(out, LoadOptions{}, &err);
  ASSERT_TRUE(f) << err;
  auto b = ModelFile::Open(base_, LoadOptions{}, &err);
  ASSERT_TRUE(b) << err;
  EXPECT_TRUE(f->is_adapter());
  EXPECT_EQ(f->header().base_binding, b->AdapterBinding());
  EXPECT_EQ(f->hparams().lora_rank, 4u);
  EXPECT_EQ(f->hparams().lora_scale, 1.5f);
  EXPECT_EQ(f->hparams().dim, b->hparams().dim);
  EXPECT_EQ(f->n_tensors(), 2u * 2u * 2u);  // 2 layers x {q, v} x {A, B}
  // v's B is copied; q's B rows: interleaved row (h, 2j + t) = HF row (h, t*hd/2 + j).
  const std::vector<char> st = ReadAll(peft + "/adapter_model.safetensors");
  uint64_t hl;
  std::memcpy(&hl, st.data(), 8);
  const std::string hdr(st.data() + 8, hl);
  auto src = [&](const std::string& key) {
    const size_t p = hdr.find("\"" + key + "\"");
    const size_t o = hdr.find("\"data_offsets\": [", p) + 17;
    return reinterpret_cast<const float*>(st.data() + 8 + hl + std::stoull(hdr.substr(o)));
  };
  const float* qb = src("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight");
  const float* vb = src("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
  const format::TensorEntry* tq = f->Find("blk.1.attn_q.lora_b");
  const format::TensorEntry* tv = f->Find("blk.1.attn_v.lora_b");
  ASSERT_TRUE(tq && tv);
  EXPECT_EQ(std::memcmp(f->Data(*tv), vb, tv->size), 0);
  const float* q = reinterpret_cast<const float*>(f->Data(*tq));
  const int hd = 16, r = 4;
  for (int h = 0; h < 4; ++h)
    for (int j = 0; j < hd / 2; ++j)
      for (int t = 0; t < 2; ++t)
        for (int c = 0; c < r; ++c)
          ASSERT_EQ(q[(h * hd + 2 * j + t) * r + c], qb[(h * hd + t * hd / 2 + j) * r + c]);
}

// lamina-convert --lora-adapter, llama-run --lora FILE / PEFT_DIR / --lora-scale.
TEST_F(LoraConvert, CliLoraFlags) {
  const std::string peft = dir_ + "/peft_cli";
  ASSERT_TRUE(GenPeft(hf_, peft, "--dtype bf16"));
  const std::string ad = dir_ + "/cli.lamina";
  ASSERT_EQ(test::Run(Tool("lamina-convert") + " --lora-adapter '" + peft + "' -m '" + base_ +
                      "' -o '" + ad + "' 2>/dev/null"),
            0);
  EXPECT_EQ(test::Run(Tool("lamina-convert") + " --lora-adapter '" + peft + "' -o x 2>/dev/null"),
            2);
  const std::string toks = "--tokens 256,5,17,99,3 --kv f32 --dump-logits ";
  auto run = [&](const std::string& extra, const std::string& out) {
    return test::Run(Tool("llama-run") + " -m '" + base_ + "' " + extra + " " + toks + "'" + dir_ +
                     "/" + out + "' 2>/dev/null");
  };
  ASSERT_EQ(run("", "plain.f32"), 0);
  ASSERT_EQ(run("--lora '" + ad + "'", "file.f32"), 0);
  ASSERT_EQ(run("--lora '" + peft + "'", "dir.f32"), 0);
  ASSERT_EQ(run("--lora '" + ad + "' --lora-scale 0", "zero.f32"), 0);
  ASSERT_EQ(run("--lora '" + ad + "' --lora-scale 0.5 --lora '" + ad + "' --lora-scale 0.5",
                "halves.f32"),
            0);
  const auto plain = ReadAll(dir_ + "/plain.f32"), file = ReadAll(dir_ + "/file.f32");
  ASSERT_EQ(plain.size(), 5u * 300 * 4);
  EXPECT_EQ(file.size(), plain.size());
  EXPECT_NE(file, plain);
  EXPECT_EQ(ReadAll(dir_ + "/dir.f32"), file);  // the PEFT directory, converted in memory
  EXPECT_EQ(ReadAll(dir_ + "/zero.f32"), plain);
  EXPECT_NE(ReadAll(dir_ + "/halves.f32"), plain);
  // Errors: --lora-scale first, a missing adapter, an adapter of another shape.
  EXPECT_EQ(run("--lora-scale 2", "x.f32"), 2);
  EXPECT_EQ(run("--lora '" + dir_ + "/missing.lamina'", "x.f32"), 1);
}

// The user's path on a default conversion: lamina-convert with no options
// fuses R4 (ffn_down takes the online Hadamard) into a power-of-two-ffn float
// model; a PEFT adapter on down_proj (and the others) then converts and runs
// with llama-run --lora. Its logits are those of the f32 --rotate none base
// with the same adapter up to q4 error, far below what the adapter moves.
TEST(LoraConvertR4, CliDefaultR4BaseRunsDownProjAdapter) {
  LAMINA_REQUIRE_TORCH();
  const std::string dir = TestDataDir("lora_convert_r4");
  ASSERT_TRUE(GenHfModel(dir, "untied_f16"));
  const std::string hf = dir + "/untied_f16", def = dir + "/default.lamina",
                    f32 = dir + "/none.f32.lamina", peft = dir + "/peft_down";
  const std::string cvt = Tool("lamina-convert") + " '" + hf + "' --tokenizer none ";
  ASSERT_EQ(test::Run(cvt + "-o '" + def + "' >/dev/null 2>&1"), 0);
  ASSERT_EQ(test::Run(cvt + "--weights f32 --rotate none -o '" + f32 + "' >/dev/null 2>&1"), 0);
  {
    std::string err;
    auto f = ModelFile::Open(def, LoadOptions{}, &err);
    ASSERT_TRUE(f) << err;
    ASSERT_TRUE(f->Find("blk.0.ffn_down")->flags & format::kTensorHadamardInput)
        << "the default conversion no longer fuses R4: this test proves nothing";
  }
  ASSERT_TRUE(GenPeft(hf, peft, "--dtype bf16 --r 4 --alpha 8 --targets down_proj,v_proj"));
  const std::string ad = dir + "/down.lamina";
  ASSERT_EQ(test::Run(Tool("lamina-convert") + " --lora-adapter '" + peft + "' -m '" + def +
                      "' -o '" + ad + "' 2>/dev/null"),
            0);
  auto run = [&](const std::string& m, const std::string& extra, const std::string& out) {
    return test::Run(Tool("llama-run") + " -m '" + m + "' " + extra +
                     " --tokens 1,5,17,99,3 --kv f32 --dump-logits '" + dir + "/" + out +
                     "' 2>/dev/null");
  };
  ASSERT_EQ(run(def, "", "plain.f32"), 0);
  ASSERT_EQ(run(def, "--lora '" + ad + "'", "file.f32"), 0);
  ASSERT_EQ(run(def, "--lora '" + peft + "'", "dir.f32"), 0);
  ASSERT_EQ(run(f32, "--lora '" + ad + "'", "ref.f32"), 0);
  const std::vector<float> plain = ReadF32(dir + "/plain.f32"), got = ReadF32(dir + "/file.f32"),
                           want = ReadF32(dir + "/ref.f32");
  ASSERT_EQ(plain.size(), 5u * 256);
  ASSERT_EQ(got.size(), plain.size());
  ASSERT_EQ(want.size(), plain.size());
  EXPECT_EQ(ReadF32(dir + "/dir.f32"), got);
  const double err = MaxRel(got, want), effect = MaxRel(plain, want);
  std::printf(
      "[lora r4 cli] default q4+r4 base + adapter vs f32 none + adapter: %.3g (without "
      "the adapter: %.3g)\n",
      err, effect);
  EXPECT_LE(err, effect / 4);
}

}  // namespace
}  // namespace lamina::test
