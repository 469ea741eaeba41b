// Seeded random Llama 3.2-shaped models for the engine tests, written through
// the converter's own tensor emission (lamina::convert::EmitFloatTensor), so a
// q4/q8 test model is exactly what lamina-convert would produce from the same
// floats. Optionally dumps the float weights for the PyTorch reference
// (tests/reference/llama_ref.py reads <dump>.json + <dump>.bin).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "loader/format.h"
#include "loader/model_writer.h"
#include "tokenizer/tokenizer.h"
#include "tools/convert/convert.h"
#include "tools/import/tokenizer_import.h"

namespace lamina::test {

struct TestModelSpec {
  int dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2, ffn = 96, vocab = 300;
  int max_context = 512;
  float rope_theta = 500000.f;
  bool llama3 = true;
  float rope_factor = 8.f, rope_low = 1.f, rope_high = 4.f;
  int rope_orig = 64;  // small, so the tables' smoothed band is exercised at short lengths
  float norm_eps = 1e-5f;
  bool tied = true;
  std::string scheme = "f32";     // q4 | q8 | bf16 | f32
  std::string output, embedding;  // --output / --embedding types ("" = by scheme)
  std::string q4_scales = "f16";  // q4g scales: f16 (Q4G_R4K8_F16S) | f32 (Q4G_R4K8)
  int lora_rank = 0;
  float lora_scale = 2.f;
  bool hadamard = false;       // SpinQuant R4 flag on ffn_down (ffn must be a power of two)
  bool tokenizer = true;       // embed the 258-token byte tokenizer (vocab >= 258)
  std::string tokenizer_path;  // else embed this tokenizer file; vocab = its size
  uint64_t seed = 1;
};

/// Whether the threaded tests run here: always, unless $LAMINA_TEST_THREADS=0.
/// (Under qemu-user, guest threads work with the multiarch arm64 libc that ctest
/// uses; they hang only with `-L /usr/aarch64-linux-gnu`, the cross toolchain's
/// libc — so never pass that prefix when running the tests.)
inline bool ThreadsWork() {
  static const bool ok = [] {
    if (const char* e = std::getenv("LAMINA_TEST_THREADS")) return std::atoi(e) != 0;
    return true;
  }();
  return ok;
}
/// n threads where threads work, else 1.
inline int TestThreads(int n) { return ThreadsWork() ? n : 1; }
#define LAMINA_REQUIRE_THREADS()                                          \
  do {                                                                    \
    if (!::lamina::test::ThreadsWork())                                   \
      GTEST_SKIP() << "threaded tests disabled by LAMINA_TEST_THREADS=0"; \
  } while (0)

class TestRng {
 public:
  explicit TestRng(uint64_t s) : s_(s * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t Next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return s_;
  }
  // Approximately normal (sum of 4 uniforms), mean 0, std 1.
  float Normal() {
    float a = 0;
    for (int i = 0; i < 4; ++i) a += static_cast<float>(Next() >> 40) / 16777216.f;
    return (a - 2.f) * 1.7320508f;
  }

 private:
  uint64_t s_;
};

inline bool WriteTestModelImpl(const TestModelSpec& s, const Tokenizer& tok, TestRng& rng,
                               const std::string& path, std::string* err, const std::string& dump);

/// Writes a model to `path`; with `dump` non-empty also <dump>.json/.bin (f32).
inline bool WriteTestModel(const TestModelSpec& s, const std::string& path, std::string* err,
                           const std::string& dump = "") {
  TestRng rng(s.seed);
  std::unique_ptr<Tokenizer> tok =
      s.tokenizer_path.empty() ? Tokenizer::Bytes() : TokenizerFromFile(s.tokenizer_path, err);
  if (!tok) return false;
  TestModelSpec spec = s;
  if (!s.tokenizer_path.empty()) spec.vocab = tok->vocab_size();
  return WriteTestModelImpl(spec, *tok, rng, path, err, dump);
}

inline bool WriteTestModelImpl(const TestModelSpec& s, const Tokenizer& tok, TestRng& rng,
                               const std::string& path, std::string* err, const std::string& dump) {
  ModelWriter w;
  if (!w.Open(path, err)) return false;
  format::HParams hp{};
  hp.arch = static_cast<uint32_t>(format::Arch::kLlama);
  hp.dim = s.dim;
  hp.n_layers = s.n_layers;
  hp.n_heads = s.n_heads;
  hp.n_kv_heads = s.n_kv_heads;
  hp.head_dim = s.dim / s.n_heads;
  hp.ffn_dim = s.ffn;
  hp.vocab_size = s.vocab;
  hp.max_context = s.max_context;
  hp.norm_eps = s.norm_eps;
  hp.rope_theta = s.rope_theta;
  hp.rope_scaling =
      static_cast<uint32_t>(s.llama3 ? format::RopeScaling::kLlama3 : format::RopeScaling::kNone);
  hp.rope_factor = s.rope_factor;
  hp.rope_low_freq_factor = s.rope_low;
  hp.rope_high_freq_factor = s.rope_high;
  hp.rope_orig_max_pos = s.rope_orig;
  hp.bos_id = static_cast<uint32_t>(tok.bos_id());
  hp.eos_id = static_cast<uint32_t>(tok.eos_id());
  for (int32_t id : tok.stop_ids())
    if (hp.n_stop_ids < 8) hp.stop_ids[hp.n_stop_ids++] = static_cast<uint32_t>(id);
  hp.lora_rank = s.lora_rank;
  hp.lora_scale = s.lora_scale;
  w.SetHParams(hp);
  w.SetFlags(s.tied ? static_cast<uint32_t>(format::kFlagTiedEmbeddings) : 0u);
  w.SetScheme(s.scheme);
  if (s.tokenizer) w.SetTokenizer(tok.Serialize());

  convert::ConvertOptions opts;
  opts.weights = s.scheme;
  // tests/reference/llama_ref.py simulates the RTN quantizer (f16 scales).
  opts.q4_method = convert::Q4Method::kRtn;
  opts.output = s.output;
  opts.embedding = s.embedding;
  opts.q4_scales = s.q4_scales;
  opts.quiet = true;
  FILE* bin = nullptr;
  std::string json;
  uint64_t off = 0;
  if (!dump.empty()) {
    bin = std::fopen((dump + ".bin").c_str(), "wb");
    if (!bin) {
      *err = "cannot write " + dump + ".bin";
      return false;
    }
  }
  bool ok = true;
  auto emit = [&](const std::string& name, convert::Role role, std::vector<uint64_t> shape,
                  float scale, float bias, uint32_t flags = 0) {
    if (!ok) return;
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    std::vector<float> v(n);
    for (float& x : v) x = bias + scale * rng.Normal();
    ok = convert::EmitFloatTensor(w, name, role, v.data(), shape, opts, err, flags);
    if (bin) {
      std::fwrite(v.data(), sizeof(float), v.size(), bin);
      json += std::string(json.empty() ? "" : ",\n") + "  \"" + name +
              "\": {\"offset\": " + std::to_string(off) + ", \"shape\": [" +
              std::to_string(shape[0]) +
              (shape.size() > 1 ? ", " + std::to_string(shape[1]) : std::string()) + "]}";
      off += n * sizeof(float);
    }
  };
  const uint64_t D = s.dim, F = s.ffn, V = s.vocab, hd = s.dim / s.n_heads;
  const uint64_t QD = s.n_heads * hd, KVD = s.n_kv_heads * hd;
  emit("tok_embd", convert::Role::kEmbedding, {V, D}, 0.25f, 0.f);
  for (int l = 0; l < s.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    emit(p + "attn_norm", convert::Role::kNorm, {D}, 0.1f, 1.f);
    emit(p + "ffn_norm", convert::Role::kNorm, {D}, 0.1f, 1.f);
    struct Lin {
      const char* n;
      uint64_t N, K;
    } lins[7] = {{"attn_q", QD, D},  {"attn_k", KVD, D}, {"attn_v", KVD, D}, {"attn_output", D, QD},
                 {"ffn_gate", F, D}, {"ffn_up", F, D},   {"ffn_down", D, F}};
    for (const Lin& li : lins) {
      const bool down = std::string(li.n) == "ffn_down";
      emit(p + li.n, convert::Role::kLinear, {li.N, li.K}, 1.f / std::sqrt(float(li.K)), 0.f,
           down && s.hadamard ? static_cast<uint32_t>(format::kTensorHadamardInput) : 0u);
      if (s.lora_rank > 0) {
        const uint64_t r = s.lora_rank;
        emit(p + li.n + ".lora_a", convert::Role::kLora, {r, li.K}, 1.f / std::sqrt(float(li.K)),
             0.f);
        emit(p + li.n + ".lora_b", convert::Role::kLora, {li.N, r}, 0.05f, 0.f);
      }
    }
  }
  emit("output_norm", convert::Role::kNorm, {D}, 0.1f, 1.f);
  if (!s.tied) emit("output", convert::Role::kOutput, {V, D}, 1.f / std::sqrt(float(D)), 0.f);
  if (bin) {
    std::fclose(bin);
    FILE* j = std::fopen((dump + ".json").c_str(), "w");
    if (!j) {
      *err = "cannot write " + dump + ".json";
      return false;
    }
    std::fprintf(j,
                 "{\"dim\": %d, \"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, "
                 "\"ffn\": %d, \"vocab\": %d, \"rope_theta\": %.9g, \"llama3\": %d, "
                 "\"rope_factor\": %.9g, \"rope_low\": %.9g, \"rope_high\": %.9g, "
                 "\"rope_orig\": %d, \"norm_eps\": %.9g, \"tied\": %d, \"lora_rank\": %d, "
                 "\"lora_scale\": %.9g, \"hadamard\": %d,\n\"tensors\": {\n%s\n}}\n",
                 s.dim, s.n_layers, s.n_heads, s.n_kv_heads, s.ffn, s.vocab, s.rope_theta,
                 s.llama3 ? 1 : 0, s.rope_factor, s.rope_low, s.rope_high, s.rope_orig, s.norm_eps,
                 s.tied ? 1 : 0, s.lora_rank, s.lora_scale, s.hadamard ? 1 : 0, json.c_str());
    std::fclose(j);
  }
  return ok && w.Finish(err);
}

}  // namespace lamina::test
