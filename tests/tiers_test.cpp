// Whole-model cross-tier exactness through the public C API only: for every
// kernel tier this CPU has (neon, dotprod, i8mm, sve on aarch64; avx2,
// avxvnni, avx512vnni on x86-64), the logits of a prefill batch and of
// single-token decode steps are bit-identical (memcmp) to the ref tier's with
// 1 thread, for every weight scheme (q4 with f16 and f32 group scales, q8,
// f32, bf16, LoRA, SpinQuant Hadamard, q4g output layer and embedding), KV f32
// and f16, 1, 2 and 4 threads on x86-64 (1 and 3 under QEMU, to keep that run
// short).
//
// On aarch64 the suite runs under `qemu-aarch64 -cpu max` (every Arm tier),
// where fewer than one non-ref tier is a failure; on x86-64 every x86 tier
// the host CPU has (kern::TierAvailable) must have run.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "lamina/lamina.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

struct ModelDel {
  void operator()(lamina_model* m) const { lamina_model_free(m); }
};
struct CtxDel {
  void operator()(lamina_context* c) const { lamina_context_free(c); }
};
using ModelPtr = std::unique_ptr<lamina_model, ModelDel>;
using CtxPtr = std::unique_ptr<lamina_context, CtxDel>;

constexpr int kPrefill = 11;  // odd: exercises the GEMM row/pair tails
constexpr int kDecode = 4;    // single-token steps after the prefill

// The token sequence: a prefill batch, then kDecode tokens one per call.
std::vector<int32_t> Tokens(int vocab) {
  TestRng r(2024);
  std::vector<int32_t> t(kPrefill + kDecode);
  for (int32_t& x : t) x = static_cast<int32_t>(r.Next() % static_cast<uint64_t>(vocab));
  return t;
}

// Logits of every prefill position (one lamina_eval of kPrefill tokens) and of
// every decode step (lamina_eval of 1 token each), concatenated.
bool RunLogits(const lamina_model* m, lamina_kv_type kv, int threads, std::vector<float>* out,
               std::string* err) {
  lamina_model_info mi;
  if (lamina_model_get_info(m, &mi) != LAMINA_OK) return *err = lamina_last_error(), false;
  lamina_context_params p = lamina_context_default_params();
  p.n_ctx = 64;
  p.n_threads = threads;
  p.n_batch = 32;
  p.logits_all = 1;
  p.kv_type = kv;
  lamina_context* raw = nullptr;
  if (lamina_context_create(m, &p, &raw) != LAMINA_OK) return *err = lamina_last_error(), false;
  CtxPtr c(raw);
  const std::vector<int32_t> t = Tokens(mi.vocab_size);
  out->clear();
  auto take = [&](int i) {
    const float* l = lamina_get_logits_ith(c.get(), i);
    if (!l) return *err = "no logits for token " + std::to_string(i), false;
    out->insert(out->end(), l, l + mi.vocab_size);
    return true;
  };
  if (lamina_eval(c.get(), t.data(), kPrefill) != LAMINA_OK)
    return *err = std::string("prefill: ") + lamina_last_error(), false;
  for (int i = 0; i < kPrefill; ++i)
    if (!take(i)) return false;
  for (int i = kPrefill; i < kPrefill + kDecode; ++i) {
    if (lamina_eval(c.get(), t.data() + i, 1) != LAMINA_OK)
      return *err = std::string("decode: ") + lamina_last_error(), false;
    if (!take(0)) return false;
  }
  return true;
}

// First differing element (index, a, b) for the failure message.
std::string FirstDiff(const std::vector<float>& a, const std::vector<float>& b, int vocab) {
  if (a.size() != b.size())
    return "sizes " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  size_t n = 0, first = a.size();
  float maxd = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], 4) == 0) continue;
    if (first == a.size()) first = i;
    ++n;
    const float d = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
    if (d > maxd) maxd = d;
  }
  if (n == 0) return "equal";
  return std::to_string(n) + " of " + std::to_string(a.size()) + " logits differ; first at token " +
         std::to_string(first / vocab) + " id " + std::to_string(first % vocab) + ": " +
         std::to_string(a[first]) + " vs " + std::to_string(b[first]) + "; max |diff| " +
         std::to_string(maxd);
}

struct Variant {
  const char* name;
  TestModelSpec spec;
};

std::vector<Variant> Variants() {
  std::vector<Variant> v;
  TestModelSpec base;
  base.seed = 41;
  base.ffn = 128;     // a power of two, for the Hadamard variant
  base.tied = false;  // a separate output matrix (q8c in the quantized schemes)
  base.vocab = 301;   // output rows not a multiple of the 4-row interleave
  for (const char* scheme : {"q4", "q8", "f32", "bf16"}) {
    TestModelSpec s = base;
    s.scheme = scheme;
    v.push_back({scheme, s});
  }
  TestModelSpec lora = base;
  lora.scheme = "q4";
  lora.lora_rank = 4;
  v.push_back({"q4_lora", lora});
  TestModelSpec had = base;
  had.scheme = "q4";
  had.hadamard = true;
  v.push_back({"q4_hadamard", had});
  TestModelSpec tied = base;
  tied.scheme = "q4";
  tied.tied = true;  // the output layer reads the q8c embedding
  v.push_back({"q4_tied", tied});
  TestModelSpec f32s = base;  // format 1.0's q4g layout (f32 group scales)
  f32s.scheme = "q4";
  f32s.q4_scales = "f32";
  v.push_back({"q4_f32_scales", f32s});
  TestModelSpec q4out = base;  // q4g output layer, q4g embedding (dequantized lookup)
  q4out.scheme = "q4";
  q4out.output = "q4";
  q4out.embedding = "q4";
  v.push_back({"q4_output_q4_embedding_q4", q4out});
  TestModelSpec q4tied = q4out;  // the output layer reads the q4g embedding
  q4tied.tied = true;
  v.push_back({"q4_tied_q4", q4tied});
  return v;
}

TEST(Tiers, WholeModelLogitsBitIdenticalAcrossTiersAndThreads) {
  const std::string dir = TestDataDir("tiers");
#if defined(__x86_64__)
  const int threads[] = {1, TestThreads(2), TestThreads(4)};
#else
  const int threads[] = {1, TestThreads(3)};  // under QEMU: keep the run short
#endif
  const lamina_kv_type kvs[] = {LAMINA_KV_F32, LAMINA_KV_F16, LAMINA_KV_Q8};
  const char* const kv_names[] = {"f32", "f16", "q8"};
  int tiers_compared = 0;  // non-ref tiers that ran (counted on the first model)
  std::string tiers_seen;
  bool first_model = true;
  for (const Variant& var : Variants()) {
    SCOPED_TRACE(var.name);
    const std::string path = dir + "/" + var.name + ".lamina";
    std::string err;
    ASSERT_TRUE(WriteTestModel(var.spec, path, &err)) << err;

    // The reference: ref tier, 1 thread, per KV type.
    lamina_model_params mp = lamina_model_default_params();
    mp.kernels = "ref";
    lamina_model* raw = nullptr;
    ASSERT_EQ(lamina_model_load(path.c_str(), &mp, &raw), LAMINA_OK) << lamina_last_error();
    ModelPtr ref_model(raw);
    const int vocab = var.spec.vocab;
    std::vector<float> want[3];
    for (int k = 0; k < 3; ++k) {
      ASSERT_TRUE(RunLogits(ref_model.get(), kvs[k], 1, &want[k], &err)) << err;
      ASSERT_EQ(want[k].size(), static_cast<size_t>(kPrefill + kDecode) * vocab);
      for (float x : want[k]) ASSERT_TRUE(x == x && x - x == 0) << "non-finite logit";
    }
    // The KV type matters (else the f16 runs would not test anything new).
    EXPECT_NE(std::memcmp(want[0].data(), want[1].data(), want[0].size() * 4), 0);
    EXPECT_NE(std::memcmp(want[1].data(), want[2].data(), want[1].size() * 4), 0);

    for (const char* tier :
         {"ref", "neon", "dotprod", "i8mm", "sve", "avx2", "avxvnni", "avx512vnni"}) {
      mp.kernels = tier;
      raw = nullptr;
      const lamina_status st = lamina_model_load(path.c_str(), &mp, &raw);
      if (st == LAMINA_ERR_KERNEL_TIER) {
        if (first_model) std::printf("[ tiers    ] %s: not available here, skipped\n", tier);
        continue;
      }
      ASSERT_EQ(st, LAMINA_OK) << tier << ": " << lamina_last_error();
      ModelPtr m(raw);
      lamina_model_info mi;
      ASSERT_EQ(lamina_model_get_info(m.get(), &mi), LAMINA_OK);
      EXPECT_STREQ(mi.kernel_tier, tier);
      if (first_model && std::strcmp(tier, "ref") != 0) {
        ++tiers_compared;
        tiers_seen += std::string(" ") + tier;
      }
      for (int k = 0; k < 3; ++k) {
        for (int th : threads) {
          if (std::strcmp(tier, "ref") == 0 && th == 1) continue;  // that is the reference
          std::vector<float> got;
          ASSERT_TRUE(RunLogits(m.get(), kvs[k], th, &got, &err)) << err;
          EXPECT_TRUE(got.size() == want[k].size() &&
                      std::memcmp(got.data(), want[k].data(), got.size() * 4) == 0)
              << var.name << " tier " << tier << " kv " << kv_names[k] << " threads " << th << ": "
              << FirstDiff(want[k], got, vocab);
        }
      }
    }
    first_model = false;
  }
  std::printf("[ tiers    ] %d non-ref tier(s) compared with ref:%s\n", tiers_compared,
              tiers_seen.c_str());
#if defined(__aarch64__)
  // Every aarch64 CPU has NEON: at least the neon tier must have run.
  EXPECT_GE(tiers_compared, 1) << "no non-ref kernel tier ran on this aarch64 CPU";
#elif defined(__x86_64__)
  // Every x86 tier the CPU has must have run.
  int expected = 0;
  for (kern::Tier t : {kern::Tier::kAvx2, kern::Tier::kAvxVnni, kern::Tier::kAvx512Vnni})
    expected += kern::TierAvailable(t) ? 1 : 0;
  EXPECT_EQ(tiers_compared, expected);
#else
  // Only ref is compiled on this host; ref 2/4 threads vs ref 1 thread ran above.
  EXPECT_EQ(tiers_compared, 0);
#endif
}

}  // namespace
}  // namespace lamina::test
