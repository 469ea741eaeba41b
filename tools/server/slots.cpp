#include "tools/server/slots.h"

#include <algorithm>

namespace lamina::server {

void SlotPool::Clear() {
  for (Slot& s : slots_) lamina_context_free(s.ctx);
  slots_.clear();
}

bool SlotPool::Init(const lamina_model* model, int n, const lamina_context_params& cp,
                    std::string* err) {
  slots_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    slots_[i].id = i;
    const lamina_status st = lamina_context_create(model, &cp, &slots_[i].ctx);
    if (st != LAMINA_OK) {
      *err = "slot " + std::to_string(i) + ": " + lamina_last_error();
      return false;
    }
  }
  return true;
}

Slot* SlotPool::Acquire(const std::vector<int32_t>& prompt, Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t ticket = next_ticket_++;
  queue_.push_back(ticket);
  auto free_slot = [&]() -> Slot* {
    Slot* best = nullptr;
    size_t best_prefix = 0;
    for (Slot& s : slots_) {
      if (s.busy) continue;
      const size_t p = CommonPrefix(s.cached, prompt);
      if (!best || p > best_prefix || (p == best_prefix && s.last_used < best->last_used)) {
        best = &s;
        best_prefix = p;
      }
    }
    return best;
  };
  Slot* got = nullptr;
  cv_.wait_until(lock, deadline, [&] {
    if (queue_.front() != ticket) return false;
    got = free_slot();
    return got != nullptr;
  });
  queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
  if (got) {
    got->busy = true;
    got->last_used = ++use_counter_;
  }
  cv_.notify_all();  // the next in line may proceed (another slot may be free)
  return got;
}

void SlotPool::Release(Slot* s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    s->busy = false;
  }
  cv_.notify_all();
}

int SlotPool::n_busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const Slot& s : slots_) n += s.busy;
  return n;
}

size_t SlotPool::n_queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

size_t CommonPrefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

size_t ReusePrefix(Slot* s, const std::vector<int32_t>& prompt) {
  size_t keep = CommonPrefix(s->cached, prompt);
  if (keep >= prompt.size()) keep = prompt.empty() ? 0 : prompt.size() - 1;
  if (static_cast<int32_t>(keep) > lamina_n_past(s->ctx) ||
      lamina_kv_rewind(s->ctx, static_cast<int32_t>(keep)) != LAMINA_OK) {
    keep = 0;
    lamina_kv_clear(s->ctx);
  }
  s->cached.resize(keep);
  return keep;
}

namespace {

struct CallbackState {
  const GenParams* p;
  GenOutcome* out;
  std::vector<int32_t>* ids;
};

int OnToken(int32_t token, const char* piece, size_t len, void* user) {
  CallbackState* st = static_cast<CallbackState*>(user);
  if (token >= 0) st->ids->push_back(token);
  std::string text = piece ? std::string(piece, len) : std::string();
  st->out->text += text;
  if (st->p->on_text && !text.empty() && !st->p->on_text(text)) {
    st->out->client_gone = true;
    return 1;
  }
  if (token >= 0 && Clock::now() >= st->p->deadline) {
    st->out->timed_out = true;
    return 1;
  }
  return 0;
}

}  // namespace

GenOutcome Generate(const lamina_model* model, Slot* s, const std::vector<int32_t>& prompt,
                    const GenParams& p) {
  GenOutcome out;
  out.n_prompt = prompt.size();
  lamina_sampler* smp = nullptr;
  out.status = lamina_sampler_create(model, &p.sampling, &smp);
  if (out.status == LAMINA_OK && !p.grammar.empty())
    out.status = lamina_sampler_set_grammar(smp, p.grammar.c_str(), nullptr);
  if (out.status != LAMINA_OK) {
    out.error = lamina_last_error();
    lamina_sampler_free(smp);
    return out;
  }
  out.n_reused = ReusePrefix(s, prompt);
  std::vector<int32_t> ids;
  CallbackState st{&p, &out, &ids};
  std::vector<const char*> stop;
  for (const std::string& x : p.stop) stop.push_back(x.c_str());
  lamina_generate_params gp = lamina_generate_default_params();
  gp.max_tokens = p.max_tokens;
  gp.stop = stop.data();
  gp.n_stop = stop.size();
  gp.callback = OnToken;
  gp.user = &st;
  lamina_context_reset_stats(s->ctx);
  lamina_generate_result r;
  out.status = lamina_generate_ex(s->ctx, smp, prompt.data() + out.n_reused,
                                  prompt.size() - out.n_reused, &gp, &r);
  lamina_sampler_free(smp);
  if (out.status != LAMINA_OK) {
    out.error = lamina_last_error();
    lamina_kv_clear(s->ctx);
    s->cached.clear();
    return out;
  }
  out.n_generated = r.n_generated;
  out.reason = r.reason;
  lamina_stats stats;
  if (lamina_context_get_stats(s->ctx, &stats) == LAMINA_OK) {
    out.prefill_ms = stats.prefill_ms;
    out.decode_ms = stats.decode_ms;
  }
  // The context now holds the prompt and every emitted token.
  s->cached = prompt;
  s->cached.insert(s->cached.end(), ids.begin(), ids.end());
  if (static_cast<size_t>(lamina_n_past(s->ctx)) != s->cached.size()) {
    lamina_kv_clear(s->ctx);
    s->cached.clear();
  }
  return out;
}

}  // namespace lamina::server
