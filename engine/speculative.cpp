#include "engine/speculative.h"

#include <algorithm>
#include <chrono>

namespace lamina::engine {
namespace {

bool IsStop(const std::vector<int32_t>& stops, int32_t t) {
  return std::find(stops.begin(), stops.end(), t) != stops.end();
}

// Adaptive draft length. Why: a fixed k loses when acceptance is low (every
// rejected token is verification work for nothing) and leaves speed on the
// table when it is high. After a round that accepted every drafted token the
// length doubles; otherwise it becomes one more than what was accepted.
// A draft model costs a forward pass per drafted token, so when its recent
// acceptance rate (an exponential average) drops below 15%, drafting pauses
// for a while (plain decoding), with pauses doubling up to 256 tokens while it
// keeps not paying. Prompt lookup costs nothing to draft and a rejected token
// only adds a row to a pass that reads the weights once anyway, so it never
// pauses (its length still falls to 1 while it misses).
class DraftLength {
 public:
  DraftLength(int k_max, bool may_pause)
      : k_max_(k_max), k_(std::min(4, k_max)), may_pause_(may_pause) {}
  // Tokens to draft for the next round (0: a plain decoding step).
  int Next() {
    if (pause_ > 0) {
      --pause_;
      return 0;
    }
    return k_;
  }
  void Update(int drafted, int accepted) {
    if (drafted == 0) return;
    ++rounds_;
    rate_ = 0.7 * rate_ + 0.3 * static_cast<double>(accepted) / drafted;
    k_ = accepted == drafted ? std::min(k_max_, 2 * k_) : std::max(1, accepted + 1);
    if (may_pause_ && rounds_ >= 4 && rate_ < 0.15) {
      pause_ = pause_len_;
      pause_len_ = std::min(2 * pause_len_, 256);
      rate_ = 0.5;
      rounds_ = 0;
    }
  }

 private:
  int k_max_, k_;
  bool may_pause_;
  double rate_ = 0.5;
  int rounds_ = 0, pause_ = 0, pause_len_ = 8;
};

// Prompt lookup, gated by how often a match of each n-gram length predicts
// the next token. Why: a drafted token that is rejected still costs its row of
// the verification pass (its activations, attention, logits), which only pays
// when a draft is accepted often enough to save passes. Short matches (one
// token of a 512-token vocabulary) often predict badly (stories260K: 25% for
// unigrams, 82% for trigrams), long ones well. So each length n keeps an
// exponential average of "the match's first token was the next token"; while
// it is below kMinRate, matches of that length are not drafted, but still
// scored against the token the pass then produces, so the gate reopens when
// they start to predict.
class LookupGate {
 public:
  explicit LookupGate(int ngram_max) : rate_(static_cast<size_t>(ngram_max) + 1, 0.5) {}
  bool Open(int n) const { return rate_[static_cast<size_t>(n)] >= kMinRate; }
  void Score(int n, bool hit) {
    double& r = rate_[static_cast<size_t>(n)];
    r = (1 - kAlpha) * r + (hit ? kAlpha : 0.0);
  }

 private:
  static constexpr double kMinRate = 0.4, kAlpha = 0.25;
  std::vector<double> rate_;
};

// Brings `d` to hold exactly the tokens `seq` with the logits of the last one:
// keeps the common prefix of its cache, evaluates the rest.
bool SyncDraft(Context& d, const std::vector<int32_t>& seq, SpecStats* st, std::string* err) {
  const std::vector<int32_t>& h = d.history();
  size_t keep = 0;
  while (keep < h.size() && keep < seq.size() && h[keep] == seq[keep]) ++keep;
  if (keep == seq.size() && keep == h.size() && d.logits()) return true;
  if (keep == seq.size()) --keep;  // the last token again, for its logits
  d.Rewind(static_cast<int>(keep));
  const int n = static_cast<int>(seq.size() - keep);
  if (d.Eval(seq.data() + keep, n, err) != EvalStatus::kOk) {
    *err = "draft model: " + *err;
    return false;
  }
  st->draft_passes += static_cast<uint64_t>((n + d.n_batch() - 1) / d.n_batch());
  return true;
}

}  // namespace

bool SameVocabulary(const Model& target, const Model& draft, std::string* err) {
  const int v = target.config().vocab;
  if (draft.config().vocab != v) {
    *err = "the draft model's vocabulary has " + std::to_string(draft.config().vocab) +
           " tokens, the target's " + std::to_string(v) +
           ": a draft model must share the "
           "target's tokenizer";
    return false;
  }
  const Tokenizer* a = target.has_tokenizer() ? target.tokenizer() : nullptr;
  const Tokenizer* b = draft.has_tokenizer() ? draft.tokenizer() : nullptr;
  if (!a || !b) return true;  // driven by ids: the sizes agree
  if (a->vocab_size() != b->vocab_size()) {
    *err = "the draft model's tokenizer has " + std::to_string(b->vocab_size()) +
           " tokens, the target's " + std::to_string(a->vocab_size());
    return false;
  }
  for (int32_t id = 0; id < a->vocab_size(); ++id)
    if (a->TokenBytes(id) != b->TokenBytes(id) || a->IsSpecial(id) != b->IsSpecial(id)) {
      *err =
          "the draft model's tokenizer differs from the target's at token id " + std::to_string(id);
      return false;
    }
  return true;
}

std::vector<int32_t> LookupDraft(const std::vector<int32_t>& seq, int ngram_min, int ngram_max,
                                 int k, int* matched) {
  const int L = static_cast<int>(seq.size());
  if (matched) *matched = 0;
  if (k <= 0) return {};
  for (int n = std::min(ngram_max, L - 1); n >= std::max(1, ngram_min); --n) {
    const int32_t* suffix = seq.data() + (L - n);
    // The most recent earlier occurrence (start < L - n).
    for (int s = L - n - 1; s >= 0; --s) {
      if (!std::equal(suffix, suffix + n, seq.data() + s)) continue;
      const int end = std::min(L, s + n + k);
      if (matched) *matched = n;
      return std::vector<int32_t>(seq.begin() + (s + n), seq.begin() + end);
    }
  }
  return {};
}

int32_t AcceptOrResample(const Sampler::Cand* cands, const float* probs, int n, int32_t d,
                         const float* q_dense, Pcg32& rng, std::vector<float>* scratch) {
  float pd = 0.f;
  for (int i = 0; i < n; ++i)
    if (cands[i].id == d) pd = probs[i];
  const float qd = q_dense ? q_dense[d] : 1.f;
  // Accept with probability min(1, pd / qd): u < pd / qd, as u * qd < pd.
  if (rng.Uniform() * qd < pd) return d;
  // Rejected (so pd < qd): draw from the residual max(0, p - q), normalised.
  std::vector<float>& r = *scratch;
  r.resize(static_cast<size_t>(n));
  float sum = 0.f;
  for (int i = 0; i < n; ++i) {
    const int32_t id = cands[i].id;
    const float q = q_dense ? q_dense[id] : (id == d ? 1.f : 0.f);
    r[i] = std::max(0.f, probs[i] - q);
    sum += r[i];
  }
  if (!(sum > 0.f)) {  // p == q up to rounding: any draw from p is right
    for (int i = 0; i < n; ++i) r[i] = probs[i];
    sum = 1.f;
  }
  const float u = rng.Uniform() * sum;
  float cum = 0.f;
  int last = -1;
  for (int i = 0; i < n; ++i) {
    if (r[i] <= 0.f) continue;
    last = i;
    cum += r[i];
    if (u < cum) return cands[i].id;
  }
  return cands[last >= 0 ? last : 0].id;
}

bool GenerateSpeculative(Context& target, Sampler& sampler, const SpecParams& params,
                         size_t max_tokens, const std::vector<int32_t>& stop_ids,
                         const SpecEmit& emit, SpecResult* result, SpecStats* stats,
                         std::string* err) {
  const auto t0 = std::chrono::steady_clock::now();
  SpecResult res;
  SpecStats& st = *stats;
  const int vocab = target.model().config().vocab;
  if (!target.logits()) {
    *err = "speculative generation: no logits (evaluate a prompt first)";
    return false;
  }
  const int k_max = std::max(0, std::min(params.draft_max, target.n_batch() - 1));
  Context* dctx = params.draft;
  // The draft model samples with the target's chain on its own logits, from
  // its own deterministic random stream.
  SamplerParams dp = sampler.params();
  dp.seed ^= 0x9e3779b97f4a7c15ull;
  Sampler dsampler(dp, vocab);
  const bool greedy = sampler.greedy();
  // Sampling with a draft model: q of each drafted position, sparse (id, prob).
  std::vector<std::vector<Sampler::Cand>> q_sparse(static_cast<size_t>(k_max));
  std::vector<float> q_dense, scratch;
  if (!greedy && dctx) q_dense.assign(static_cast<size_t>(vocab), 0.f);

  std::vector<int32_t> seq = target.history();  // tokens in the target's cache
  // A full context: shift as plain generation does (engine.h ShiftForRoom; the
  // draft model's cache drops the same positions) or stop. Checked before
  // each token is sampled, as plain generation does, so the history the
  // sampler sees and the positions shifted are exactly plain generation's
  // (a verification pass never runs past n_ctx).
  auto full = [&]() {
    if (target.n_past() < target.n_ctx()) return false;
    int keep = 0, discard = 0;
    if (!ShiftForRoom(target, 1, &keep, &discard)) return true;
    if (dctx) {
      if (dctx->n_past() >= keep + discard) {
        dctx->Shift(keep, discard);
      } else {
        dctx->Rewind(std::min(keep, dctx->n_past()));
      }
    }
    seq = target.history();
    return false;
  };
  DraftLength len(k_max, dctx != nullptr);
  LookupGate gate(std::max(1, params.ngram_max));
  std::vector<int32_t> batch, drafts, dhist;
  bool from_model = false;
  int look_n = 0;      // n-gram length of this round's lookup match (0: none)
  int32_t gated = -1;  // the first token of a match the gate held back
  int32_t t = -1;      // the token to emit next (-1: none)
  if (max_tokens == 0) {
    // nothing to generate (as plain generation: no context check either)
  } else if (full()) {
    res.reason = SpecStop::kContextFull;
  } else {
    t = sampler.Sample(target.logits(), seq.data(), static_cast<int>(seq.size()));
  }
  while (t >= 0) {
    if (IsStop(stop_ids, t)) {
      res.reason = SpecStop::kStopToken;
      res.stop_token = t;
      break;
    }
    const bool cb_stop = emit(t);
    ++res.n_generated;
    const bool done = cb_stop || res.n_generated >= max_tokens;
    // ---- draft up to k tokens after seq + t
    int k = done ? 0 : len.Next();
    k = std::min<int>(k, target.n_ctx() - target.n_past() - 1);
    k = std::min<int>(k, static_cast<int>(max_tokens - res.n_generated));
    drafts.clear();
    from_model = false;
    look_n = 0;
    gated = -1;
    if (k > 0) {
      batch = seq;
      batch.push_back(t);
      if (params.lookup) {
        drafts = LookupDraft(batch, params.ngram_min, params.ngram_max, k, &look_n);
        if (!drafts.empty() && !gate.Open(look_n)) {
          gated = drafts[0];
          drafts.clear();
        }
      }
      if (drafts.empty() && dctx &&
          batch.size() + static_cast<size_t>(k) <= static_cast<size_t>(dctx->n_ctx())) {
        from_model = true;
        if (!SyncDraft(*dctx, batch, &st, err)) return false;
        dhist = batch;
        for (int j = 0; j < k; ++j) {
          int32_t d;
          const int n =
              dsampler.Distribution(dctx->logits(), dhist.data(), static_cast<int>(dhist.size()));
          if (greedy) {
            d = dsampler.cands()[0].id;
          } else {
            d = dsampler.Draw(n);
            q_sparse[j].assign(dsampler.cands(), dsampler.cands() + n);
            for (int i = 0; i < n; ++i) q_sparse[j][i].logit = dsampler.probs()[i];
          }
          drafts.push_back(d);
          dhist.push_back(d);
          if (IsStop(stop_ids, d) || j + 1 == k) break;
          if (dctx->Eval(&d, 1, err) != EvalStatus::kOk) {
            *err = "draft model: " + *err;
            return false;
          }
          ++st.draft_passes;
        }
      }
    }
    // ---- one target pass over t + drafts
    batch.assign(1, t);
    batch.insert(batch.end(), drafts.begin(), drafts.end());
    res.status = target.Eval(batch.data(), static_cast<int>(batch.size()), err, !drafts.empty());
    if (res.status != EvalStatus::kOk) {
      *result = res;
      return false;
    }
    ++st.target_passes;
    seq.push_back(t);
    if (done) {
      res.reason = cb_stop ? SpecStop::kCallback : SpecStop::kLength;
      break;
    }
    // ---- verify the drafts in order
    st.drafted += drafts.size();
    int n_acc = 0;
    int32_t next = -1;
    bool finish = false;
    for (size_t i = 0; i < drafts.size(); ++i) {
      const int32_t d = drafts[i];
      const int n = sampler.Distribution(target.logits_row(static_cast<int>(i)), seq.data(),
                                         static_cast<int>(seq.size()));
      int32_t tok;
      if (greedy) {
        tok = sampler.cands()[0].id;
      } else if (from_model) {
        for (const Sampler::Cand& c : q_sparse[i]) q_dense[c.id] = c.logit;
        tok = AcceptOrResample(sampler.cands(), sampler.probs(), n, d, q_dense.data(),
                               sampler.rng(), &scratch);
        for (const Sampler::Cand& c : q_sparse[i]) q_dense[c.id] = 0.f;
      } else {
        tok = AcceptOrResample(sampler.cands(), sampler.probs(), n, d, nullptr, sampler.rng(),
                               &scratch);
      }
      if (tok != d) {
        next = tok;
        break;
      }
      ++n_acc;
      if (IsStop(stop_ids, d)) {
        res.reason = SpecStop::kStopToken;
        res.stop_token = d;
        finish = true;
        break;
      }
      const bool stop = emit(d);
      ++res.n_generated;
      seq.push_back(d);
      if (stop || res.n_generated >= max_tokens) {
        res.reason = stop ? SpecStop::kCallback : SpecStop::kLength;
        finish = true;
        break;
      }
    }
    st.accepted += static_cast<uint64_t>(n_acc);
    len.Update(static_cast<int>(drafts.size()), n_acc);
    if (!finish && next < 0) {  // every draft accepted: the token after them
      if (full()) {
        res.reason = SpecStop::kContextFull;
        break;
      }
      next = sampler.Sample(target.logits_row(static_cast<int>(drafts.size())), seq.data(),
                            static_cast<int>(seq.size()));
    }
    if (look_n > 0) {  // score the lookup match (drafted or held back) by the token after t
      const int32_t guess = gated >= 0 ? gated : from_model || drafts.empty() ? -1 : drafts[0];
      if (guess >= 0) gate.Score(look_n, (n_acc > 0 ? drafts[0] : next) == guess);
    }
    if (target.n_past() != static_cast<int>(seq.size()))
      target.Rewind(static_cast<int>(seq.size()));
    if (finish) break;
    t = next;
  }
  st.generated += res.n_generated;
  st.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  *result = res;
  return true;
}

}  // namespace lamina::engine
