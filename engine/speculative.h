// Speculative decoding: draft several tokens cheaply, verify them with one
// batched pass of the target model (one read of its weights for k+1 tokens),
// keep the longest agreeing prefix, rewind the KV cache past the rest.
//
// Why it is exact: the engine's batch and incremental evaluations give
// bit-identical logits (engine/forward.cpp), so with greedy sampling the
// accepted tokens are exactly plain greedy decoding's. With temperature > 0 the
// standard rejection rule (Leviathan et al. 2023; Chen et al. 2023) makes every
// emitted token's distribution exactly the target sampler's.
//
// Drafters:
//   - prompt lookup (n-gram): the continuation of the most recent earlier
//     occurrence of the longest suffix n-gram of the context (no second model);
//   - a draft model: a second Context on a smaller model with the same
//     vocabulary, run autoregressively from the same tokens.
// Both may be on: lookup first, the draft model when no n-gram matches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/sampler.h"

namespace lamina::engine {

struct SpecParams {
  bool lookup = false;  // prompt-lookup drafting
  int ngram_max = 3;    // longest n-gram matched (then shorter, down to ngram_min)
  int ngram_min = 1;
  // Most tokens drafted per target pass (<= n_batch - 1). Why 11: a pass of
  // t + 11 drafts is 12 tokens, one token tile of the NEON float matmul's
  // chain-major kernel; on text that repeats, drafts of 9-11 tokens are
  // accepted whole (docs/PERFORMANCE.md section 6), and the length adapts
  // (DraftLength) when they are not.
  int draft_max = 11;
  Context* draft = nullptr;  // draft-model context, or nullptr
};

struct SpecStats {
  uint64_t generated = 0;      // tokens emitted
  uint64_t drafted = 0;        // tokens proposed by a drafter
  uint64_t accepted = 0;       // drafted tokens the target accepted
  uint64_t target_passes = 0;  // target forward passes during generation
  uint64_t draft_passes = 0;   // draft-model forward passes
  double ms = 0;               // wall time of the generation loop
};

enum class SpecStop { kLength, kStopToken, kCallback, kContextFull };

struct SpecResult {
  SpecStop reason = SpecStop::kLength;
  EvalStatus status = EvalStatus::kOk;  // of the failing evaluation when false is returned
  int32_t stop_token = -1;
  size_t n_generated = 0;
};

/// Called with each emitted token in order; returns true to stop.
using SpecEmit = std::function<bool(int32_t token)>;

/// Whether `draft` may draft for `target`: same vocabulary size and, when both
/// embed a tokenizer, the same bytes for every token id. False + *err naming
/// the first difference.
bool SameVocabulary(const Model& target, const Model& draft, std::string* err);

/// Generates up to max_tokens after the tokens `target` holds (its logits must
/// be those of its last token). Same contract as plain generation: a stop id
/// ends it unemitted and unevaluated; every emitted token is in the target's
/// KV cache on return, and nothing else is. The draft context (if any) is
/// brought in sync with the target's tokens first. False + *err on an engine
/// error (the contexts may then hold extra tokens).
bool GenerateSpeculative(Context& target, Sampler& sampler, const SpecParams& params,
                         size_t max_tokens, const std::vector<int32_t>& stop_ids,
                         const SpecEmit& emit, SpecResult* result, SpecStats* stats,
                         std::string* err);

/// The prompt-lookup drafter alone (exposed for tests): up to k tokens that
/// followed the most recent earlier occurrence of the longest suffix of `seq`
/// of length in [ngram_min, ngram_max]. *matched (optional): that length (0:
/// no match).
std::vector<int32_t> LookupDraft(const std::vector<int32_t>& seq, int ngram_min, int ngram_max,
                                 int k, int* matched = nullptr);

/// The rejection rule for one drafted token d (exposed for tests). p: the
/// target's distribution (cands/probs of n entries); q: the drafter's
/// probability of each token as a dense [vocab] array, or nullptr for a
/// deterministic drafter (q = 1 at d). Accepts d with probability
/// min(1, p(d) / q(d)) and returns d; otherwise returns a draw from
/// norm(max(0, p - q)). Either way the result is distributed as p.
int32_t AcceptOrResample(const Sampler::Cand* cands, const float* probs, int n, int32_t d,
                         const float* q_dense, Pcg32& rng, std::vector<float>* scratch);

}  // namespace lamina::engine
