// Token sampling with llama.cpp's semantics: repetition penalty over the last
// N tokens, then top-k -> top-p -> min-p -> temperature -> a draw from a
// seeded PCG32 generator (deterministic on every platform). temperature <= 0
// is greedy (argmax after the penalty; ties: the lowest id).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/grammar.h"

namespace lamina::engine {

struct SamplerParams {
  float temperature = 0.8f;     // <= 0: greedy
  int top_k = 40;               // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;       // tokens of history the penalty looks at (0: off)
  uint64_t seed = 0;
};

/// PCG32 (O'Neill, XSH RR 64/32).
class Pcg32 {
 public:
  explicit Pcg32(uint64_t seed = 0) { Seed(seed); }
  void Seed(uint64_t seed) {
    state_ = 0;
    Next();
    state_ += seed + 0x853c49e6748fea9bULL;
    Next();
  }
  uint32_t Next() {
    const uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + kInc;
    const uint32_t xs = static_cast<uint32_t>(((old >> 18u) ^ old) >> 27u);
    const uint32_t rot = static_cast<uint32_t>(old >> 59u);
    return (xs >> rot) | (xs << ((32u - rot) & 31u));
  }
  /// Uniform in [0, 1) with 24 random bits (exact in f32).
  float Uniform() { return static_cast<float>(Next() >> 8) * (1.0f / 16777216.0f); }
  /// The whole generator state (saved in session files).
  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  static constexpr uint64_t kInc = 0xda3e39cb94b95bdbULL;
  uint64_t state_ = 0;
};

class Sampler {
 public:
  struct Cand {
    float logit;
    int32_t id;
  };

  /// Buffers for a vocabulary of n_vocab are allocated here, once.
  Sampler(const SamplerParams& p, int n_vocab);
  /// Picks a token from logits [n_vocab]; history = previous tokens (for the
  /// repetition penalty). logits are not modified. = Distribution + Draw, then
  /// (with a grammar) the grammar advances by the token. With a grammar: -1 =
  /// no token may follow and the grammar is complete (the model has no stop
  /// token to end with), -2 = error (grammar_error(): a dead end or a cap).
  int32_t Sample(const float* logits, const int32_t* history, int n_history);
  /// Constrains Sample to a grammar (nullptr: unconstrained): tokens the
  /// grammar does not allow are dropped after the repetition penalty, before
  /// top-k (as if their logits were -inf).
  void SetGrammar(std::unique_ptr<GrammarMatcher> g) { grammar_ = std::move(g); }
  GrammarMatcher* grammar() const { return grammar_.get(); }
  const std::string& grammar_error() const { return grammar_error_; }
  /// The distribution Sample draws from, after the whole chain (penalty,
  /// top-k, top-p, min-p, temperature): returns n >= 1; cands()[0..n) with
  /// probs()[0..n) (summing to ~1), best first. Greedy: the argmax alone with
  /// probability 1. Valid until the next call. With a grammar: 0 if no token
  /// is allowed (see Sample).
  int Distribution(const float* logits, const int32_t* history, int n_history);
  const Cand* cands() const { return cand_.data(); }
  const float* probs() const { return probs_.data(); }
  /// One draw from probs()[0..n) of the last Distribution: the first i with
  /// u < probs[0] + ... + probs[i] (float sums), u = rng().Uniform().
  int32_t Draw(int n);
  bool greedy() const { return p_.temperature <= 0.f; }
  Pcg32& rng() { return rng_; }
  int n_vocab() const { return n_vocab_; }
  const SamplerParams& params() const { return p_; }

 private:
  bool ApplyGrammar(int* n);
  SamplerParams p_;
  int n_vocab_;
  Pcg32 rng_;
  std::vector<Cand> cand_;
  std::vector<float> probs_;
  std::vector<uint8_t> seen_;
  std::unique_ptr<GrammarMatcher> grammar_;
  std::string grammar_error_;
};

}  // namespace lamina::engine
