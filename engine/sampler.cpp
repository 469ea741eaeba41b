#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lamina::engine {

Sampler::Sampler(const SamplerParams& p, int n_vocab)
    : p_(p), n_vocab_(n_vocab), rng_(p.seed), cand_(n_vocab), probs_(n_vocab), seen_(n_vocab) {}

int32_t Sampler::Sample(const float* logits, const int32_t* history, int n_history) {
  const int n = Distribution(logits, history, n_history);
  if (n <= 0) return grammar_ && grammar_error_.empty() ? -1 : -2;
  const int32_t t = greedy() ? cand_[0].id : Draw(n);
  if (grammar_ && !grammar_->AcceptToken(t, &grammar_error_)) return -2;
  return t;
}

int32_t Sampler::Draw(int n) {
  const float u = rng_.Uniform();
  float cum = 0.f;
  for (int i = 0; i < n; ++i) {
    cum += probs_[i];
    if (u < cum) return cand_[i].id;
  }
  return cand_[n - 1].id;
}

// Keeps the candidates the grammar allows (cand_[i].id == i here).
bool Sampler::ApplyGrammar(int* n) {
  grammar_error_.clear();
  const uint32_t* bits = nullptr;
  const int allowed = grammar_->ComputeMask(&bits, &grammar_error_);
  if (allowed < 0) return false;
  if (allowed == 0) {
    if (!grammar_->CanEnd())
      grammar_error_ = "grammar: no token of the vocabulary can continue the output here";
    return false;
  }
  int j = 0;
  for (int i = 0; i < *n; ++i)
    if ((bits[i >> 5] >> (i & 31)) & 1u) cand_[j++] = cand_[i];
  *n = j;
  return j > 0;
}

int Sampler::Distribution(const float* logits, const int32_t* history, int n_history) {
  int n = n_vocab_;
  // NaN (a model with non-finite weights) would break the sort's strict weak
  // ordering: treat it as -inf.
  for (int i = 0; i < n; ++i)
    cand_[i] = {std::isnan(logits[i]) ? -std::numeric_limits<float>::infinity() : logits[i], i};
  // Repetition penalty (llama.cpp): each distinct id among the last N tokens:
  // logit > 0 ? logit / penalty : logit * penalty.
  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n > 0 && n_history > 0) {
    const int start = std::max(0, n_history - p_.repeat_last_n);
    for (int i = start; i < n_history; ++i) {
      const int32_t id = history[i];
      if (id < 0 || id >= n || seen_[id]) continue;
      seen_[id] = 1;
      float& l = cand_[id].logit;
      l = l > 0.f ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
    for (int i = start; i < n_history; ++i)
      if (history[i] >= 0 && history[i] < n) seen_[history[i]] = 0;
  }
  if (grammar_ && !ApplyGrammar(&n)) return 0;
  // Order: logit descending, then id ascending (a total, platform-independent order).
  auto better = [](const Cand& a, const Cand& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  if (p_.temperature <= 0.f) {
    Cand best = cand_[0];
    for (int i = 1; i < n; ++i)
      if (better(cand_[i], best)) best = cand_[i];
    cand_[0] = best;
    probs_[0] = 1.f;
    return 1;
  }
  // top-k
  if (p_.top_k > 0 && p_.top_k < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.begin() + n, better);
    n = p_.top_k;
  } else {
    std::sort(cand_.begin(), cand_.begin() + n, better);
  }
  // Softmax of the (untempered) logits, as llama.cpp's top-p / min-p see them.
  auto softmax = [&](int cnt, float temp) {
    const float mx = cand_[0].logit;
    float sum = 0.f;
    for (int i = 0; i < cnt; ++i) {
      probs_[i] = std::exp((cand_[i].logit - mx) / temp);
      sum += probs_[i];
    }
    for (int i = 0; i < cnt; ++i) probs_[i] /= sum;
  };
  // top-p: the smallest prefix whose probability mass reaches p (at least 1).
  if (p_.top_p < 1.f) {
    softmax(n, 1.f);
    float cum = 0.f;
    int keep = n;
    for (int i = 0; i < n; ++i) {
      cum += probs_[i];
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = keep;
  }
  // min-p: drop tokens with p < min_p * p_max (in logit space: l < lmax + log(min_p)).
  if (p_.min_p > 0.f) {
    const float thr = cand_[0].logit + std::log(p_.min_p);
    int keep = 1;
    while (keep < n && cand_[keep].logit >= thr) ++keep;
    n = keep;
  }
  // temperature (the draw is Draw's).
  softmax(n, p_.temperature);
  return n;
}

}  // namespace lamina::engine
