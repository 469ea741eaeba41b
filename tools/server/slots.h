// lamina-server slots: N contexts (each with its own KV cache) over one shared
// model, a FIFO queue for requests when every slot is busy, and the prompt
// cache: a slot keeps the tokens it holds and reuses their common prefix with
// the next prompt it serves.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "lamina/lamina.h"

namespace lamina::server {

struct Slot {
  int id = 0;
  lamina_context* ctx = nullptr;
  std::vector<int32_t> cached;  // the tokens in ctx's KV cache, in order
  bool busy = false;
  uint64_t last_used = 0;
};

using Clock = std::chrono::steady_clock;

class SlotPool {
 public:
  SlotPool() = default;
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;
  ~SlotPool() { Clear(); }
  /// Frees every context (call before freeing the model).
  void Clear();

  /// Creates n contexts on model with params cp. false + *err on failure.
  bool Init(const lamina_model* model, int n, const lamina_context_params& cp, std::string* err);

  /// Waits in FIFO order until a slot is free (or the deadline passes:
  /// nullptr). Among free slots, takes the one whose cached tokens share the
  /// longest prefix with `prompt` (ties: least recently used).
  Slot* Acquire(const std::vector<int32_t>& prompt, Clock::time_point deadline);
  void Release(Slot* s);

  int size() const { return static_cast<int>(slots_.size()); }
  /// Context of slot i (read-only use, e.g. lamina_context_get_info).
  const lamina_context* context(int i) const { return slots_[static_cast<size_t>(i)].ctx; }
  int n_busy() const;
  size_t n_queued() const;

 private:
  std::vector<Slot> slots_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint64_t> queue_;  // tickets of waiting requests, FIFO
  uint64_t next_ticket_ = 0, use_counter_ = 0;
};

size_t CommonPrefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

/// Rewinds s's KV cache to the longest prefix it shares with `prompt`, but
/// keeps at least one prompt token to evaluate (the generation needs its
/// logits). Returns the number of prompt tokens reused.
size_t ReusePrefix(Slot* s, const std::vector<int32_t>& prompt);

/// One generation on a slot.
struct GenParams {
  size_t max_tokens = 0;
  lamina_sampler_params sampling{};
  std::vector<std::string> stop;
  std::string grammar;  // GBNF the output must match ("" = none)
  Clock::time_point deadline;
  /// Called with each piece of text (may be empty); return false to stop (the
  /// client is gone).
  std::function<bool(const std::string&)> on_text;
};
struct GenOutcome {
  lamina_status status = LAMINA_OK;
  std::string error;  // status != LAMINA_OK
  std::string text;
  size_t n_prompt = 0, n_reused = 0, n_generated = 0;
  lamina_stop_reason reason = LAMINA_STOP_NONE;
  bool timed_out = false, client_gone = false;
  double prefill_ms = 0, decode_ms = 0;
};
GenOutcome Generate(const lamina_model* model, Slot* s, const std::vector<int32_t>& prompt,
                    const GenParams& p);

}  // namespace lamina::server
