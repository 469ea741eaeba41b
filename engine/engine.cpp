#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <system_error>

#include "engine/adapter.h"
#include "engine/rope.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/kv_q8.h"

namespace lamina::engine {
namespace {

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::unique_ptr<Model> Model::Load(const std::string& path, const ModelOptions& opts, Status* st) {
  const auto t0 = std::chrono::steady_clock::now();
  kern::Tier tier;
  char terr[256] = {0};
  if (!kern::SelectTier(opts.kernels.empty() ? nullptr : opts.kernels.c_str(), &tier, terr,
                        sizeof(terr))) {
    st->Fail(LAMINA_ERR_KERNEL_TIER, terr);
    return nullptr;
  }
  std::unique_ptr<Model> m(new Model());
  m->ks_ = &kern::Kernels(tier);
  std::string e;
  m->file_ = ModelFile::Open(path, opts.load, &e);
  if (!m->file_) {
    st->Fail(LAMINA_ERR_LOAD, e);
    return nullptr;
  }
  if (m->file_->is_adapter()) {
    st->Fail(LAMINA_ERR_LOAD,
             path +
                 ": this is a LoRA adapter file, not a model (load it with "
                 "lamina_adapter_load / llama-run --lora on top of its base model)");
    return nullptr;
  }
  if (!ConfigFromHParams(m->file_->hparams(), &m->cfg_, &e) ||
      !BindWeights(*m->file_, m->cfg_, &m->w_, &e)) {
    st->Fail(LAMINA_ERR_LOAD, path + ": " + e);
    return nullptr;
  }
  m->load_ms_ = MsSince(t0);
  return m;
}

std::unique_ptr<Model> Model::Load(const std::string& path, const ModelOptions& opts,
                                   std::string* err) {
  Status st;
  std::unique_ptr<Model> m = Load(path, opts, &st);
  if (!m) *err = st.msg;
  return m;
}

uint64_t Model::fingerprint() const {
  std::call_once(fp_once_, [this] {
    uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&h](const void* p, size_t n) {
      const uint8_t* b = static_cast<const uint8_t*>(p);
      for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
    };
    mix(&file_->header(), sizeof(format::FileHeader));
    for (size_t i = 0; i < file_->n_tensors(); ++i) {
      const format::TensorEntry& t = file_->tensor(i);
      mix(&t, sizeof(t));
      mix(file_->Data(t), std::min<uint64_t>(t.size, 4096));
    }
    fingerprint_ = h;
  });
  return fingerprint_;
}

const Tokenizer* Model::tokenizer() const {
  std::call_once(tok_once_, [this] {
    if (file_->tokenizer_size() == 0) {
      tok_err_ = "the model file embeds no tokenizer";
      return;
    }
    std::string e;
    std::unique_ptr<Tokenizer> t =
        Tokenizer::Deserialize(file_->tokenizer_data(), file_->tokenizer_size(), &e);
    if (!t) {
      tok_err_ = file_->path() + ": embedded tokenizer: " + e;
    } else if (t->vocab_size() > cfg_.vocab) {
      tok_err_ = file_->path() + ": embedded tokenizer has " + std::to_string(t->vocab_size()) +
                 " tokens, more than hparams.vocab_size " + std::to_string(cfg_.vocab);
    } else {
      tok_ = std::move(t);
    }
  });
  return tok_.get();
}

const std::string& Model::tokenizer_error() const {
  tokenizer();
  return tok_err_;
}

std::unique_ptr<Context> Context::Create(const Model& m, const ContextOptions& o, Status* st) {
  const Config& c = m.config();
  if (o.n_ctx < 0 || o.n_ctx > c.max_context) {
    st->Fail(LAMINA_ERR_INVALID_ARG, "n_ctx " + std::to_string(o.n_ctx) + " out of range (1.." +
                                         std::to_string(c.max_context) + ", the model's maximum)");
    return nullptr;
  }
  if (o.n_batch < 0 || o.n_batch > 4096) {
    st->Fail(LAMINA_ERR_INVALID_ARG,
             "n_batch " + std::to_string(o.n_batch) + " out of range (1..4096)");
    return nullptr;
  }
  if (o.n_threads < 0 || o.n_threads > 512) {
    st->Fail(LAMINA_ERR_INVALID_ARG,
             "n_threads " + std::to_string(o.n_threads) + " out of range (1..512)");
    return nullptr;
  }
  std::unique_ptr<Context> ctx(new Context(m));
  Context& s = *ctx;
  s.ks_ = &m.kernels();
  s.n_ctx_ = o.n_ctx > 0 ? o.n_ctx : std::min(8192, c.max_context);
  s.n_batch_ = std::min(o.n_batch > 0 ? o.n_batch : 64, s.n_ctx_);
  s.logits_all_ = o.logits_all;
  if (o.n_keep < 0 || o.n_keep >= s.n_ctx_) {
    st->Fail(LAMINA_ERR_INVALID_ARG, "n_keep " + std::to_string(o.n_keep) + " out of range (0.." +
                                         std::to_string(s.n_ctx_ - 1) + ", below n_ctx)");
    return nullptr;
  }
  s.context_shift_ = o.context_shift;
  s.n_keep_ = o.n_keep;
  s.kv_type_ = o.kv_type;
  const int nt = o.n_threads > 0 ? o.n_threads : DefaultThreadCount();
  const size_t B = static_cast<size_t>(s.n_batch_);
  try {
    // One cache row per position: kv_dim f32 / f16, or (Q8) kv_dim int8 +
    // an f16 scale per kv head (kernels/ref/kv_q8.h).
    s.kv_row_bytes_ =
        o.kv_type == kern::KvType::kQ8
            ? ref::KvQ8RowBytes(c.n_kv_heads, c.head_dim)
            : static_cast<size_t>(c.kv_dim) * (o.kv_type == kern::KvType::kF32 ? 4 : 2);
    s.kv_layer_bytes_ = static_cast<size_t>(s.n_ctx_) * s.kv_row_bytes_;
    s.kv_bytes_ = s.kv_layer_bytes_ * 2 * c.n_layers;
    s.kv_.reset(static_cast<uint8_t*>(std::calloc(s.kv_bytes_, 1)));
    if (!s.kv_) throw std::bad_alloc();
    RopeTables(c, s.n_ctx_, &s.rope_cos_, &s.rope_sin_);
    s.x_.assign(B * c.dim, 0.f);
    s.xb_.assign(B * c.dim, 0.f);
    s.q_.assign(B * c.q_dim, 0.f);
    s.k_.assign(B * c.kv_dim, 0.f);
    s.v_.assign(B * c.kv_dim, 0.f);
    s.att_.assign(B * c.q_dim, 0.f);
    s.proj_.assign(B * c.dim, 0.f);
    s.hb_.assign(B * c.ffn_dim, 0.f);
    s.hb2_.assign(B * c.ffn_dim, 0.f);
    s.att_scratch_.assign(static_cast<size_t>(nt) * s.n_ctx_ * kern::kAttentionScratchRows, 0.f);
    const int kmax = std::max(c.dim, std::max(c.q_dim, c.ffn_dim));
    const size_t qbytes = s.ks_->quantize_acts.data_bytes(s.n_batch_, kmax);
    void* p = nullptr;
    if (posix_memalign(&p, 64, (qbytes + 63) / 64 * 64) != 0) throw std::bad_alloc();
    s.qdata_ = static_cast<uint8_t*>(p);
    s.qscale_.assign(B, 0.f);
    s.qzp_.assign(B, 0.f);
    s.qa_ = kern::QActs{s.qdata_, s.qscale_.data(), s.qzp_.data(), 0, 0};
    if (c.lora_rank > 0) {
      s.lora_t_.assign(B * 3 * c.lora_rank, 0.f);
      const int u = std::max(c.q_dim + 2 * c.kv_dim, std::max(2 * c.ffn_dim, c.dim));
      s.lora_u_.assign(B * u, 0.f);
    }
    s.logits_.assign((s.logits_all_ ? B : 1) * c.vocab, 0.f);
    s.out_x_.assign(B * c.dim, 0.f);
    s.history_.reserve(s.n_ctx_);
    s.state_bytes_ = sizeof(float) * (s.x_.size() + s.xb_.size() + s.q_.size() + s.k_.size() +
                                      s.v_.size() + s.att_.size() + s.proj_.size() + s.hb_.size() +
                                      s.hb2_.size() + s.att_scratch_.size() + s.lora_t_.size() +
                                      s.lora_u_.size() + s.logits_.size() + s.out_x_.size() +
                                      s.rope_cos_.size() + s.rope_sin_.size() + 2 * B) +
                     qbytes + sizeof(int32_t) * s.n_ctx_;
    s.pool_.reset(new ThreadPool(nt));
  } catch (const std::system_error& e) {
    st->Fail(LAMINA_ERR_INVALID_ARG,
             "cannot start " + std::to_string(nt) + " threads for the context: " + e.what());
    return nullptr;
  } catch (const std::exception&) {
    st->Fail(LAMINA_ERR_OUT_OF_MEMORY, "out of memory allocating the context (KV cache " +
                                           std::to_string(s.kv_bytes_ >> 20) + " MiB for n_ctx " +
                                           std::to_string(s.n_ctx_) + ")");
    return nullptr;
  }
  return ctx;
}

std::unique_ptr<Context> Context::Create(const Model& m, const ContextOptions& o,
                                         std::string* err) {
  Status st;
  std::unique_ptr<Context> c = Create(m, o, &st);
  if (!c) *err = st.msg;
  return c;
}

Context::~Context() { std::free(qdata_); }

bool Context::SetAdapters(const Adapter* const* adapters, const float* scales, int n,
                          std::string* err) {
  if (n < 0 || n > kMaxAdapters || (n > 0 && (!adapters || !scales))) {
    *err = "adapters: n = " + std::to_string(n) + " out of range (0.." +
           std::to_string(kMaxAdapters) + ") or null arrays";
    return false;
  }
  std::vector<AttachedAdapter> next;
  int rmax = 0;
  for (int i = 0; i < n; ++i) {
    const Adapter* a = adapters[i];
    if (!a) {
      *err = "adapters[" + std::to_string(i) + "] is null";
      return false;
    }
    if (&a->model() != &model_) {
      *err = a->path() + ": the adapter was loaded for another model";
      return false;
    }
    const float s = scales[i] * a->scale();
    if (!std::isfinite(scales[i]) || !std::isfinite(s)) {
      *err = a->path() + ": scale " + std::to_string(scales[i]) + " is not finite (or overflows)";
      return false;
    }
    if (s == 0.f || a->n_matrices() == 0) continue;  // contributes nothing
    next.push_back({a, s});
    rmax = std::max(rmax, a->rank());
  }
  try {
    const size_t B = static_cast<size_t>(n_batch_);
    std::vector<float> t(next.size() * 3 * B * static_cast<size_t>(rmax));
    if (!next.empty() && lora_u_.empty()) {
      const int u = std::max(cfg_.q_dim + 2 * cfg_.kv_dim, std::max(2 * cfg_.ffn_dim, cfg_.dim));
      lora_u_.assign(B * u, 0.f);
    }
    adapter_t_.swap(t);
  } catch (const std::exception&) {
    *err = "out of memory attaching " + std::to_string(next.size()) + " adapters";
    return false;
  }
  adapters_.swap(next);
  adapter_rmax_ = rmax;
  return true;
}

EvalStatus Context::Eval(const int32_t* tokens, int n, std::string* err, bool all_logits) {
  if (n <= 0 || tokens == nullptr) {
    *err = "eval: no tokens";
    return EvalStatus::kInvalid;
  }
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= cfg_.vocab) {
      *err = "eval: token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
             " out of range [0, " + std::to_string(cfg_.vocab) + ")";
      return EvalStatus::kInvalid;
    }
  const bool every = logits_all_ || all_logits;
  if (every && n > n_batch_) {
    *err = "eval: with logits_all, at most n_batch (" + std::to_string(n_batch_) +
           ") tokens per call, got " + std::to_string(n);
    return EvalStatus::kInvalid;
  }
  if (every && logits_.size() < static_cast<size_t>(n) * cfg_.vocab) {
    try {
      logits_.resize(static_cast<size_t>(n) * cfg_.vocab);
    } catch (const std::exception&) {
      *err = "eval: out of memory for the logits of " + std::to_string(n) + " tokens";
      return EvalStatus::kInvalid;
    }
  }
  if (static_cast<int64_t>(n_past_) + n > n_ctx_) {
    *err = "context full: " + std::to_string(n_past_) + " tokens cached + " + std::to_string(n) +
           " new > n_ctx " + std::to_string(n_ctx_);
    return EvalStatus::kContextFull;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int n_past0 = n_past_;
  for (int i = 0; i < n; i += n_batch_) {
    const int M = std::min(n_batch_, n - i);
    const bool last = i + M == n;
    if (!Forward(tokens + i, M, !last ? 0 : every ? 2 : 1, err)) {
      Rewind(n_past0);
      return EvalStatus::kNumeric;
    }
    n_past_ += M;
    history_.insert(history_.end(), tokens + i, tokens + i + M);
  }
  const double ms = MsSince(t0);
  // A single token continuing a sequence is a decode step; the first token of a
  // sequence (e.g. a BOS-only prompt) is a prompt token.
  if (n == 1 && n_past_ > 1) {
    stats_.decode_tokens += 1;
    stats_.decode_ms += ms;
  } else {
    stats_.prefill_tokens += static_cast<uint64_t>(n);
    stats_.prefill_ms += ms;
  }
  return EvalStatus::kOk;
}

bool Context::Rewind(int n) {
  if (n < 0 || n > n_past_) return false;
  n_past_ = n;
  history_.resize(static_cast<size_t>(n));
  n_logits_ = 0;  // the logits no longer describe the last cached token
  return true;
}

bool Context::Shift(int n_keep, int n_discard) {
  if (n_keep < 0 || n_discard <= 0 || n_keep > n_past_ || n_discard > n_past_ - n_keep)
    return false;
  const int src = n_keep + n_discard, n_move = n_past_ - src;
  const int kvd = cfg_.kv_dim, hd = cfg_.head_dim, half = hd / 2;
  // Rotation by -n_discard * freq_j, exact in double then rounded once.
  const std::vector<double> f = RopeFrequencies(cfg_);
  std::vector<float> dc(half), ds(half);
  for (int j = 0; j < half; ++j) {
    const double a = -static_cast<double>(n_discard) * f[j];
    dc[j] = static_cast<float>(std::cos(a));
    ds[j] = static_cast<float>(std::sin(a));
  }
  const size_t row = kv_row_bytes_;
  const int n_kv_heads = kvd / hd;
  for (int l = 0; l < cfg_.n_layers; ++l) {
    uint8_t* kc = kv_rows(l, 0);
    uint8_t* vc = kv_rows(l, 1);
    // Rows move down (dst < src): a forward memmove per block is safe.
    std::memmove(vc + n_keep * row, vc + src * row, static_cast<size_t>(n_move) * row);
    std::memmove(kc + n_keep * row, kc + src * row, static_cast<size_t>(n_move) * row);
    auto rotate = [&](int tid, int nt) {
      int p0, p1;
      SplitRange(n_move, 1, tid, nt, &p0, &p1);
      std::vector<float> kf;  // Q8: one dequantized key row
      if (kv_type_ == kern::KvType::kQ8) kf.resize(static_cast<size_t>(kvd));
      for (int p = n_keep + p0; p < n_keep + p1; ++p) {
        uint8_t* krow = kc + static_cast<size_t>(p) * row;
        if (kv_type_ == kern::KvType::kQ8) {  // dequantize, rotate, quantize again
          const int8_t* q = reinterpret_cast<const int8_t*>(krow);
          for (int h = 0; h < n_kv_heads; ++h) {
            const float d = ref::KvQ8Scale(krow, n_kv_heads, hd, h);
            for (int i = 0; i < hd; ++i)
              kf[static_cast<size_t>(h) * hd + i] = static_cast<float>(q[h * hd + i]) * d;
          }
        }
        for (int h = 0; h < n_kv_heads; ++h) {
          const size_t off = static_cast<size_t>(h) * hd;
          for (int j = 0; j < half; ++j) {
            float a, b;
            if (kv_type_ == kern::KvType::kF32) {
              float* k = reinterpret_cast<float*>(krow) + off;
              a = k[2 * j];
              b = k[2 * j + 1];
              k[2 * j] = a * dc[j] - b * ds[j];
              k[2 * j + 1] = a * ds[j] + b * dc[j];
            } else if (kv_type_ == kern::KvType::kF16) {
              uint16_t* k = reinterpret_cast<uint16_t*>(krow) + off;
              a = F16ToF32(k[2 * j]);
              b = F16ToF32(k[2 * j + 1]);
              k[2 * j] = F32ToF16(a * dc[j] - b * ds[j]);
              k[2 * j + 1] = F32ToF16(a * ds[j] + b * dc[j]);
            } else {
              float* k = kf.data() + off;
              a = k[2 * j];
              b = k[2 * j + 1];
              k[2 * j] = a * dc[j] - b * ds[j];
              k[2 * j + 1] = a * ds[j] + b * dc[j];
            }
          }
        }
        if (kv_type_ == kern::KvType::kQ8) ref::StoreKvQ8Row(kf.data(), n_kv_heads, hd, krow);
      }
    };
    pool_->RunF(rotate);
  }
  history_.erase(history_.begin() + n_keep, history_.begin() + src);
  n_past_ -= n_discard;
  return true;
}

bool ShiftForRoom(Context& c, int need, int* keep_out, int* discard_out) {
  if (!c.context_shift() || need > c.n_ctx() - std::min(c.n_keep(), c.n_past())) return false;
  const int keep = std::min(c.n_keep(), c.n_past());
  const int discard = std::max((c.n_past() - keep) / 2, c.n_past() + need - c.n_ctx());
  if (discard < 1 || discard > c.n_past() - keep || !c.Shift(keep, discard)) return false;
  if (keep_out) *keep_out = keep;
  if (discard_out) *discard_out = discard;
  return true;
}

void Context::RestoreTokens(const int32_t* tokens, int n, const float* logits) {
  n_past_ = n;
  history_.assign(tokens, tokens + n);
  n_logits_ = 0;
  if (logits) {
    std::memcpy(logits_.data(), logits, sizeof(float) * cfg_.vocab);
    n_logits_ = 1;
  }
}

}  // namespace lamina::engine
