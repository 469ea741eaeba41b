// Helpers of the LoRA adapter tests (engine/adapter_test.cpp,
// tools/convert/lora_convert_test.cpp): a synthetic Hugging Face Llama
// checkpoint (tests/gen_hf_model.py), PEFT adapters for it
// (tests/gen_peft_adapter.py), their conversions, and logits through the C API.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lamina/lamina.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"
#include "tools/convert/convert.h"

namespace lamina::test {

/// Generates the HF checkpoint `variant` of tests/gen_hf_model.py under
/// root (root/<variant>); false on failure.
inline bool GenHfModel(const std::string& root, const std::string& variant, int seed = 1234) {
  return Run(Python() + " '" + SourceDir() + "/tests/gen_hf_model.py' '" + root + "' --variants " +
             variant + " --seed " + std::to_string(seed) + " >/dev/null") == 0;
}

/// tests/gen_peft_adapter.py HF_DIR OUT_DIR ARGS.
inline bool GenPeft(const std::string& hf_dir, const std::string& out, const std::string& args) {
  return Run(Python() + " '" + SourceDir() + "/tests/gen_peft_adapter.py' '" + hf_dir + "' '" +
             out + "' " + args) == 0;
}

inline bool ConvertBase(const std::string& hf_dir, const std::string& out,
                        const std::string& weights, std::string* err) {
  convert::ConvertOptions o;
  o.weights = weights;
  o.no_tokenizer = true;
  o.quiet = true;
  return convert::ConvertHf(hf_dir, out, o, err);
}

inline bool ConvertAdapter(const std::string& peft, const std::string& base, const std::string& out,
                           std::string* err) {
  convert::ConvertOptions o;
  o.quiet = true;
  return convert::ConvertLoraAdapter(peft, base, out, o, err);
}

/// A whole file's bytes (empty if unreadable).
inline std::vector<char> ReadAll(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// max |got - want| / max |want|: the logits tolerance of the LoRA tests.
inline double MaxRel(const std::vector<float>& got, const std::vector<float>& want) {
  double md = 0, mx = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    md = std::max(md, std::fabs(double(got[i]) - double(want[i])));
    mx = std::max(mx, std::fabs(double(want[i])));
  }
  return md / mx;
}

/// The tokens the LoRA tests evaluate (vocab 300 models).
inline std::vector<int32_t> LoraTokens() {
  std::vector<int32_t> t = {256};
  TestRng r(11);
  for (int i = 0; i < 19; ++i) t.push_back(static_cast<int32_t>(r.Next() % 300));
  return t;
}

/// Every position's logits of `toks` evaluated in one context with the
/// given adapters attached (f32 KV). n_batch 1 evaluates token by token.
inline std::vector<float> AdapterLogits(const lamina_model* m,
                                        const std::vector<const lamina_adapter*>& ads,
                                        const std::vector<float>& scales,
                                        const std::vector<int32_t>& toks, int n_threads = 2,
                                        int n_batch = 64) {
  lamina_model_info mi;
  lamina_model_get_info(m, &mi);
  lamina_context_params p = lamina_context_default_params();
  p.n_ctx = 64;
  p.n_threads = TestThreads(n_threads);
  p.n_batch = n_batch;
  p.logits_all = n_batch > 1;
  p.kv_type = LAMINA_KV_F32;
  lamina_context* c = nullptr;
  EXPECT_EQ(lamina_context_create(m, &p, &c), LAMINA_OK) << lamina_last_error();
  std::vector<float> out;
  if (!c) return out;
  EXPECT_EQ(lamina_context_set_adapters(c, ads.data(), scales.data(), ads.size()), LAMINA_OK)
      << lamina_last_error();
  if (n_batch > 1) {  // chunks of n_batch (logits_all)
    for (size_t i0 = 0; i0 < toks.size(); i0 += static_cast<size_t>(n_batch)) {
      const size_t n = std::min(toks.size() - i0, static_cast<size_t>(n_batch));
      if (lamina_eval(c, toks.data() + i0, n) != LAMINA_OK) break;
      for (size_t i = 0; i < n; ++i) {
        const float* l = lamina_get_logits_ith(c, static_cast<int32_t>(i));
        out.insert(out.end(), l, l + mi.vocab_size);
      }
    }
  } else {
    for (int32_t t : toks) {
      if (lamina_eval(c, &t, 1) != LAMINA_OK) break;
      const float* l = lamina_get_logits(c);
      out.insert(out.end(), l, l + mi.vocab_size);
    }
  }
  lamina_context_free(c);
  return out;
}

}  // namespace lamina::test
