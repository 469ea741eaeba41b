// lamina's engine: a loaded model (read-only, shareable across threads) and
// inference contexts (KV cache + every work buffer + a thread pool; one thread
// at a time). The public C API (include/lamina/lamina.h) wraps these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/status.h"
#include "engine/thread_pool.h"
#include "kernels/kernels.h"
#include "loader/model_file.h"
#include "tokenizer/tokenizer.h"

namespace lamina::engine {

class Adapter;  // engine/adapter.h

struct ModelOptions {
  LoadOptions load;
  std::string kernels;  // tier name; "" = $LAMINA_KERNELS or the best available
};

class Model {
 public:
  /// Selects the kernel tier (once: the model keeps it, its contexts use
  /// it), maps, validates and binds a model file. nullptr + *st on failure:
  /// LAMINA_ERR_KERNEL_TIER (tier unknown or unavailable) or LAMINA_ERR_LOAD.
  static std::unique_ptr<Model> Load(const std::string& path, const ModelOptions& opts, Status* st);
  /// The same, with the message only.
  static std::unique_ptr<Model> Load(const std::string& path, const ModelOptions& opts,
                                     std::string* err);

  const Config& config() const { return cfg_; }
  const Weights& weights() const { return w_; }
  const ModelFile& file() const { return *file_; }
  const kern::KernelSet& kernels() const { return *ks_; }
  kern::Tier tier() const { return ks_->tier; }
  /// nullptr when the file embeds no tokenizer (or it is invalid: see
  /// tokenizer_error()). Deserialized on first use, so that loading a model
  /// costs no more than mapping and validating it. Thread-safe.
  const Tokenizer* tokenizer() const;
  bool has_tokenizer() const { return file_->tokenizer_size() > 0; }
  const std::string& tokenizer_error() const;
  double load_ms() const { return load_ms_; }
  /// Binds saved sessions to the model they were made with: FNV-1a 64 of the
  /// file's header, its tensor directory and the first 4 KiB of every tensor
  /// (so two fine-tunes of one architecture differ). Computed once, on first
  /// use (one page per tensor is read). Thread-safe.
  uint64_t fingerprint() const;

 private:
  Model() = default;
  std::unique_ptr<ModelFile> file_;
  Config cfg_;
  Weights w_;
  const kern::KernelSet* ks_ = nullptr;
  mutable std::once_flag tok_once_;
  mutable std::unique_ptr<Tokenizer> tok_;
  mutable std::string tok_err_;
  double load_ms_ = 0;
  mutable std::once_flag fp_once_;
  mutable uint64_t fingerprint_ = 0;
};

struct ContextOptions {
  int n_ctx = 0;      // 0: min(8192, max_context); else <= max_context
  int n_threads = 0;  // 0: DefaultThreadCount()
  kern::KvType kv_type = kern::KvType::kF16;
  int n_batch = 64;         // max tokens per forward pass (prefill chunk)
  bool logits_all = false;  // keep the logits of every position of an Eval (<= n_batch tokens)
  // Context-full policy of lamina_generate: false = stop (LAMINA_STOP_CONTEXT_FULL),
  // true = Shift(n_keep, half of the rest) and continue.
  bool context_shift = false;
  int n_keep = 0;  // tokens Shift never drops (e.g. BOS + system prompt)
};

// kNumeric: the forward pass produced NaN or +-Inf (corrupt weights); the
// context is rewound to where it was before the call.
enum class EvalStatus { kOk, kContextFull, kInvalid, kNumeric };

struct Stats {
  uint64_t prefill_tokens = 0, decode_tokens = 0;
  double prefill_ms = 0, decode_ms = 0;
};

class Context {
 public:
  /// Allocates the KV cache, every work buffer and the thread pool. nullptr
  /// + *st on failure: LAMINA_ERR_INVALID_ARG (an option out of range, or
  /// the threads cannot start) or LAMINA_ERR_OUT_OF_MEMORY.
  static std::unique_ptr<Context> Create(const Model& m, const ContextOptions& opts, Status* st);
  /// The same, with the message only.
  static std::unique_ptr<Context> Create(const Model& m, const ContextOptions& opts,
                                         std::string* err);
  ~Context();

  /// Evaluates tokens at positions [n_past, n_past + n). Nothing is evaluated
  /// when they do not fit (kContextFull) or an id is out of range (kInvalid).
  /// kNumeric (+ *err naming the layer, position and token) when a NaN or
  /// +-Inf shows up in the embedding, the residual stream after a layer, or
  /// the logits; the context is then rewound to its n_past before the call.
  /// Afterwards logits() holds the last token's logits, and with logits_all or
  /// all_logits (n <= n_batch required) logits_row(i) those of token i of this
  /// call. all_logits (speculative verification) grows the logits buffer to
  /// n rows on first use when the context was created without logits_all.
  EvalStatus Eval(const int32_t* tokens, int n, std::string* err, bool all_logits = false);

  const float* logits() const { return n_logits_ > 0 ? logits_row(n_logits_ - 1) : nullptr; }
  const float* logits_row(int i) const {
    return logits_.data() + static_cast<size_t>(i) * cfg_.vocab;
  }
  int n_logits() const { return n_logits_; }

  int n_past() const { return n_past_; }
  int n_ctx() const { return n_ctx_; }
  int n_batch() const { return n_batch_; }
  int n_threads() const { return pool_->size(); }
  kern::KvType kv_type() const { return kv_type_; }
  bool logits_all() const { return logits_all_; }
  /// Tokens in the cache, in order (the history the repetition penalty sees).
  const std::vector<int32_t>& history() const { return history_; }
  /// Keeps the first n tokens (n <= n_past); later ones are forgotten.
  bool Rewind(int n);
  void Clear() { Rewind(0); }

  /// Context shift: forgets cached positions [n_keep, n_keep + n_discard) and
  /// moves the later ones down by n_discard. Values are moved as they are; keys
  /// are re-rotated by the position delta (RoPE rotates pair j of a key at
  /// position p by p*freq_j, so a key moved from p to p - d is rotated by
  /// -d*freq_j, cos/sin computed in double). With f16 KV each moved key picks
  /// up one more f16 rounding (<= 1 ulp of f16 per shift; measured in
  /// engine/shift_test.cpp). The last logits stay available (they describe the
  /// same last token). False if the range is not within [0, n_past).
  bool Shift(int n_keep, int n_discard);
  bool context_shift() const { return context_shift_; }
  int n_keep() const { return n_keep_; }

  /// KV cache rows of one layer: which 0 = keys, 1 = values; n_ctx rows of
  /// kv_row_bytes() each (kv_dim f32 / f16, or the Q8 row of kernels/ref/kv_q8.h).
  uint8_t* kv_rows(int layer, int which) {
    return kv_.get() + static_cast<size_t>(2 * layer + which) * kv_layer_bytes_;
  }
  const uint8_t* kv_rows(int layer, int which) const {
    return kv_.get() + static_cast<size_t>(2 * layer + which) * kv_layer_bytes_;
  }
  size_t kv_row_bytes() const { return kv_row_bytes_; }
  /// Sets the cached tokens after their KV rows were written into kv_rows()
  /// (session restore); logits (vocab floats) become the last logits, or none
  /// if nullptr. n <= n_ctx required.
  void RestoreTokens(const int32_t* tokens, int n, const float* logits);

  size_t kv_bytes() const { return kv_bytes_; }
  size_t state_bytes() const { return state_bytes_; }
  const Model& model() const { return model_; }
  Stats& stats() { return stats_; }

  /// Internal hook (lamina-convert --calib): called on the calling thread
  /// with the float input x [M][K] of each linear group of a block, before it
  /// runs. `linear` is the format::kLinearNames index of the group's first
  /// matrix: 0 (q, k, v), 3 (attn_output), 4 (gate, up), 6 (ffn_down: after
  /// the online Hadamard when flagged). Not called for the output layer.
  /// Empty (the default): no cost.
  /// LoRA adapters (engine/adapter.h): replaces the attached set by
  /// adapters[0..n) with scales[i] (a multiplier of adapter i's own alpha/r;
  /// 0 leaves the adapter out). Every later linear of an adapted layer then
  /// computes y += (scales[i] * alpha_i/r_i) * B_i(A_i x) in float on the
  /// linear's float input x, for i in order, after the model's own LoRA
  /// adaptors (QAT+LoRA). Tokens already in the KV cache keep what they were
  /// computed with. Each adapter must be loaded for this context's model and
  /// outlive its attachment. n = 0 detaches all. False + *err (and nothing
  /// changes) for a foreign adapter, a non-finite scale or out of memory.
  bool SetAdapters(const Adapter* const* adapters, const float* scales, int n, std::string* err);
  int n_adapters() const { return static_cast<int>(adapters_.size()); }

  using LinearInputObserver =
      std::function<void(int layer, int linear, const float* x, int M, int K)>;
  void SetLinearInputObserver(LinearInputObserver f) { observer_ = std::move(f); }

  /// Internal (lamina-convert --calib runs the model one block at a time over
  /// cached hidden states): x [M][dim] = the embedding rows of tokens[0..M)
  /// (ids in range, checked by the caller), as Eval's first step.
  void EmbedTokens(const int32_t* tokens, int M, float* x);
  /// Internal, the same: transformer block `layer` alone, Eval's code for it,
  /// on x [M][dim] = the residual stream at the block's input of the tokens at
  /// positions [pos, pos + M), replaced by the block's output. Writes their
  /// K/V rows of this layer and attends over its rows [0, pos + m], which
  /// earlier calls (positions < pos) must have written. The observer sees the
  /// block's linear inputs. n_past, the history and the logits are left alone.
  /// kInvalid: layer out of range, M not in [1, n_batch], or pos + M > n_ctx.
  /// kNumeric (+ *err): a NaN or Inf in the output (x is then overwritten).
  /// observe_only: stops once the observer has seen ffn_down's input (its
  /// product, a quarter of the block, is skipped); x is then left midway
  /// (after the attention residual) and not checked.
  EvalStatus EvalLayer(int layer, float* x, int M, int pos, std::string* err,
                       bool observe_only = false);

 private:
  explicit Context(const Model& m) : model_(m), cfg_(m.config()), w_(m.weights()) {}
  // One forward pass over M <= n_batch tokens at positions n_past_.. .
  // logits_mode: 0 none, 1 the last token's, 2 every token's. False + *err
  // at the first non-finite embedding row, residual row after a layer, or
  // logits row (the pass stops there).
  bool Forward(const int32_t* tokens, int M, int logits_mode, std::string* err);
  // Block l of Forward over x [M][dim] in place, tokens at positions p0 + m
  // (K/V rows of layer l written); observe_only: EvalLayer's.
  void ForwardLayer(int l, float* x, int M, int p0, bool observe_only);

  // Helpers of Forward (engine/forward.cpp).
  struct Linear;
  struct AttachedAdapter {
    const Adapter* adapter;
    float scale;  // user scale * the adapter's alpha / r
  };
  void RunLinears(const float* x, int M, const Linear* lins, int n_lins);
  void QuantizeRows(const float* x, int M, int K);
  void ObserveLinearInput(const float* x, int M, const Matrix* first);

  const Model& model_;
  const Config& cfg_;
  const Weights& w_;
  const kern::KernelSet* ks_ = nullptr;
  std::unique_ptr<ThreadPool> pool_;
  int n_ctx_ = 0, n_batch_ = 0, n_past_ = 0, n_logits_ = 0;
  bool logits_all_ = false;
  bool context_shift_ = false;
  int n_keep_ = 0;
  kern::KvType kv_type_ = kern::KvType::kF16;

  // KV cache: per layer [n_ctx][kv_dim] keys and values (f16 or f32).
  // calloc'd, not zero-filled by hand: the kernel's zero pages are only
  // touched as positions are written, so RSS follows the tokens cached,
  // not the context length.
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t[], FreeDeleter> kv_;
  size_t kv_layer_bytes_ = 0, kv_bytes_ = 0, kv_row_bytes_ = 0;
  // RoPE tables [n_ctx][head_dim/2].
  std::vector<float> rope_cos_, rope_sin_;

  // Activations, [n_batch][width] each (llama2.c's RunState).
  std::vector<float> x_;            // residual stream [B, dim]
  std::vector<float> xb_;           // normed input [B, dim]
  std::vector<float> q_;            // [B, q_dim]
  std::vector<float> k_;            // [B, kv_dim]
  std::vector<float> v_;            // [B, kv_dim]
  std::vector<float> att_;          // attention output [B, q_dim]
  std::vector<float> proj_;         // wo / w_down output [B, dim]
  std::vector<float> hb_;           // gate [B, ffn]
  std::vector<float> hb2_;          // up [B, ffn]
  std::vector<float> att_scratch_;  // per thread [kAttentionScratchRows * n_ctx]
  // Quantized activations (layout of the kernel tier).
  uint8_t* qdata_ = nullptr;
  std::vector<float> qscale_, qzp_;
  kern::QActs qa_{};
  // LoRA: A(x) [B, 3 * r] and B(A(x)) [B, max group width].
  std::vector<float> lora_t_, lora_u_;
  // Attached LoRA adapters and their A(x): [adapter][3 linears][B, max rank].
  std::vector<AttachedAdapter> adapters_;
  std::vector<float> adapter_t_;
  int adapter_rmax_ = 0;
  // Output.
  std::vector<float> logits_;  // [logits_all ? B : 1][vocab]
  std::vector<float> out_x_;   // normed rows fed to the output layer [B, dim]
  std::vector<int32_t> history_;
  size_t state_bytes_ = 0;
  Stats stats_;
  LinearInputObserver observer_;
};

/// The context-shift policy of generation (plain and speculative): when c's
/// context_shift is on, makes room for `need` more tokens by keeping the first
/// n_keep and dropping at least half of the rest (Context::Shift). False if
/// the policy is off or no shift can make room. *keep / *discard (optional):
/// the Shift arguments used.
bool ShiftForRoom(Context& c, int need, int* keep = nullptr, int* discard = nullptr);

}  // namespace lamina::engine
