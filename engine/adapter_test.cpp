// LoRA adapters at run time (engine/adapter.h, lamina_adapter_* in lamina.h):
//   - a PEFT adapter on a synthetic HF Llama, f32 weights: logits match the
//     PyTorch float64 reference of the base with the adapter merged
//     (tests/gen_peft_adapter.py --ref + tests/reference/llama_ref.py);
//   - q4 weights: bit-identical to the same matrices run as the model's own
//     LoRA adaptors (the QAT+LoRA path, itself checked against PyTorch in
//     tests/reference_test.cpp): the adapter works on the float input of
//     each linear and adds nothing beyond its float math;
//   - batched = token by token, 1 thread = 2 threads, bit for bit; scale 0 and
//     detaching give the base's logits exactly; user adapters stack on a
//     model's own adaptors; two contexts with different adapters at once;
//   - bad adapter files are refused, naming the tensor;
//   - on a base whose ffn_down takes the engine's online Hadamard (R4, the
//     default conversion; SpinQuant) an adapter on down_proj runs as A H on
//     the rotated input: f32 logits equal the --rotate none base's with the
//     same adapter file and PyTorch's merged float64; on q4 bit for bit the
//     model's own LoRA path given A H.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "kernels/ref/fp16.h"
#include "kernels/ref/ref.h"
#include "loader/model_file.h"
#include "loader/model_writer.h"
#include "tests/lora_test_util.h"
#include "tools/convert/rotate.h"

namespace lamina::test {
namespace {

// Copies `base` and adds the adapter's tensors as the model's own LoRA
// adaptors (hparams.lora_rank / lora_scale): what Meta's QAT+LoRA
// checkpoints look like. The adapter must cover every linear of every layer.
// rotate_down: every ffn_down lora_a is stored as A H in f32 (H the engine's
// Hadamard, ref::Hadamard on each row): what a model's own adaptor on a
// Hadamard-input ffn_down multiplies (the rotated input, as in Meta's
// SpinQuant graph).
bool WriteWithOwnLora(const std::string& base, const std::string& adapter, const std::string& out,
                      std::string* err, bool rotate_down = false) {
  auto b = ModelFile::Open(base, LoadOptions{}, err);
  auto a = b ? ModelFile::Open(adapter, LoadOptions{}, err) : nullptr;
  if (!a) return false;
  ModelWriter w;
  if (!w.Open(out, err)) return false;
  format::HParams hp = b->hparams();
  hp.lora_rank = a->hparams().lora_rank;
  hp.lora_scale = a->hparams().lora_scale;
  w.SetHParams(hp);
  w.SetFlags(b->header().flags);
  w.SetScheme("own-lora");
  for (const ModelFile* f : {b.get(), a.get()})
    for (size_t i = 0; i < f->n_tensors(); ++i) {
      const format::TensorEntry& t = f->tensor(i);
      std::vector<uint64_t> shape(t.shape, t.shape + t.n_dims);
      const std::string name = t.name;
      if (rotate_down && name.size() > 15 &&
          name.compare(name.size() - 15, 15, "ffn_down.lora_a") == 0) {
        const size_t n = t.shape[0] * t.shape[1], K = t.shape[1];
        std::vector<float> ah(n);
        const uint16_t* h = reinterpret_cast<const uint16_t*>(f->Data(t));
        for (size_t i = 0; i < n; ++i)
          ah[i] = t.dtype == static_cast<uint32_t>(format::DType::kF32)
                      ? reinterpret_cast<const float*>(f->Data(t))[i]
                  : t.dtype == static_cast<uint32_t>(format::DType::kF16) ? F16ToF32(h[i])
                                                                          : BF16ToF32(h[i]);
        for (size_t i = 0; i < n; i += K) ref::Hadamard(ah.data() + i, static_cast<int>(K));
        if (!w.AddTensor(t.name, format::DType::kF32, format::Layout::kRowMajor, shape, 0, 0,
                         ah.data(), n * 4, err))
          return false;
        continue;
      }
      if (!w.AddTensor(t.name, static_cast<format::DType>(t.dtype),
                       static_cast<format::Layout>(t.layout), shape, t.group_size, t.flags,
                       f->Data(t), t.size, err))
        return false;
    }
  return w.Finish(err);
}

class Lora : public ::testing::Test {
 protected:
  void SetUp() override {
    LAMINA_REQUIRE_TORCH();
    dir_ = TestDataDir("lora");
    hf_ = dir_ + "/tied_bf16";
    ASSERT_TRUE(GenHfModel(dir_, "tied_bf16"));
  }
  void TearDown() override {
    for (lamina_adapter* a : adapters_) lamina_adapter_free(a);
    for (lamina_model* m : models_) lamina_model_free(m);
  }
  // Converted base model (f32 / q4 / ...), loaded.
  lamina_model* Base(const std::string& weights, std::string* path = nullptr) {
    const std::string p = dir_ + "/base." + weights + ".lamina";
    std::string err;
    EXPECT_TRUE(ConvertBase(hf_, p, weights, &err)) << err;
    if (path) *path = p;
    return Load(p);
  }
  lamina_model* Load(const std::string& p) {
    lamina_model* m = nullptr;
    EXPECT_EQ(lamina_model_load(p.c_str(), nullptr, &m), LAMINA_OK) << lamina_last_error();
    if (m) models_.push_back(m);
    return m;
  }
  // PEFT adapter `name` (gen_peft_adapter.py args) converted against `base`.
  std::string Adapter(const std::string& name, const std::string& args, const std::string& base) {
    const std::string peft = dir_ + "/" + name;
    EXPECT_TRUE(GenPeft(hf_, peft, args));
    const std::string out = dir_ + "/" + name + ".lamina";
    std::string err;
    EXPECT_TRUE(ConvertAdapter(peft, base, out, &err)) << err;
    return out;
  }
  lamina_adapter* LoadAdapter(lamina_model* m, const std::string& path) {
    lamina_adapter* a = nullptr;
    EXPECT_EQ(lamina_adapter_load(m, path.c_str(), &a), LAMINA_OK) << lamina_last_error();
    if (a) adapters_.push_back(a);
    return a;
  }

  std::string dir_, hf_;
  std::vector<lamina_model*> models_;
  std::vector<lamina_adapter*> adapters_;
};

// f32 base + adapter vs PyTorch float64 of the merged model, for three
// adapters: all seven targets in bf16; rsLoRA with f16 values on q/v/down of
// layer 1 only; f32 values on k/o/gate/up with alpha 3.
TEST_F(Lora, PeftAdapterMatchesPyTorchMergedFloat64) {
  std::string base_path;
  lamina_model* m = Base("f32", &base_path);
  ASSERT_TRUE(m);
  const std::vector<int32_t> toks = LoraTokens();
  std::string tok_arg;
  for (int32_t t : toks) tok_arg += (tok_arg.empty() ? "" : ",") + std::to_string(t);
  const std::vector<float> plain = AdapterLogits(m, {}, {}, toks);
  struct Case {
    const char* name;
    const char* args;
  } cases[] = {
      {"all_bf16", "--dtype bf16 --r 4 --alpha 8"},
      {"rslora_f16",
       "--dtype f16 --r 8 --alpha 16 --rslora --targets q_proj,v_proj,down_proj "
       "--layers 1 --seed 8"},
      {"f32_partial",
       "--dtype f32 --r 2 --alpha 3 --targets k_proj,o_proj,gate_proj,up_proj "
       "--seed 9"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string ref = dir_ + "/" + c.name + ".ref";
    const std::string ad = Adapter(c.name, std::string(c.args) + " --ref '" + ref + "'", base_path);
    const std::string cmd = Python() + " '" + SourceDir() + "/tests/reference/llama_ref.py' " +
                            "--weights '" + ref + "' --tokens " + tok_arg + " --out-float '" + ref +
                            ".golden'";
    ASSERT_EQ(test::Run(cmd), 0) << cmd;
    const std::vector<float> golden = ReadF32(ref + ".golden");
    ASSERT_EQ(golden.size(), toks.size() * 300);
    lamina_adapter* a = LoadAdapter(m, ad);
    ASSERT_TRUE(a);
    const std::vector<float> got = AdapterLogits(m, {a}, {1.f}, toks);
    ASSERT_EQ(got.size(), golden.size());
    const double err = MaxRel(got, golden), effect = MaxRel(plain, golden);
    std::printf(
        "[lora %s] f32 + adapter vs torch float64 merged: max rel err %.3g (the adapter "
        "moves the logits by %.3g)\n",
        c.name, err, effect);
    EXPECT_LE(err, 1e-4);     // the f32 graph tolerance of tests/reference_test.cpp
    EXPECT_GE(effect, 1e-2);  // the adapter matters: a test that can fail
  }
}

// q4 base + adapter == the same matrices as the model's own LoRA, bit for bit
// (and so the adapter sees each linear's float input, never the int8 one).
TEST_F(Lora, Q4AdapterBitIdenticalToModelsOwnLoraPath) {
  std::string base_path;
  lamina_model* m = Base("q4", &base_path);
  ASSERT_TRUE(m);
  const std::string ad = Adapter("all_bf16", "--dtype bf16 --r 4 --alpha 8", base_path);
  const std::string own = dir_ + "/own_lora.q4.lamina";
  std::string err;
  ASSERT_TRUE(WriteWithOwnLora(base_path, ad, own, &err)) << err;
  lamina_model* mo = Load(own);
  ASSERT_TRUE(mo);
  lamina_adapter* a = LoadAdapter(m, ad);
  ASSERT_TRUE(a);
  const std::vector<int32_t> toks = LoraTokens();
  const std::vector<float> want = AdapterLogits(mo, {}, {}, toks);
  const std::vector<float> plain = AdapterLogits(m, {}, {}, toks);
  for (int threads : {1, 2}) {
    const std::vector<float> got = AdapterLogits(m, {a}, {1.f}, toks, threads);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0) << threads << " threads";
  }
  EXPECT_GE(MaxRel(plain, want), 1e-2);
}

// Batched prefill == token-by-token decode == another thread count, bits.
TEST_F(Lora, BatchedDecodeAndThreadsBitIdentical) {
  for (const char* w : {"f32", "q4"}) {
    SCOPED_TRACE(w);
    std::string base_path;
    lamina_model* m = Base(w, &base_path);
    ASSERT_TRUE(m);
    lamina_adapter* a =
        LoadAdapter(m, Adapter(std::string("b_") + w, "--dtype bf16 --r 6 --alpha 5", base_path));
    lamina_adapter* b =
        LoadAdapter(m, Adapter(std::string("c_") + w,
                               "--dtype f32 --r 3 --seed 3 --targets v_proj,up_proj", base_path));
    ASSERT_TRUE(a && b);
    const std::vector<int32_t> toks = LoraTokens();
    const std::vector<float> batched = AdapterLogits(m, {a, b}, {0.7f, 1.3f}, toks, 2);
    const std::vector<float> one = AdapterLogits(m, {a, b}, {0.7f, 1.3f}, toks, 1, 1);
    const std::vector<float> three = AdapterLogits(m, {a, b}, {0.7f, 1.3f}, toks, 3, 7);
    ASSERT_EQ(batched.size(), toks.size() * 300);
    ASSERT_EQ(one.size(), batched.size());
    EXPECT_EQ(std::memcmp(batched.data(), one.data(), one.size() * 4), 0);
    ASSERT_EQ(three.size(), batched.size());
    EXPECT_EQ(std::memcmp(batched.data(), three.data(), three.size() * 4), 0);
  }
}

// Scale 0 and detaching give the model's own logits exactly; a scale is a
// multiplier of the adapter's alpha / r.
TEST_F(Lora, ScaleZeroAndDetachAreIdentity) {
  std::string base_path;
  lamina_model* m = Base("q4", &base_path);
  ASSERT_TRUE(m);
  lamina_adapter* a = LoadAdapter(m, Adapter("z", "--dtype bf16", base_path));
  ASSERT_TRUE(a);
  const std::vector<int32_t> toks = LoraTokens();
  const std::vector<float> plain = AdapterLogits(m, {}, {}, toks);
  const std::vector<float> zero = AdapterLogits(m, {a}, {0.f}, toks);
  ASSERT_EQ(zero.size(), plain.size());
  EXPECT_EQ(std::memcmp(zero.data(), plain.data(), plain.size() * 4), 0);
  // Attach, evaluate, detach, clear, evaluate: the base again.
  lamina_context_params p = lamina_context_default_params();
  p.n_ctx = 64;
  p.kv_type = LAMINA_KV_F32;
  p.logits_all = 1;
  lamina_context* c = nullptr;
  ASSERT_EQ(lamina_context_create(m, &p, &c), LAMINA_OK);
  const lamina_adapter* list[1] = {a};
  const float one = 1.f;
  ASSERT_EQ(lamina_context_set_adapters(c, list, &one, 1), LAMINA_OK);
  ASSERT_EQ(lamina_eval(c, toks.data(), toks.size()), LAMINA_OK);
  const float* l = lamina_get_logits(c);
  EXPECT_NE(std::memcmp(l, plain.data() + (toks.size() - 1) * 300, 300 * 4), 0);
  ASSERT_EQ(lamina_context_set_adapters(c, nullptr, nullptr, 0), LAMINA_OK);
  lamina_kv_clear(c);
  ASSERT_EQ(lamina_eval(c, toks.data(), toks.size()), LAMINA_OK);
  EXPECT_EQ(std::memcmp(lamina_get_logits(c), plain.data() + (toks.size() - 1) * 300, 300 * 4), 0);
  // Invalid: NaN scale, too many, NULL entry; nothing changes.
  const float nan = std::nanf("");
  EXPECT_EQ(lamina_context_set_adapters(c, list, &nan, 1), LAMINA_ERR_INVALID_ARG);
  EXPECT_NE(std::string(lamina_last_error()).find("not finite"), std::string::npos);
  std::vector<const lamina_adapter*> many(LAMINA_MAX_ADAPTERS + 1, a);
  std::vector<float> ones(many.size(), 1.f);
  EXPECT_EQ(lamina_context_set_adapters(c, many.data(), ones.data(), many.size()),
            LAMINA_ERR_INVALID_ARG);
  const lamina_adapter* null_list[1] = {nullptr};
  EXPECT_EQ(lamina_context_set_adapters(c, null_list, &one, 1), LAMINA_ERR_INVALID_ARG);
  lamina_context_free(c);
}

// A user adapter adds to a model's own adaptors (QAT+LoRA style): own LoRA
// with B A + the adapter B A attached == base + the adapter at scale 2, up
// to float rounding ((y + s u) + s u vs y + 2 s u).
TEST_F(Lora, StacksOnModelsOwnLoraAdaptors) {
  std::string base_path;
  lamina_model* m = Base("f32", &base_path);
  ASSERT_TRUE(m);
  const std::string ad = Adapter("s", "--dtype bf16 --r 4 --alpha 4", base_path);
  const std::string own = dir_ + "/own_lora.f32.lamina";
  std::string err;
  ASSERT_TRUE(WriteWithOwnLora(base_path, ad, own, &err)) << err;
  lamina_model* mo = Load(own);
  ASSERT_TRUE(mo);
  lamina_adapter* a_own = LoadAdapter(mo, ad);  // the adapter binds to both: same norms
  lamina_adapter* a = LoadAdapter(m, ad);
  ASSERT_TRUE(a_own && a);
  const std::vector<int32_t> toks = LoraTokens();
  const std::vector<float> stacked = AdapterLogits(mo, {a_own}, {1.f}, toks);
  const std::vector<float> twice = AdapterLogits(m, {a}, {2.f}, toks);
  const std::vector<float> once = AdapterLogits(m, {a}, {1.f}, toks);
  ASSERT_EQ(stacked.size(), twice.size());
  EXPECT_LE(MaxRel(stacked, twice), 1e-5);
  EXPECT_GE(MaxRel(once, twice), 1e-2);
}

// One model, two contexts on two threads with different adapters at once:
// each reproduces its single-threaded logits bit for bit.
TEST_F(Lora, TwoContextsDifferentAdaptersConcurrently) {
  std::string base_path;
  lamina_model* m = Base("q4", &base_path);
  ASSERT_TRUE(m);
  lamina_adapter* a = LoadAdapter(m, Adapter("x", "--dtype bf16 --seed 21", base_path));
  lamina_adapter* b = LoadAdapter(m, Adapter("y", "--dtype f16 --seed 22 --r 2", base_path));
  ASSERT_TRUE(a && b);
  const std::vector<int32_t> toks = LoraTokens();
  const std::vector<float> wa = AdapterLogits(m, {a}, {1.f}, toks);
  const std::vector<float> wb = AdapterLogits(m, {b}, {1.f}, toks);
  ASSERT_NE(std::memcmp(wa.data(), wb.data(), wa.size() * 4), 0);
  std::vector<float> ga[3], gb[3];
  {
    std::thread ta([&] {
      for (auto& g : ga) g = AdapterLogits(m, {a}, {1.f}, toks);
    });
    std::thread tb([&] {
      for (auto& g : gb) g = AdapterLogits(m, {b}, {1.f}, toks);
    });
    ta.join();
    tb.join();
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(ga[i].size(), wa.size());
    ASSERT_EQ(gb[i].size(), wb.size());
    EXPECT_EQ(std::memcmp(ga[i].data(), wa.data(), wa.size() * 4), 0);
    EXPECT_EQ(std::memcmp(gb[i].data(), wb.data(), wb.size() * 4), 0);
  }
}

// ---- bad adapter files -----------------------------------------------------

// Loads `path` as an adapter of m and expects LAMINA_ERR_ADAPTER with `what`.
void ExpectRefused(lamina_model* m, const std::string& path, const std::string& what) {
  lamina_adapter* a = nullptr;
  EXPECT_EQ(lamina_adapter_load(m, path.c_str(), &a), LAMINA_ERR_ADAPTER) << path;
  EXPECT_EQ(a, nullptr);
  lamina_adapter_free(a);
  EXPECT_NE(std::string(lamina_last_error()).find(what), std::string::npos)
      << "want '" << what << "' in: " << lamina_last_error();
}

// An adapter file written by hand: hparams = m's (modified by `hp_edit`),
// one lora pair for blk.<layer>.<linear> of the given shapes, f32 values v.
bool WriteAdapterFile(const std::string& base, const std::string& out, int layer,
                      const char* linear, uint64_t r, uint64_t N, uint64_t K, float v,
                      uint32_t n_layers_override, std::string* err) {
  auto b = ModelFile::Open(base, LoadOptions{}, err);
  if (!b) return false;
  ModelWriter w;
  if (!w.Open(out, err)) return false;
  format::HParams hp = b->hparams();
  hp.lora_rank = static_cast<uint32_t>(r);
  hp.lora_scale = 1.f;
  if (n_layers_override) hp.n_layers = n_layers_override;
  w.SetHParams(hp);
  w.SetFlags(format::kFlagAdapter);
  w.SetBaseBinding(b->AdapterBinding());
  const std::string n = "blk." + std::to_string(layer) + "." + linear;
  std::vector<float> a(r * K, v), bb(N * r, v);
  return w.AddTensor(n + ".lora_a", format::DType::kF32, format::Layout::kRowMajor, {r, K}, 0, 0,
                     a.data(), a.size() * 4, err) &&
         w.AddTensor(n + ".lora_b", format::DType::kF32, format::Layout::kRowMajor, {N, r}, 0, 0,
                     bb.data(), bb.size() * 4, err) &&
         w.Finish(err);
}

TEST_F(Lora, MalformedAdapterFilesAreRefusedNamingTheTensor) {
  std::string base_path;
  lamina_model* m = Base("q4", &base_path);
  ASSERT_TRUE(m);
  const std::string good = Adapter("good", "--dtype f32", base_path);
  std::string err;
  // A layer the model does not have (the file's own hparams claim 3 layers).
  const std::string extra = dir_ + "/extra_layer.lamina";
  ASSERT_TRUE(WriteAdapterFile(base_path, extra, 2, "attn_v", 4, 32, 64, 0.f, 3, &err)) << err;
  ExpectRefused(m, extra, "blk.2.attn_v.lora_a: layer 2 does not exist (the model has 2 layers)");
  // NaN in the values (checked at load, like the converter and the writer do):
  // a good file with one value patched.
  const std::string nan = dir_ + "/nan.lamina";
  ASSERT_TRUE(WriteAdapterFile(base_path, nan, 0, "attn_v", 4, 32, 64, 0.5f, 0, &err)) << err;
  {
    auto nf = ModelFile::Open(nan, LoadOptions{}, &err);
    ASSERT_TRUE(nf) << err;
    const uint64_t off = nf->Find("blk.0.attn_v.lora_b")->offset + 4 * 5;
    nf.reset();
    std::fstream io(nan, std::ios::in | std::ios::out | std::ios::binary);
    const float q = std::nanf("");
    io.seekp(static_cast<std::streamoff>(off));
    io.write(reinterpret_cast<const char*>(&q), 4);
  }
  ExpectRefused(m, nan, "blk.0.attn_v.lora_b: element 5 is NaN or Inf");
  // A model file is not an adapter, an adapter is not a model.
  ExpectRefused(m, base_path, "not a LoRA adapter file");
  lamina_model* bad = nullptr;
  EXPECT_EQ(lamina_model_load(good.c_str(), nullptr, &bad), LAMINA_ERR_LOAD);
  EXPECT_NE(std::string(lamina_last_error()).find("LoRA adapter file, not a model"),
            std::string::npos);
  // Truncated, and a damaged tensor directory entry.
  std::ifstream f(good, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 70000u);
  const std::string trunc = dir_ + "/truncated.lamina";
  std::ofstream(trunc, std::ios::binary).write(bytes.data(), 70000);
  ExpectRefused(m, trunc, "truncated");
  format::FileHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  std::vector<char> dmg = bytes;
  format::TensorEntry* t0 =
      reinterpret_cast<format::TensorEntry*>(dmg.data() + h.tensor_dir_offset);
  t0->shape[1] += 1;  // A [r, K+1]: size no longer matches
  const std::string dmg_path = dir_ + "/damaged.lamina";
  std::ofstream(dmg_path, std::ios::binary).write(dmg.data(), dmg.size());
  ExpectRefused(m, dmg_path, "tensor blk.0.attn_q.lora_a: ");
  // Renamed to an unknown linear.
  dmg = bytes;
  t0 = reinterpret_cast<format::TensorEntry*>(dmg.data() + h.tensor_dir_offset);
  std::memcpy(t0->name, "blk.0.lm_head.lora_a", 21);
  std::ofstream(dmg_path, std::ios::binary).write(dmg.data(), dmg.size());
  ExpectRefused(m, dmg_path, "blk.0.lm_head.lora_a: not a LoRA tensor name");
}

// An adapter converted for one base, loaded on another: different shapes
// (named tensor), or the same shapes but other weights (binding hash).
TEST_F(Lora, MalformedAdapterOfAnotherBaseModel) {
  std::string base_path;
  lamina_model* m = Base("f32", &base_path);
  ASSERT_TRUE(m);
  const std::string ad = Adapter("for_base", "--dtype bf16", base_path);
  // Same shapes, other weights: gen_hf_model.py with another seed.
  const std::string other_root = dir_ + "/other";
  ASSERT_TRUE(GenHfModel(other_root, "tied_bf16", 99));
  std::string err;
  ASSERT_TRUE(ConvertBase(other_root + "/tied_bf16", dir_ + "/other.lamina", "f32", &err)) << err;
  lamina_model* mo = Load(dir_ + "/other.lamina");
  ASSERT_TRUE(mo);
  ExpectRefused(mo, ad, "converted for another base model");
  // Other shapes: the untied dim-80 variant.
  ASSERT_TRUE(GenHfModel(other_root, "untied_f32_sharded"));
  ASSERT_TRUE(ConvertBase(other_root + "/untied_f32_sharded", dir_ + "/wide.lamina", "q4", &err))
      << err;
  lamina_model* mw = Load(dir_ + "/wide.lamina");
  ASSERT_TRUE(mw);
  ExpectRefused(mw, ad, "blk.0.attn_q.lora_a: shape [4, 64] does not fit the model's blk.0.attn_q");
  // The same checkpoint converted to q4 binds (norms are f32 in every scheme).
  lamina_model* mq = Base("q4");
  ASSERT_TRUE(mq);
  EXPECT_TRUE(LoadAdapter(mq, ad));
}

// ---- adapters on a Hadamard-input ffn_down (R4 / SpinQuant bases) ----------

// gen_hf_model.py's untied_f16 (ffn_dim 128, a power of two) converted with
// --rotate none (f32) and rewritten with R4 (tools/convert/rotate.h, as
// lamina-convert's default does): ffn_down <- W H, kTensorHadamardInput.
class LoraR4 : public Lora {
 protected:
  void SetUp() override {
    LAMINA_REQUIRE_TORCH();
    dir_ = TestDataDir("lora_r4");
    hf_ = dir_ + "/untied_f16";
    ASSERT_TRUE(GenHfModel(dir_, "untied_f16"));
    std::string err;
    none_ = dir_ + "/base.none.f32.lamina";
    ASSERT_TRUE(ConvertBase(hf_, none_, "f32", &err)) << err;
  }
  // none_ rewritten under `weights` with R4 only; checks the flag is set.
  std::string R4Base(const std::string& weights) {
    const std::string out = dir_ + "/base.r4." + weights + ".lamina";
    convert::ConvertOptions o;
    o.weights = weights;
    o.quiet = true;
    o.q4_method = convert::Q4Method::kRtn;
    convert::Rotations r4;
    r4.r4 = true;
    std::string err;
    EXPECT_TRUE(convert::RewriteF32Model(none_, out, o, r4, 0, weights + "+r4", &err)) << err;
    auto f = ModelFile::Open(out, LoadOptions{}, &err);
    EXPECT_TRUE(f) << err;
    if (f) {
      EXPECT_TRUE(f->Find("blk.0.ffn_down")->flags & format::kTensorHadamardInput)
          << "R4 did not flag ffn_down: the test would prove nothing";
    }
    return out;
  }
  // The tokens evaluated (vocab 256).
  static std::vector<int32_t> Tokens() {
    std::vector<int32_t> t = {1};
    TestRng r(12);
    for (int i = 0; i < 19; ++i) t.push_back(static_cast<int32_t>(r.Next() % 256));
    return t;
  }
  std::string none_;
};

// The same adapter file on the R4 base and on the --rotate none base, f32
// weights: logits agree to f32 rounding (max relative error <= 1e-5 of the
// largest logit; the two bases alone differ by their W H vs W rounding), and
// both match PyTorch's float64 merged model (1e-4, the f32 graph tolerance).
// Three adapters: down_proj only (bf16), every linear (f16, rsLoRA), f32 on
// down_proj + up_proj.
TEST_F(LoraR4, AdapterOnDownProjMatchesRotateNoneAndPyTorch) {
  lamina_model* mn = Load(none_);
  const std::string r4_path = R4Base("f32");
  lamina_model* mr = Load(r4_path);
  ASSERT_TRUE(mn && mr);
  const std::vector<int32_t> toks = Tokens();
  std::string tok_arg;
  for (int32_t t : toks) tok_arg += (tok_arg.empty() ? "" : ",") + std::to_string(t);
  const std::vector<float> plain_n = AdapterLogits(mn, {}, {}, toks);
  const std::vector<float> plain_r = AdapterLogits(mr, {}, {}, toks);
  ASSERT_EQ(plain_n.size(), toks.size() * 256);
  ASSERT_EQ(plain_r.size(), plain_n.size());
  const double base_diff = MaxRel(plain_r, plain_n);
  std::printf("[lora r4] bases alone: r4 vs none max rel diff %.3g\n", base_diff);
  EXPECT_LE(base_diff, 1e-5);
  struct Case {
    const char* name;
    const char* args;
  } cases[] = {
      {"down_bf16", "--dtype bf16 --r 4 --alpha 8 --targets down_proj --seed 5"},
      {"all_f16_rslora", "--dtype f16 --r 8 --alpha 16 --rslora --seed 6"},
      {"down_up_f32", "--dtype f32 --r 2 --alpha 3 --targets down_proj,up_proj --seed 7"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string ref = dir_ + "/" + c.name + ".ref";
    const std::string ad = Adapter(c.name, std::string(c.args) + " --ref '" + ref + "'", none_);
    // The adapter file does not depend on the base's rotation: converted
    // against the R4 base it is the same bytes.
    std::string err;
    const std::string ad_r4 = dir_ + "/" + c.name + ".r4.lamina";
    ASSERT_TRUE(ConvertAdapter(dir_ + "/" + c.name, r4_path, ad_r4, &err)) << err;
    EXPECT_EQ(ReadAll(ad_r4), ReadAll(ad));
    const std::string cmd = Python() + " '" + SourceDir() + "/tests/reference/llama_ref.py' " +
                            "--weights '" + ref + "' --tokens " + tok_arg + " --out-float '" + ref +
                            ".golden'";
    ASSERT_EQ(test::Run(cmd), 0) << cmd;
    const std::vector<float> golden = ReadF32(ref + ".golden");
    ASSERT_EQ(golden.size(), plain_n.size());
    lamina_adapter* an = LoadAdapter(mn, ad);
    lamina_adapter* ar = LoadAdapter(mr, ad);
    ASSERT_TRUE(an && ar);
    const std::vector<float> got_n = AdapterLogits(mn, {an}, {1.f}, toks);
    const std::vector<float> got_r = AdapterLogits(mr, {ar}, {1.f}, toks);
    ASSERT_EQ(got_n.size(), golden.size());
    ASSERT_EQ(got_r.size(), golden.size());
    const double r_vs_n = MaxRel(got_r, got_n), r_vs_t = MaxRel(got_r, golden),
                 n_vs_t = MaxRel(got_n, golden), effect = MaxRel(plain_r, golden);
    std::printf(
        "[lora r4 %s] r4 vs none %.3g, r4 vs torch float64 %.3g, none vs torch %.3g (the "
        "adapter moves the logits by %.3g)\n",
        c.name, r_vs_n, r_vs_t, n_vs_t, effect);
    EXPECT_LE(r_vs_n, 1e-5);
    EXPECT_LE(r_vs_t, 1e-4);
    EXPECT_LE(n_vs_t, 1e-4);
    EXPECT_GE(effect, 1e-2);  // the adapter matters: a test that can fail
  }
}

// q4 R4 base (what lamina-convert writes by default, here with RTN scales):
// an adapter on every linear == the same matrices as the model's own LoRA
// adaptors with ffn_down's A stored as A H, bit for bit, batched and token
// by token, 1 and 2 threads. The model's own adaptor multiplies the rotated
// input unchanged (Meta's graph); the adapter's A is rotated once at load.
TEST_F(LoraR4, Q4AdapterBitIdenticalToOwnLoraWithRotatedA) {
  const std::string q4 = R4Base("q4");
  lamina_model* m = Load(q4);
  ASSERT_TRUE(m);
  const std::string ad = Adapter("all_bf16", "--dtype bf16 --r 4 --alpha 8 --seed 3", none_);
  const std::string own = dir_ + "/own_lora.r4.q4.lamina";
  std::string err;
  ASSERT_TRUE(WriteWithOwnLora(q4, ad, own, &err, /*rotate_down=*/true)) << err;
  lamina_model* mo = Load(own);
  ASSERT_TRUE(mo);
  lamina_adapter* a = LoadAdapter(m, ad);
  ASSERT_TRUE(a);
  const std::vector<int32_t> toks = Tokens();
  const std::vector<float> want = AdapterLogits(mo, {}, {}, toks);
  const std::vector<float> plain = AdapterLogits(m, {}, {}, toks);
  ASSERT_EQ(want.size(), toks.size() * 256);
  for (int threads : {1, 2})
    for (int n_batch : {1, 64}) {
      const std::vector<float> got = AdapterLogits(m, {a}, {1.f}, toks, threads, n_batch);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0)
          << threads << " threads, n_batch " << n_batch;
    }
  EXPECT_GE(MaxRel(plain, want), 1e-2);
  // Unrotated A on the model's own path (what the engine did before A H) is
  // a different model: the comparison above can fail.
  const std::string own_raw = dir_ + "/own_lora_raw.r4.q4.lamina";
  ASSERT_TRUE(WriteWithOwnLora(q4, ad, own_raw, &err)) << err;
  lamina_model* mraw = Load(own_raw);
  ASSERT_TRUE(mraw);
  EXPECT_GE(MaxRel(AdapterLogits(mraw, {}, {}, toks), want), 1e-3);
}

}  // namespace
}  // namespace lamina::test
