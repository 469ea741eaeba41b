// Meta quantized checkpoints (QAT+LoRA, SpinQuant) -> lamina: every tensor
// bit-exact against the .pth, hparams, flags, golden logits of a PyTorch
// reference of ExecuTorch's math, and clean errors on damaged checkpoints.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/ref/fp16.h"
#include "lamina/lamina.h"
#include "loader/format.h"
#include "loader/model_file.h"
#include "loader/pack.h"
#include "tests/testutil.h"
#include "tools/convert/convert.h"
#include "tools/convert/meta_test_util.h"
#include "tools/convert/pth_reader.h"

namespace lamina {
namespace {

// Keyed by the generator's content: editing it regenerates.
std::string Gen(const std::string& flavour, const std::string& extra = "") {
  const std::string script = test::SourceDir() + "/tests/gen_meta_checkpoint.py";
  const std::vector<uint8_t> src = test::ReadFileBytes(script);
  return test::GenerateOnce("meta", std::string(src.begin(), src.end()),
                            test::Python() + " " + test::SourceDir() +
                                "/tests/gen_meta_checkpoint.py --out {OUT} --flavour " + flavour +
                                " " + extra + " >/dev/null");
}

bool ConvertDir(const std::string& dir, const std::string& out, std::string* err,
                const std::string& weights = "q4") {
  convert::ConvertOptions o;
  o.quiet = true;
  o.weights = weights;
  return convert::ConvertMeta(dir, out, o, err);
}

std::vector<float> ScalesF32(const pth::Tensor& t) {
  std::vector<float> s(static_cast<size_t>(t.numel()));
  EXPECT_EQ(t.dtype, pth::DType::kF32);
  std::memcpy(s.data(), t.data, s.size() * 4);
  return s;
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

const std::map<std::string, std::string>& LinearNames() {
  static const std::map<std::string, std::string> m = {
      {"attention.wq", "attn_q"},      {"attention.wk", "attn_k"},
      {"attention.wv", "attn_v"},      {"attention.wo", "attn_output"},
      {"feed_forward.w1", "ffn_gate"}, {"feed_forward.w3", "ffn_up"},
      {"feed_forward.w2", "ffn_down"}};
  return m;
}

// Checks every tensor of the converted file against the checkpoint, bit for bit.
void ExpectBitExact(const std::string& dir, const ModelFile& mf, bool lora, bool spinquant) {
  pth::StateDict sd;
  std::string err;
  ASSERT_TRUE(sd.Open(dir + "/consolidated.00.pth", &err)) << err;
  const auto& hp = mf.hparams();
  size_t expected_tensors = 0;
  uint64_t values_checked = 0, scales_checked = 0;
  int q4_f16s = 0, q4_f32s = 0;  // q4g tensors by scale layout
  for (const pth::Tensor& t : sd.tensors()) {
    SCOPED_TRACE(t.name);
    const std::string& n = t.name;
    auto ends = [&](const std::string& s) {
      return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
    };
    if (ends(".scales")) continue;  // checked with their weights
    std::string name;
    if (n == "tok_embeddings.weight")
      name = "tok_embd";
    else if (n == "output.weight")
      name = "output";
    else if (n == "norm.weight")
      name = "output_norm";
    else {
      ASSERT_EQ(n.rfind("layers.", 0), 0u);
      const size_t dot = n.find('.', 7);
      const std::string blk = "blk." + n.substr(7, dot - 7) + ".";
      std::string rest = n.substr(dot + 1);
      if (rest == "attention_norm.weight")
        name = blk + "attn_norm";
      else if (rest == "ffn_norm.weight")
        name = blk + "ffn_norm";
      else {
        for (const auto& [meta, ours] : LinearNames()) {
          if (rest == meta + ".weight") name = blk + ours;
          if (rest == meta + ".adaptor.A.weight") name = blk + ours + ".lora_a";
          if (rest == meta + ".adaptor.B.weight") name = blk + ours + ".lora_b";
        }
      }
    }
    ASSERT_FALSE(name.empty()) << "unmapped checkpoint tensor";
    ++expected_tensors;
    const format::TensorEntry* e = mf.Find(name);
    ASSERT_NE(e, nullptr) << name;
    const uint8_t* data = mf.Data(*e);
    const bool is_down = name.size() >= 8 && name.compare(name.size() - 8, 8, "ffn_down") == 0;
    EXPECT_EQ(e->flags, (spinquant && is_down) ? format::kTensorHadamardInput : 0u) << name;
    if (name == "tok_embd" || name == "output") {
      ASSERT_EQ(e->dtype, static_cast<uint32_t>(format::DType::kQ8C));
      const int N = static_cast<int>(t.shape[0]), K = static_cast<int>(t.shape[1]);
      const std::string sk = n.substr(0, n.size() - 7) + ".scales";
      const std::vector<float> s = ScalesF32(*sd.Find(sk));
      const int8_t* v = reinterpret_cast<const int8_t*>(t.data);
      for (int r = 0; r < N; ++r) {
        ASSERT_EQ(Bits(pack::Q8CScale(data, N, K, r)), Bits(s[r])) << r;
        for (int k = 0; k < K; ++k)
          ASSERT_EQ(pack::Q8CValue(data, N, K, r, k), v[r * K + k]) << r << "," << k;
      }
      values_checked += static_cast<uint64_t>(N) * K;
      scales_checked += N;
    } else if (t.dtype == pth::DType::kI8) {
      ASSERT_EQ(e->dtype, static_cast<uint32_t>(format::DType::kQ4G));
      const int N = static_cast<int>(t.shape[0]), K = static_cast<int>(t.shape[1]);
      const pth::Tensor* st = sd.Find(n.substr(0, n.size() - 7) + ".scales");
      ASSERT_NE(st, nullptr);
      EXPECT_EQ(st->shape.size(), spinquant ? 3u : 2u);  // the generator's two variants
      const std::vector<float> s = ScalesF32(*st);
      // f16 scales exactly when every scale of the tensor is an f16 value.
      const bool f16s = pack::ScalesFitF16(s.data(), s.size());
      ASSERT_EQ(e->layout, static_cast<uint32_t>(f16s ? format::Layout::kQ4G_R4K8_F16S
                                                      : format::Layout::kQ4G_R4K8));
      ++(f16s ? q4_f16s : q4_f32s);
      const int G = K / 32;
      const int8_t* v = reinterpret_cast<const int8_t*>(t.data);
      for (int r = 0; r < N; ++r) {
        for (int g = 0; g < G; ++g)
          ASSERT_EQ(Bits(pack::Q4GScaleAny(data, f16s, N, K, r, g)), Bits(s[r * G + g]))
              << r << "," << g;
        for (int k = 0; k < K; ++k)
          ASSERT_EQ(pack::Q4GValueAny(data, f16s, N, K, r, k), v[r * K + k]) << r << "," << k;
      }
      values_checked += static_cast<uint64_t>(N) * K;
      scales_checked += static_cast<uint64_t>(N) * G;
    } else if (ends(".adaptor.A.weight") || ends(".adaptor.B.weight")) {
      ASSERT_EQ(e->dtype, static_cast<uint32_t>(format::DType::kBF16));
      ASSERT_EQ(e->n_dims, 2u);
      EXPECT_EQ(e->shape[0], static_cast<uint64_t>(t.shape[0]));
      EXPECT_EQ(e->shape[1], static_cast<uint64_t>(t.shape[1]));
      ASSERT_EQ(e->size, t.nbytes);
      EXPECT_EQ(std::memcmp(data, t.data, t.nbytes), 0);
    } else {  // norms: bf16 or f32 -> f32, exact
      ASSERT_EQ(e->dtype, static_cast<uint32_t>(format::DType::kF32));
      for (int64_t i = 0; i < t.numel(); ++i) {
        float want;
        if (t.dtype == pth::DType::kBF16) {
          uint16_t h;
          std::memcpy(&h, t.data + 2 * i, 2);
          want = BF16ToF32(h);
        } else {
          std::memcpy(&want, t.data + 4 * i, 4);
        }
        float got;
        std::memcpy(&got, data + 4 * i, 4);
        ASSERT_EQ(Bits(got), Bits(want)) << i;
      }
    }
  }
  EXPECT_EQ(mf.n_tensors(), expected_tensors);
  EXPECT_EQ(hp.lora_rank, lora ? 16u : 0u);
  EXPECT_EQ(hp.lora_scale, lora ? 2.f : 0.f);
  std::printf(
      "[meta] %s: %zu tensors, %llu int values and %llu scales bit-exact; q4g scales: %d "
      "tensors f16, %d f32\n",
      dir.c_str(), mf.n_tensors(), static_cast<unsigned long long>(values_checked),
      static_cast<unsigned long long>(scales_checked), q4_f16s, q4_f32s);
}

void ExpectHParams(const ModelFile& mf) {
  const auto& hp = mf.hparams();
  EXPECT_EQ(hp.dim, 128u);
  EXPECT_EQ(hp.n_layers, 2u);
  EXPECT_EQ(hp.n_heads, 4u);
  EXPECT_EQ(hp.n_kv_heads, 2u);
  EXPECT_EQ(hp.head_dim, 32u);
  EXPECT_EQ(hp.ffn_dim, 512u);  // 256 * ceil(int(1.5 * int(8*128/3)) / 256)
  EXPECT_EQ(hp.vocab_size, 302u);
  EXPECT_EQ(hp.rope_theta, 500000.f);
  EXPECT_EQ(hp.rope_scaling, static_cast<uint32_t>(format::RopeScaling::kLlama3));
  EXPECT_EQ(hp.rope_factor, 32.f);
  EXPECT_EQ(hp.rope_low_freq_factor, 1.f);
  EXPECT_EQ(hp.rope_high_freq_factor, 4.f);
  EXPECT_EQ(hp.rope_orig_max_pos, 8192u);
  EXPECT_EQ(hp.norm_eps, 1e-5f);
  EXPECT_FALSE(mf.tied_embeddings());
}

// The checkpoints are generated once (cached by content); torch is needed only
// then: without it the tests skip (fail under CI, LAMINA_REQUIRE_TORCH).
class MetaConvertTest : public ::testing::Test {};

#define REQUIRE_GENERATED(dir)                 \
  do {                                         \
    if ((dir).empty()) {                       \
      LAMINA_REQUIRE_TORCH();                  \
      FAIL() << "checkpoint generator failed"; \
    }                                          \
  } while (0)

TEST_F(MetaConvertTest, QatLoraKeepsEveryValueBitExact) {
  const std::string dir = Gen("qat_lora");
  REQUIRE_GENERATED(dir);
  const std::string out = test::TestDataDir("meta") + "/qat_lora.lamina";
  std::string err;
  ASSERT_TRUE(ConvertDir(dir, out, &err)) << err;
  auto mf = ModelFile::Open(out, {}, &err);
  ASSERT_NE(mf, nullptr) << err;
  ExpectHParams(*mf);
  EXPECT_STREQ(mf->header().weight_scheme, "meta-qat-lora");
  ExpectBitExact(dir, *mf, /*lora=*/true, /*spinquant=*/false);
}

TEST_F(MetaConvertTest, SpinQuantKeepsEveryValueBitExactAndFlagsHadamard) {
  const std::string dir = Gen("spinquant");
  REQUIRE_GENERATED(dir);
  const std::string out = test::TestDataDir("meta") + "/spinquant.lamina";
  std::string err;
  ASSERT_TRUE(ConvertDir(dir, out, &err)) << err;
  auto mf = ModelFile::Open(out, {}, &err);
  ASSERT_NE(mf, nullptr) << err;
  ExpectHParams(*mf);
  EXPECT_STREQ(mf->header().weight_scheme, "meta-spinquant");
  ExpectBitExact(dir, *mf, /*lora=*/false, /*spinquant=*/true);
}

TEST_F(MetaConvertTest, SpinQuantIsInferredWithoutTheParamsFlag) {
  const std::string dir = Gen("spinquant", "--no-spinquant-flag");
  REQUIRE_GENERATED(dir);
  const std::string out = test::TestDataDir("meta") + "/spinquant_noflag.lamina";
  std::string err;
  ASSERT_TRUE(ConvertDir(dir, out, &err)) << err;
  auto mf = ModelFile::Open(out, {}, &err);
  ASSERT_NE(mf, nullptr) << err;
  for (int i = 0; i < 2; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    EXPECT_EQ(mf->Find(b + "ffn_down")->flags, format::kTensorHadamardInput);
    EXPECT_EQ(mf->Find(b + "ffn_up")->flags, 0u);
  }
}

// ------------------------------------------------------------ golden logits
std::vector<int32_t> ReadIds(const std::string& path) {
  std::ifstream f(path);
  std::vector<int32_t> ids;
  std::string tok;
  while (std::getline(f, tok, ',')) ids.push_back(std::stoi(tok));
  return ids;
}

// Evaluates the prompt through the public C API (every position's logits),
// compares with the PyTorch reference, then continues greedily.
void ExpectGolden(const std::string& flavour, const std::string& weights = "q4",
                  const std::string& extra = "") {
  const std::string dir = Gen(flavour, extra);
  REQUIRE_GENERATED(dir);
  const std::string out =
      test::TestDataDir("meta") + "/golden_" + flavour + (extra.empty() ? "" : "_x") + ".lamina";
  std::string err;
  ASSERT_TRUE(ConvertDir(dir, out, &err, weights)) << err;
  const std::vector<int32_t> tokens = ReadIds(dir + "/tokens.txt");
  const std::vector<int32_t> greedy = ReadIds(dir + "/greedy.txt");
  const std::vector<uint8_t> gold_bytes = test::ReadFileBytes(dir + "/golden_logits.f32");
  const int vocab = 302;
  ASSERT_EQ(gold_bytes.size(), tokens.size() * vocab * 4);
  std::vector<float> gold(gold_bytes.size() / 4);
  std::memcpy(gold.data(), gold_bytes.data(), gold_bytes.size());

  for (const char* tier : {"ref", "auto"}) {
    SCOPED_TRACE(tier);
    lamina_model_params mp = lamina_model_default_params();
    mp.kernels = tier;
    lamina_model* model = nullptr;
    ASSERT_EQ(lamina_model_load(out.c_str(), &mp, &model), LAMINA_OK) << lamina_last_error();
    lamina_context_params cp = lamina_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    cp.kv_type = LAMINA_KV_F32;
    cp.logits_all = 1;
    lamina_context* ctx = nullptr;
    ASSERT_EQ(lamina_context_create(model, &cp, &ctx), LAMINA_OK) << lamina_last_error();
    ASSERT_EQ(lamina_eval(ctx, tokens.data(), tokens.size()), LAMINA_OK) << lamina_last_error();
    double max_abs = 0, max_gold = 0;
    int top1_agree = 0;
    std::vector<double> pos_err(tokens.size(), 0.0);
    for (size_t t = 0; t < tokens.size(); ++t) {
      const float* l = lamina_get_logits_ith(ctx, static_cast<int32_t>(t));
      ASSERT_NE(l, nullptr);
      const float* g = &gold[t * vocab];
      int am_l = 0, am_g = 0;
      for (int v = 0; v < vocab; ++v) {
        const double d = std::fabs(static_cast<double>(l[v]) - g[v]);
        max_abs = std::max(max_abs, d);
        pos_err[t] = std::max(pos_err[t], d);
        max_gold = std::max(max_gold, std::fabs(static_cast<double>(g[v])));
        if (l[v] > l[am_l]) am_l = v;
        if (g[v] > g[am_g]) am_g = v;
      }
      top1_agree += am_l == am_g;
    }
    std::printf(
        "[meta] %s logits (%s kernels): max |lamina - golden| = %.3g (max |golden| %.3g, "
        "rel %.3g), top-1 agreement %d/%zu\n",
        flavour.c_str(), tier, max_abs, max_gold, max_abs / max_gold, top1_agree, tokens.size());
    // Bound: the reference quantizes activations with the same f32 formula, so
    // differences come only from f32 summation order (norms, attention, matmul
    // epilogue) — ~1e-6 relative — plus a rare one-step rounding flip of an
    // activation code; 2e-3 of the logit range covers a few such flips.
    EXPECT_LE(max_abs, 2e-3 * max_gold);
    // ... and most positions see no flip at all: f32-rounding-level agreement.
    int clean = 0;
    for (double e : pos_err) clean += e <= 1e-6 * max_gold;
    EXPECT_GE(clean, static_cast<int>(tokens.size()) - 2) << "positions within 1e-6 relative";
    EXPECT_EQ(top1_agree, static_cast<int>(tokens.size()));
    // Greedy continuation, one token at a time (decode path).
    std::vector<int32_t> got;
    const float* last = lamina_get_logits_ith(ctx, static_cast<int32_t>(tokens.size() - 1));
    for (size_t i = 0; i < greedy.size(); ++i) {
      int best = 0;
      for (int v = 1; v < vocab; ++v) best = last[v] > last[best] ? v : best;
      got.push_back(best);
      ASSERT_EQ(lamina_eval(ctx, &got.back(), 1), LAMINA_OK) << lamina_last_error();
      last = lamina_get_logits(ctx);
    }
    EXPECT_EQ(got, greedy);
    lamina_context_free(ctx);
    lamina_model_free(model);
  }
}

TEST_F(MetaConvertTest, QatLoraLogitsMatchExecuTorchReference) { ExpectGolden("qat_lora"); }
TEST_F(MetaConvertTest, SpinQuantLogitsMatchExecuTorchReference) { ExpectGolden("spinquant"); }
// An unquantized Meta checkpoint (bf16, as in Hugging Face's original/ folder)
// through the float path with --weights f32: the float reference.
TEST_F(MetaConvertTest, Bf16CheckpointLogitsMatchFloatReference) { ExpectGolden("bf16", "f32"); }
// Scales that are all exactly f16 values are stored as f16 (Q4G_R4K8_F16S):
// still bit-exact, and the same logits as the ExecuTorch-math reference.
TEST_F(MetaConvertTest, F16ExactScalesStoredAsF16StayExact) {
  const std::string dir = Gen("qat_lora", "--f16-scales");
  REQUIRE_GENERATED(dir);
  const std::string out = test::TestDataDir("meta") + "/qat_lora_f16.lamina";
  std::string err;
  ASSERT_TRUE(ConvertDir(dir, out, &err)) << err;
  auto mf = ModelFile::Open(out, {}, &err);
  ASSERT_NE(mf, nullptr) << err;
  for (const char* name : {"blk.0.attn_q", "blk.1.ffn_down"})
    EXPECT_EQ(mf->Find(name)->layout, static_cast<uint32_t>(format::Layout::kQ4G_R4K8_F16S));
  ExpectBitExact(dir, *mf, /*lora=*/true, /*spinquant=*/false);
  ExpectGolden("qat_lora", "q4", "--f16-scales");
}

// A Llama 3-vocabulary checkpoint with Meta's tiktoken tokenizer.model
// (../shared) embedded: ids, stop tokens, tokenization, and its logits.
TEST_F(MetaConvertTest, EmbedsTheTiktokenTokenizerWithLlama3Ids) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const std::string dir =
      Gen("qat_lora", "--vocab 128256 --dim 64 --layers 1 --greedy 0 --tokens 128000,9906,1917");
  REQUIRE_GENERATED(dir);
  convert::ConvertOptions o;
  o.quiet = true;
  o.tokenizer_path = test::SharedDir() + "/tokenizers/llama3/tokenizer.model";
  const std::string out = test::TestDataDir("meta") + "/llama3_vocab.lamina";
  std::string err;
  ASSERT_TRUE(convert::ConvertMeta(dir, out, o, &err)) << err;
  lamina_model* m = nullptr;
  ASSERT_EQ(lamina_model_load(out.c_str(), nullptr, &m), LAMINA_OK) << lamina_last_error();
  lamina_model_info info;
  ASSERT_EQ(lamina_model_get_info(m, &info), LAMINA_OK);
  EXPECT_TRUE(info.has_tokenizer);
  EXPECT_EQ(info.vocab_size, 128256);
  EXPECT_EQ(info.bos_id, 128000);
  EXPECT_EQ(info.eos_id, 128009);
  EXPECT_EQ(info.lora_rank, 16);
  EXPECT_STREQ(info.weight_scheme, "meta-qat-lora");
  ASSERT_EQ(info.n_stop_ids, 3);
  EXPECT_EQ(info.stop_ids[0], 128001);
  EXPECT_EQ(info.stop_ids[1], 128008);
  EXPECT_EQ(info.stop_ids[2], 128009);
  int32_t ids[8];
  size_t n = 0;
  ASSERT_EQ(lamina_tokenize(m, "Hello world", 11, 1, 0, ids, 8, &n), LAMINA_OK);
  EXPECT_EQ(std::vector<int32_t>(ids, ids + n), (std::vector<int32_t>{128000, 9906, 1917}));
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = 16;
  cp.n_threads = 1;
  cp.kv_type = LAMINA_KV_F32;
  cp.logits_all = 1;
  lamina_context* ctx = nullptr;
  ASSERT_EQ(lamina_context_create(m, &cp, &ctx), LAMINA_OK) << lamina_last_error();
  ASSERT_EQ(lamina_eval(ctx, ids, n), LAMINA_OK) << lamina_last_error();
  const std::vector<uint8_t> gold_bytes = test::ReadFileBytes(dir + "/golden_logits.f32");
  ASSERT_EQ(gold_bytes.size(), 3u * 128256 * 4);
  std::vector<float> gold(gold_bytes.size() / 4);
  std::memcpy(gold.data(), gold_bytes.data(), gold_bytes.size());
  double max_abs = 0, max_gold = 0;
  for (int t = 0; t < 3; ++t) {
    const float* l = lamina_get_logits_ith(ctx, t);
    ASSERT_NE(l, nullptr);
    for (int v = 0; v < 128256; ++v) {
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(l[v]) - gold[t * 128256 + v]));
      max_gold = std::max(max_gold, std::fabs(static_cast<double>(gold[t * 128256 + v])));
    }
  }
  std::printf(
      "[meta] llama3-vocab qat_lora logits: max |lamina - golden| = %.3g (max |golden| "
      "%.3g)\n",
      max_abs, max_gold);
  EXPECT_LE(max_abs, 2e-3 * max_gold);
  lamina_context_free(ctx);
  lamina_model_free(m);
}

// ------------------------------------------------------------ damaged inputs
// Variants of the QAT+LoRA checkpoint, each with one defect, made by torch.
const char* kBreak = R"PY(
import json, os, shutil, sys, torch
src, out = sys.argv[1], sys.argv[2]
sd = torch.load(src + '/consolidated.00.pth')
params = json.load(open(src + '/params.json'))
def variant(name, mutate, pmut=None):
    d = os.path.join(out, name); os.makedirs(d, exist_ok=True)
    s = dict(sd); mutate(s)
    torch.save(s, d + '/consolidated.00.pth')
    p = json.loads(json.dumps(params))
    if pmut: pmut(p)
    json.dump(p, open(d + '/params.json', 'w'))
W = 'layers.1.feed_forward.w2'
def rm(k): return lambda s: s.pop(k)
def setv(k, v): return lambda s: s.__setitem__(k, v)
def outofrange(s):
    w = s[W + '.weight'].clone(); w[3, 5] = 9; s[W + '.weight'] = w
variant('missing_scales', rm(W + '.scales'))
variant('int4_out_of_range', outofrange)
variant('weight_dtype', setv(W + '.weight', sd[W + '.weight'].to(torch.int32)))
variant('scales_shape', setv(W + '.scales', sd[W + '.scales'][:, :-1].contiguous()))
variant('scales_dtype', setv(W + '.scales', torch.zeros(sd[W + '.scales'].shape, dtype=torch.int16)))
variant('weight_shape', setv(W + '.weight', sd[W + '.weight'][:-1].contiguous()))
variant('missing_tensor', rm('layers.1.attention.wk.weight'))
variant('lora_half_pair', rm('layers.0.attention.wq.adaptor.B.weight'))
variant('lora_rank', lambda s: None, lambda p: p['lora_args'].__setitem__('rank', 8))
variant('extra_tensor', setv('layers.0.attention.bogus', torch.zeros(3)))
variant('nonzero_zeros', setv(W + '.zeros', torch.ones(sd[W + '.scales'].shape)))
variant('group_size', lambda s: None, lambda p: p['quantization_args'].__setitem__('group_size', 64))
variant('ffn_mismatch', lambda s: None, lambda p: p.__setitem__('ffn_dim_multiplier', 3.0))
variant('bad_heads', lambda s: None, lambda p: p.__setitem__('n_heads', 3))
variant('no_dim', lambda s: None, lambda p: p.pop('dim'))
)PY";

TEST_F(MetaConvertTest, MalformedCheckpointsGiveClearErrors) {
  const std::string src = Gen("qat_lora");
  REQUIRE_GENERATED(src);
  const std::string script = test::TestDataDir("meta") + "/break_meta.py";
  std::ofstream(script) << kBreak;
  const std::string dir =
      test::GenerateOnce("meta", std::string("break-v2") + kBreak,
                         test::Python() + " " + script + " " + src + " {OUT} >/dev/null 2>&1");
  REQUIRE_GENERATED(dir);
  const std::string W = "layers.1.feed_forward.w2";
  const std::pair<const char*, std::string> cases[] = {
      {"missing_scales", W + ".scales: missing"},
      {"int4_out_of_range", W + ".weight: value 9 at [3, 5] is outside the int4 range [-8, 7]"},
      {"weight_dtype", W + ".weight: dtype int32, expected int8"},
      {"scales_shape", W + ".scales: scales have shape [128, 15], expected [128, 16]"},
      {"scales_dtype", W + ".scales: scales have dtype int16"},
      {"weight_shape", W + ".weight: shape [127, 512], expected [128, 512]"},
      {"missing_tensor", "layers.1.attention.wk.weight: missing"},
      {"lora_half_pair",
       "layers.0.attention.wq.adaptor.B.weight: missing (LoRA adaptors come in "
       "A/B pairs)"},
      {"lora_rank", "shape [16, 128], expected [8, 128] (lora_args.rank = 8)"},
      {"extra_tensor", "1 unrecognised tensor(s) in the checkpoint: layers.0.attention.bogus"},
      {"nonzero_zeros", W + ".zeros: non-zero zero points"},
      {"group_size", "quantization group size 64 is not supported"},
      {"ffn_mismatch", "params.json gives an FFN width of 1024"},
      {"bad_heads", "inconsistent heads"},
      {"no_dim", "params.json: missing \"dim\""},
  };
  for (const auto& [name, expect] : cases) {
    std::string err;
    const std::string out = test::TestDataDir("meta") + "/bad.lamina";
    EXPECT_FALSE(ConvertDir(dir + "/" + name, out, &err)) << name;
    EXPECT_NE(err.find(expect), std::string::npos) << name << ": " << err;
    EXPECT_FALSE(test::FileExists(out)) << name << ": no output file on failure";
  }
  std::string err;
  EXPECT_FALSE(ConvertDir(dir + "/does-not-exist", "/tmp/x.lamina", &err));
  EXPECT_NE(err.find("params.json"), std::string::npos) << err;
}

}  // namespace
}  // namespace lamina
