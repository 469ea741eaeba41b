// The C API: thin wrappers over engine::Model / Context / Sampler. Every entry
// point catches everything; errors become a status + a thread-local message.
#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "engine/capi_internal.h"
#include "engine/engine.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "engine/speculative.h"
#include "engine/stop_strings.h"
#include "lamina/lamina.h"
#include "lamina/version.h"

using lamina::engine::Context;
using lamina::engine::Model;

using lamina::capi::Fail;
using lamina::capi::g_last_error;
using lamina::capi::Guard;

namespace {

lamina_status CopyOut(const std::string& s, char* buf, size_t cap, size_t* n) {
  *n = s.size();
  if (s.size() > cap)
    return Fail(LAMINA_ERR_BUFFER_TOO_SMALL,
                "buffer of " + std::to_string(cap) + " bytes, need " + std::to_string(s.size()));
  if (!s.empty()) std::memcpy(buf, s.data(), s.size());
  return LAMINA_OK;
}

using lamina::engine::ShiftForRoom;

// Stop strings of p, validated and copied into *out (fn names the entry point
// in messages).
lamina_status ReadStops(const lamina_generate_params& p, const Context& c, const std::string& fn,
                        std::vector<std::string>* out) {
  if (p.n_stop == 0) return LAMINA_OK;
  if (!p.stop) return Fail(LAMINA_ERR_INVALID_ARG, fn + ": stop is NULL");
  if (p.n_stop > LAMINA_MAX_STOP_STRINGS)
    return Fail(LAMINA_ERR_INVALID_ARG, fn + ": " + std::to_string(p.n_stop) +
                                            " stop strings, at most " +
                                            std::to_string(LAMINA_MAX_STOP_STRINGS));
  for (size_t i = 0; i < p.n_stop; ++i) {
    const char* st = p.stop[i];
    const size_t len = st ? std::strlen(st) : 0;
    if (len == 0 || len > LAMINA_MAX_STOP_STRING_BYTES)
      return Fail(LAMINA_ERR_INVALID_ARG,
                  fn + ": stop string " + std::to_string(i) + " is NULL, empty or longer than " +
                      std::to_string(LAMINA_MAX_STOP_STRING_BYTES) + " bytes");
    out->emplace_back(st, len);
  }
  if (!c.model().tokenizer())
    return Fail(LAMINA_ERR_NO_TOKENIZER,
                fn + ": stop strings need a tokenizer: " + c.model().tokenizer_error());
  return LAMINA_OK;
}

// A generation's prompt: evaluated after a context shift makes room for it
// (when the context-shift policy is on); then there must be logits to sample.
lamina_status EvalPrompt(lamina_context* ctx, const int32_t* prompt, size_t n_prompt,
                         const std::string& fn) {
  Context& c = *ctx->c;
  if (n_prompt > 0) {
    if (static_cast<uint64_t>(c.n_past()) + n_prompt > static_cast<uint64_t>(c.n_ctx()) &&
        n_prompt <= static_cast<size_t>(c.n_ctx()))
      ShiftForRoom(c, static_cast<int>(n_prompt));
    const lamina_status st = lamina_eval(ctx, prompt, n_prompt);
    if (st != LAMINA_OK) return st;
  }
  if (!c.logits()) return Fail(LAMINA_ERR_NO_LOGITS, fn + ": empty prompt and no logits");
  return LAMINA_OK;
}

// The text side of a generation (lamina_generate_ex and
// lamina_generate_speculative): each token goes to the callback with its
// text, detokenized and, with stop strings, held back while it may still be
// the start of one; Finish hands over the rest.
class TokenStream {
 public:
  TokenStream(const Context& c, lamina_token_callback cb, void* user,
              std::vector<std::string> stop_strings)
      : cb_(cb), user_(user), filter_on_(!stop_strings.empty()), filter_(std::move(stop_strings)) {
    if (const lamina::Tokenizer* tok = c.model().tokenizer())
      dec_ = std::make_unique<lamina::StreamDecoder>(*tok);
  }
  /// Emits token t. True when the callback asks to stop; *matched when a
  /// stop string ends in the text so far (its text is not passed on).
  bool Push(int32_t t, bool* matched) {
    *matched = false;
    if (dec_ && (cb_ || filter_on_)) {
      std::string piece = dec_->Push(t);
      if (filter_on_) piece = filter_.Push(piece, matched);
      return cb_ && cb_(t, piece.c_str(), piece.size(), user_) != 0;
    }
    return cb_ && cb_(t, nullptr, 0, user_) != 0;
  }
  /// The detokenizer's incomplete tail, then the text held for stop strings,
  /// as token -1. True when the tail completes a stop string.
  bool Finish() {
    if (!dec_) return false;
    std::string rest = dec_->Flush();
    bool matched = false;
    if (filter_on_) {
      rest = filter_.Push(rest, &matched);
      if (!matched) rest += filter_.Flush();
    }
    if (cb_ && !rest.empty()) cb_(-1, rest.c_str(), rest.size(), user_);
    return matched;
  }

 private:
  const lamina_token_callback cb_;
  void* const user_;
  const bool filter_on_;
  lamina::engine::StopStringFilter filter_;
  std::unique_ptr<lamina::StreamDecoder> dec_;
};

// An Eval inside a generation failed: NaN/Inf in the forward pass is
// LAMINA_ERR_NUMERIC; anything else (the token was sampled, it fits) a bug.
lamina_status GenerationEvalFail(lamina::engine::EvalStatus es, const std::string& msg) {
  return Fail(es == lamina::engine::EvalStatus::kNumeric ? LAMINA_ERR_NUMERIC : LAMINA_ERR_INTERNAL,
              msg);
}

uint64_t PeakRssBytes() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // Linux: KiB
}

}  // namespace

extern "C" {

const char* lamina_version_string(void) { return LAMINA_VERSION_STRING; }

const char* lamina_status_string(lamina_status s) {
  switch (s) {
    case LAMINA_OK:
      return "LAMINA_OK";
    case LAMINA_ERR_INVALID_ARG:
      return "LAMINA_ERR_INVALID_ARG";
    case LAMINA_ERR_LOAD:
      return "LAMINA_ERR_LOAD";
    case LAMINA_ERR_KERNEL_TIER:
      return "LAMINA_ERR_KERNEL_TIER";
    case LAMINA_ERR_OUT_OF_MEMORY:
      return "LAMINA_ERR_OUT_OF_MEMORY";
    case LAMINA_ERR_CONTEXT_FULL:
      return "LAMINA_ERR_CONTEXT_FULL";
    case LAMINA_ERR_NO_TOKENIZER:
      return "LAMINA_ERR_NO_TOKENIZER";
    case LAMINA_ERR_TOKENIZE:
      return "LAMINA_ERR_TOKENIZE";
    case LAMINA_ERR_BUFFER_TOO_SMALL:
      return "LAMINA_ERR_BUFFER_TOO_SMALL";
    case LAMINA_ERR_NO_LOGITS:
      return "LAMINA_ERR_NO_LOGITS";
    case LAMINA_ERR_INTERNAL:
      return "LAMINA_ERR_INTERNAL";
    case LAMINA_ERR_NO_CHAT_TEMPLATE:
      return "LAMINA_ERR_NO_CHAT_TEMPLATE";
    case LAMINA_ERR_NUMERIC:
      return "LAMINA_ERR_NUMERIC";
    case LAMINA_ERR_SESSION:
      return "LAMINA_ERR_SESSION";
    case LAMINA_ERR_ADAPTER:
      return "LAMINA_ERR_ADAPTER";
  }
  return "LAMINA_ERR_UNKNOWN";
}

const char* lamina_last_error(void) { return g_last_error.c_str(); }

lamina_model_params lamina_model_default_params(void) {
  lamina_model_params p;
  p.populate = 0;
  p.mlock = 0;
  p.kernels = nullptr;
  return p;
}

lamina_status lamina_model_load(const char* path, const lamina_model_params* params,
                                lamina_model** out) {
  return Guard([&]() -> lamina_status {
    if (!out) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_model_load: out is NULL");
    *out = nullptr;
    if (!path || !*path) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_model_load: no path");
    const lamina_model_params p = params ? *params : lamina_model_default_params();
    lamina::engine::ModelOptions o;
    o.load.populate = p.populate != 0;
    o.load.mlock = p.mlock != 0;
    if (p.kernels) o.kernels = p.kernels;
    lamina::engine::Status st;
    std::unique_ptr<Model> m = Model::Load(path, o, &st);
    if (!m) return Fail(st.code, st.msg);
    *out = new lamina_model{std::move(m)};
    return LAMINA_OK;
  });
}

void lamina_model_free(lamina_model* model) { delete model; }

lamina_status lamina_model_get_info(const lamina_model* model, lamina_model_info* info) {
  return Guard([&]() -> lamina_status {
    if (!model || !info) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_model_get_info: NULL");
    const lamina::engine::Config& c = model->m->config();
    std::memset(info, 0, sizeof(*info));
    info->dim = c.dim;
    info->n_layers = c.n_layers;
    info->n_heads = c.n_heads;
    info->n_kv_heads = c.n_kv_heads;
    info->head_dim = c.head_dim;
    info->ffn_dim = c.ffn_dim;
    info->vocab_size = c.vocab;
    info->max_context = c.max_context;
    info->rope_theta = c.rope_theta;
    info->rope_llama3 = c.rope_llama3 ? 1 : 0;
    info->bos_id = c.bos_id;
    info->eos_id = c.eos_id;
    const size_t ns = std::min<size_t>(c.stop_ids.size(), 16);
    info->n_stop_ids = static_cast<int32_t>(ns);
    for (size_t i = 0; i < ns; ++i) info->stop_ids[i] = c.stop_ids[i];
    info->lora_rank = c.lora_rank;
    info->has_tokenizer = model->m->has_tokenizer();
    const char* ws = model->m->file().header().weight_scheme;
    std::memcpy(info->weight_scheme, ws, strnlen(ws, 16));
    info->kernel_tier = lamina::kern::TierName(model->m->tier());
    info->file_bytes = model->m->file().file_size();
    info->load_ms = model->m->load_ms();
    return LAMINA_OK;
  });
}

lamina_status lamina_tokenize(const lamina_model* model, const char* text, size_t len, int add_bos,
                              int parse_special, int32_t* tokens, size_t capacity,
                              size_t* n_tokens) {
  return Guard([&]() -> lamina_status {
    if (!model || (!text && len) || !n_tokens || (!tokens && capacity))
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_tokenize: NULL argument");
    const lamina::Tokenizer* tok = model->m->tokenizer();
    if (!tok) return Fail(LAMINA_ERR_NO_TOKENIZER, model->m->tokenizer_error());
    std::vector<int32_t> ids;
    std::string err;
    if (!tok->Encode(std::string_view(text ? text : "", len), add_bos != 0, parse_special != 0,
                     &ids, &err))
      return Fail(LAMINA_ERR_TOKENIZE, "tokenize: " + err);
    *n_tokens = ids.size();
    if (ids.size() > capacity)
      return Fail(LAMINA_ERR_BUFFER_TOO_SMALL, "tokenize: capacity " + std::to_string(capacity) +
                                                   ", need " + std::to_string(ids.size()));
    std::copy(ids.begin(), ids.end(), tokens);
    return LAMINA_OK;
  });
}

lamina_status lamina_detokenize(const lamina_model* model, const int32_t* tokens, size_t n,
                                char* text, size_t capacity, size_t* n_bytes) {
  return Guard([&]() -> lamina_status {
    if (!model || (!tokens && n) || !n_bytes || (!text && capacity))
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_detokenize: NULL argument");
    const lamina::Tokenizer* tok = model->m->tokenizer();
    if (!tok) return Fail(LAMINA_ERR_NO_TOKENIZER, model->m->tokenizer_error());
    return CopyOut(tok->Decode(std::vector<int32_t>(tokens, tokens + n)), text, capacity, n_bytes);
  });
}

lamina_status lamina_token_to_piece(const lamina_model* model, int32_t token, char* buf,
                                    size_t capacity, size_t* n_bytes) {
  return Guard([&]() -> lamina_status {
    if (!model || !n_bytes || (!buf && capacity))
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_token_to_piece: NULL argument");
    const lamina::Tokenizer* tok = model->m->tokenizer();
    if (!tok) return Fail(LAMINA_ERR_NO_TOKENIZER, model->m->tokenizer_error());
    return CopyOut(tok->TokenBytes(token), buf, capacity, n_bytes);
  });
}

lamina_status lamina_chat_apply_template(const lamina_model* model,
                                         const lamina_chat_message* messages, size_t n,
                                         int add_generation_prompt, char* text, size_t capacity,
                                         size_t* n_bytes) {
  return Guard([&]() -> lamina_status {
    if (!model || (!messages && n) || !n_bytes || (!text && capacity))
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_chat_apply_template: NULL argument");
    const lamina::Tokenizer* tok = model->m->tokenizer();
    if (!tok) return Fail(LAMINA_ERR_NO_TOKENIZER, model->m->tokenizer_error());
    if (tok->chat_template().empty())
      return Fail(LAMINA_ERR_NO_CHAT_TEMPLATE, "the model's tokenizer has no chat template");
    std::vector<lamina::ChatMessage> msgs;
    for (size_t i = 0; i < n; ++i) {
      if (!messages[i].role || !messages[i].content)
        return Fail(LAMINA_ERR_INVALID_ARG, "lamina_chat_apply_template: message " +
                                                std::to_string(i) + " has a NULL field");
      msgs.push_back({messages[i].role, messages[i].content});
    }
    return CopyOut(tok->ApplyChatTemplate(msgs, add_generation_prompt != 0), text, capacity,
                   n_bytes);
  });
}

lamina_status lamina_detokenizer_create(const lamina_model* model, lamina_detokenizer** out) {
  return Guard([&]() -> lamina_status {
    if (!model || !out) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_detokenizer_create: NULL");
    *out = nullptr;
    const lamina::Tokenizer* tok = model->m->tokenizer();
    if (!tok) return Fail(LAMINA_ERR_NO_TOKENIZER, model->m->tokenizer_error());
    *out = new lamina_detokenizer{std::make_unique<lamina::StreamDecoder>(*tok), std::string()};
    return LAMINA_OK;
  });
}

void lamina_detokenizer_free(lamina_detokenizer* d) { delete d; }

const char* lamina_detokenizer_push(lamina_detokenizer* d, int32_t token) {
  if (!d) return "";
  try {
    d->out = d->d->Push(token);
  } catch (...) {
    d->out.clear();
  }
  return d->out.c_str();
}

const char* lamina_detokenizer_flush(lamina_detokenizer* d) {
  if (!d) return "";
  try {
    d->out = d->d->Flush();
    d->d->Reset();
  } catch (...) {
    d->out.clear();
  }
  return d->out.c_str();
}

lamina_context_params lamina_context_default_params(void) {
  lamina_context_params p;
  p.n_ctx = 0;
  p.n_threads = 0;
  p.kv_type = LAMINA_KV_F16;
  p.n_batch = 0;
  p.logits_all = 0;
  p.context_shift = 0;
  p.n_keep = 0;
  return p;
}

lamina_status lamina_context_create(const lamina_model* model, const lamina_context_params* params,
                                    lamina_context** out) {
  return Guard([&]() -> lamina_status {
    if (!model || !out) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_context_create: NULL");
    *out = nullptr;
    const lamina_context_params p = params ? *params : lamina_context_default_params();
    if (p.kv_type != LAMINA_KV_F16 && p.kv_type != LAMINA_KV_F32 && p.kv_type != LAMINA_KV_Q8)
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_context_create: kv_type must be F16, F32 or Q8");
    lamina::engine::ContextOptions o;
    o.n_ctx = p.n_ctx;
    o.n_threads = p.n_threads;
    o.kv_type = p.kv_type == LAMINA_KV_F32  ? lamina::kern::KvType::kF32
                : p.kv_type == LAMINA_KV_Q8 ? lamina::kern::KvType::kQ8
                                            : lamina::kern::KvType::kF16;
    o.n_batch = p.n_batch;
    o.logits_all = p.logits_all != 0;
    o.context_shift = p.context_shift != 0;
    o.n_keep = p.n_keep;
    lamina::engine::Status st;
    std::unique_ptr<Context> c = Context::Create(*model->m, o, &st);
    if (!c) return Fail(st.code, "lamina_context_create: " + st.msg);
    *out = new lamina_context{std::move(c)};
    return LAMINA_OK;
  });
}

void lamina_context_free(lamina_context* ctx) { delete ctx; }

lamina_status lamina_adapter_load(const lamina_model* model, const char* path,
                                  lamina_adapter** out) {
  return Guard([&]() -> lamina_status {
    if (!model || !out) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_adapter_load: NULL");
    *out = nullptr;
    if (!path || !*path) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_adapter_load: no path");
    std::string err;
    std::unique_ptr<lamina::engine::Adapter> a =
        lamina::engine::Adapter::Load(*model->m, path, &err);
    if (!a) return Fail(LAMINA_ERR_ADAPTER, "lamina_adapter_load: " + err);
    *out = new lamina_adapter{std::move(a)};
    return LAMINA_OK;
  });
}

void lamina_adapter_free(lamina_adapter* adapter) { delete adapter; }

lamina_status lamina_context_set_adapters(lamina_context* ctx,
                                          const lamina_adapter* const* adapters,
                                          const float* scales, size_t n) {
  return Guard([&]() -> lamina_status {
    if (!ctx) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_context_set_adapters: NULL context");
    if (n > LAMINA_MAX_ADAPTERS)
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_context_set_adapters: more than " +
                                              std::to_string(LAMINA_MAX_ADAPTERS) + " adapters");
    std::vector<const lamina::engine::Adapter*> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = adapters && adapters[i] ? adapters[i]->a.get() : nullptr;
    std::string err;
    if (!ctx->c->SetAdapters(v.data(), scales, static_cast<int>(n), &err))
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_context_set_adapters: " + err);
    return LAMINA_OK;
  });
}

lamina_status lamina_context_get_info(const lamina_context* ctx, lamina_context_info* info) {
  return Guard([&]() -> lamina_status {
    if (!ctx || !info) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_context_get_info: NULL");
    const Context& c = *ctx->c;
    info->n_ctx = c.n_ctx();
    info->n_batch = c.n_batch();
    info->n_threads = c.n_threads();
    info->kv_type = c.kv_type() == lamina::kern::KvType::kF32  ? LAMINA_KV_F32
                    : c.kv_type() == lamina::kern::KvType::kQ8 ? LAMINA_KV_Q8
                                                               : LAMINA_KV_F16;
    info->kv_bytes = c.kv_bytes();
    info->state_bytes = c.state_bytes();
    info->n_past = c.n_past();
    return LAMINA_OK;
  });
}

lamina_status lamina_eval(lamina_context* ctx, const int32_t* tokens, size_t n) {
  return Guard([&]() -> lamina_status {
    if (!ctx || !tokens || n == 0)
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_eval: NULL context/tokens or n == 0");
    if (n > static_cast<size_t>(ctx->c->n_ctx()))
      return Fail(LAMINA_ERR_CONTEXT_FULL, "context full: " + std::to_string(n) +
                                               " tokens > n_ctx " +
                                               std::to_string(ctx->c->n_ctx()));
    std::string err;
    switch (ctx->c->Eval(tokens, static_cast<int>(n), &err)) {
      case lamina::engine::EvalStatus::kOk:
        return LAMINA_OK;
      case lamina::engine::EvalStatus::kContextFull:
        return Fail(LAMINA_ERR_CONTEXT_FULL, err);
      case lamina::engine::EvalStatus::kInvalid:
        return Fail(LAMINA_ERR_INVALID_ARG, err);
      case lamina::engine::EvalStatus::kNumeric:
        return Fail(LAMINA_ERR_NUMERIC, err);
    }
    return Fail(LAMINA_ERR_INTERNAL, "eval: unknown status");
  });
}

const float* lamina_get_logits(const lamina_context* ctx) {
  return ctx ? ctx->c->logits() : nullptr;
}

const float* lamina_get_logits_ith(const lamina_context* ctx, int32_t i) {
  if (!ctx || i < 0) return nullptr;
  const Context& c = *ctx->c;
  if (!c.logits_all()) {
    // Only the last token's logits are kept; it is index n_logits - 1 of nothing else.
    return nullptr;
  }
  if (i >= c.n_logits()) return nullptr;
  return c.logits_row(i);
}

int32_t lamina_n_past(const lamina_context* ctx) { return ctx ? ctx->c->n_past() : 0; }

lamina_status lamina_kv_rewind(lamina_context* ctx, int32_t n) {
  return Guard([&]() -> lamina_status {
    if (!ctx) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_kv_rewind: NULL context");
    if (!ctx->c->Rewind(n))
      return Fail(LAMINA_ERR_INVALID_ARG,
                  "lamina_kv_rewind: n = " + std::to_string(n) +
                      " outside [0, n_past = " + std::to_string(ctx->c->n_past()) + "]");
    return LAMINA_OK;
  });
}

void lamina_kv_clear(lamina_context* ctx) {
  if (ctx) ctx->c->Clear();
}

lamina_status lamina_kv_tokens(const lamina_context* ctx, int32_t* tokens, size_t capacity,
                               size_t* n_tokens) {
  return Guard([&]() -> lamina_status {
    if (!ctx || !n_tokens || (!tokens && capacity))
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_kv_tokens: NULL argument");
    const std::vector<int32_t>& h = ctx->c->history();
    *n_tokens = h.size();
    if (h.size() > capacity)
      return Fail(LAMINA_ERR_BUFFER_TOO_SMALL, "lamina_kv_tokens: capacity " +
                                                   std::to_string(capacity) + ", need " +
                                                   std::to_string(h.size()));
    std::copy(h.begin(), h.end(), tokens);
    return LAMINA_OK;
  });
}

lamina_status lamina_kv_shift(lamina_context* ctx, int32_t n_keep, int32_t n_discard) {
  return Guard([&]() -> lamina_status {
    if (!ctx) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_kv_shift: NULL context");
    if (!ctx->c->Shift(n_keep, n_discard))
      return Fail(LAMINA_ERR_INVALID_ARG,
                  "lamina_kv_shift: n_keep = " + std::to_string(n_keep) +
                      ", n_discard = " + std::to_string(n_discard) + " not within n_past = " +
                      std::to_string(ctx->c->n_past()) + " (need n_keep >= 0, n_discard >= 1)");
    return LAMINA_OK;
  });
}

lamina_status lamina_state_save(const lamina_context* ctx, const char* path,
                                const lamina_sampler* s) {
  return Guard([&]() -> lamina_status {
    if (!ctx || !path || !*path)
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_state_save: NULL context or path");
    std::string err;
    if (!lamina::engine::SaveSession(*ctx->c, s ? &s->s->rng() : nullptr, path, &err))
      return Fail(LAMINA_ERR_SESSION, "lamina_state_save: " + err);
    return LAMINA_OK;
  });
}

lamina_status lamina_state_load(lamina_context* ctx, const char* path, lamina_sampler* s) {
  return Guard([&]() -> lamina_status {
    if (!ctx || !path || !*path)
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_state_load: NULL context or path");
    if (s && s->s->n_vocab() != ctx->c->model().config().vocab)
      return Fail(LAMINA_ERR_INVALID_ARG,
                  "lamina_state_load: sampler and context belong to models of different "
                  "vocabularies");
    std::string err;
    if (!lamina::engine::LoadSession(ctx->c.get(), s ? &s->s->rng() : nullptr, path, &err))
      return Fail(LAMINA_ERR_SESSION, "lamina_state_load: " + err);
    return LAMINA_OK;
  });
}

lamina_sampler_params lamina_sampler_default_params(void) {
  const lamina::engine::SamplerParams d;
  lamina_sampler_params p;
  p.temperature = d.temperature;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.min_p = d.min_p;
  p.repeat_penalty = d.repeat_penalty;
  p.repeat_last_n = d.repeat_last_n;
  p.seed = d.seed;
  return p;
}

lamina_status lamina_sampler_create(const lamina_model* model, const lamina_sampler_params* p,
                                    lamina_sampler** out) {
  return Guard([&]() -> lamina_status {
    if (!model || !out) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_sampler_create: NULL");
    *out = nullptr;
    const lamina_sampler_params q = p ? *p : lamina_sampler_default_params();
    if (!(q.repeat_penalty > 0.f) || q.repeat_last_n < 0 || q.top_p != q.top_p ||
        q.min_p != q.min_p || q.temperature != q.temperature)
      return Fail(LAMINA_ERR_INVALID_ARG,
                  "lamina_sampler_create: repeat_penalty must be > 0, repeat_last_n >= 0, no NaN");
    lamina::engine::SamplerParams s;
    s.temperature = q.temperature;
    s.top_k = q.top_k;
    s.top_p = q.top_p;
    s.min_p = q.min_p;
    s.repeat_penalty = q.repeat_penalty;
    s.repeat_last_n = q.repeat_last_n;
    s.seed = q.seed;
    *out = new lamina_sampler{
        std::make_unique<lamina::engine::Sampler>(s, model->m->config().vocab), model};
    return LAMINA_OK;
  });
}

void lamina_sampler_free(lamina_sampler* s) { delete s; }

lamina_status lamina_sample(lamina_sampler* s, const lamina_context* ctx, int32_t* token) {
  return Guard([&]() -> lamina_status {
    if (!s || !ctx || !token) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_sample: NULL");
    if (s->s->n_vocab() != ctx->c->model().config().vocab)
      return Fail(LAMINA_ERR_INVALID_ARG,
                  "lamina_sample: sampler and context belong to models of different vocabularies");
    const float* logits = ctx->c->logits();
    if (!logits) return Fail(LAMINA_ERR_NO_LOGITS, "lamina_sample: no logits (evaluate first)");
    const std::vector<int32_t>& h = ctx->c->history();
    *token = s->s->Sample(logits, h.data(), static_cast<int>(h.size()));
    if (*token == -1)
      return Fail(LAMINA_ERR_INVALID_ARG,
                  "lamina_sample: the grammar is complete and allows no more tokens");
    if (*token < 0) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_sample: " + s->s->grammar_error());
    return LAMINA_OK;
  });
}

lamina_generate_params lamina_generate_default_params(void) {
  lamina_generate_params p;
  p.max_tokens = 128;
  p.stop = nullptr;
  p.n_stop = 0;
  p.callback = nullptr;
  p.user = nullptr;
  return p;
}

lamina_status lamina_generate(lamina_context* ctx, lamina_sampler* s, const int32_t* prompt,
                              size_t n_prompt, size_t max_tokens, lamina_token_callback cb,
                              void* user, lamina_generate_result* result) {
  lamina_generate_params p = lamina_generate_default_params();
  p.max_tokens = max_tokens;
  p.callback = cb;
  p.user = user;
  return lamina_generate_ex(ctx, s, prompt, n_prompt, &p, result);
}

lamina_status lamina_generate_ex(lamina_context* ctx, lamina_sampler* s, const int32_t* prompt,
                                 size_t n_prompt, const lamina_generate_params* params,
                                 lamina_generate_result* result) {
  return Guard([&]() -> lamina_status {
    lamina_generate_result r{0, LAMINA_STOP_NONE, -1};
    if (result) *result = r;
    if (!ctx || !s || (!prompt && n_prompt))
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_generate: NULL argument");
    const lamina_generate_params p = params ? *params : lamina_generate_default_params();
    Context& c = *ctx->c;
    if (s->s->n_vocab() != c.model().config().vocab)
      return Fail(
          LAMINA_ERR_INVALID_ARG,
          "lamina_generate: sampler and context belong to models of different vocabularies");
    std::vector<std::string> stop_strings;
    const lamina_status sst = ReadStops(p, c, "lamina_generate_ex", &stop_strings);
    if (sst != LAMINA_OK) return sst;
    if (n_prompt > 0 && s->s->grammar()) s->s->grammar()->Reset();  // a new generation
    const lamina_status pst = EvalPrompt(ctx, prompt, n_prompt, "lamina_generate");
    if (pst != LAMINA_OK) return pst;
    const std::vector<int32_t>& stops = c.model().config().stop_ids;
    TokenStream out(c, p.callback, p.user, std::move(stop_strings));
    while (r.n_generated < p.max_tokens) {
      if (c.n_past() >= c.n_ctx() && !ShiftForRoom(c, 1)) {
        r.reason = LAMINA_STOP_CONTEXT_FULL;
        break;
      }
      const std::vector<int32_t>& h = c.history();
      const int32_t t = s->s->Sample(c.logits(), h.data(), static_cast<int>(h.size()));
      if (t == -2) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_generate: " + s->s->grammar_error());
      if (t == -1 || std::find(stops.begin(), stops.end(), t) != stops.end()) {
        r.reason = LAMINA_STOP_EOS;
        r.stop_token = t;
        break;
      }
      ++r.n_generated;
      bool matched = false;
      const bool stop = out.Push(t, &matched);
      std::string err;
      const lamina::engine::EvalStatus es = c.Eval(&t, 1, &err);
      if (es != lamina::engine::EvalStatus::kOk)
        return GenerationEvalFail(es, "lamina_generate: " + err);
      if (matched) {
        r.reason = LAMINA_STOP_STRING;
        break;
      }
      if (stop) {
        r.reason = LAMINA_STOP_CALLBACK;
        break;
      }
    }
    if (r.reason == LAMINA_STOP_NONE) r.reason = LAMINA_STOP_LENGTH;
    if (r.reason != LAMINA_STOP_STRING && out.Finish()) r.reason = LAMINA_STOP_STRING;
    if (result) *result = r;
    return LAMINA_OK;
  });
}

lamina_status lamina_context_get_stats(const lamina_context* ctx, lamina_stats* st) {
  return Guard([&]() -> lamina_status {
    if (!ctx || !st) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_context_get_stats: NULL");
    Context& c = *ctx->c;
    st->load_ms = c.model().load_ms();
    st->prefill_tokens = c.stats().prefill_tokens;
    st->prefill_ms = c.stats().prefill_ms;
    st->decode_tokens = c.stats().decode_tokens;
    st->decode_ms = c.stats().decode_ms;
    st->peak_rss_bytes = PeakRssBytes();
    st->n_threads = c.n_threads();
    st->kernel_tier = lamina::kern::TierName(c.model().tier());
    return LAMINA_OK;
  });
}

void lamina_context_reset_stats(lamina_context* ctx) {
  if (ctx) ctx->c->stats() = lamina::engine::Stats();
}

lamina_speculative_params lamina_speculative_default_params(void) {
  lamina_speculative_params p;
  p.lookup = 0;
  p.lookup_ngram = 3;
  p.draft_max = 11;  // engine::SpecParams says why
  p.draft = nullptr;
  return p;
}

lamina_status lamina_generate_speculative(lamina_context* ctx, lamina_sampler* s,
                                          const int32_t* prompt, size_t n_prompt, size_t max_tokens,
                                          const lamina_speculative_params* params,
                                          lamina_token_callback cb, void* user,
                                          lamina_generate_result* result,
                                          lamina_speculative_stats* stats) {
  lamina_generate_params p = lamina_generate_default_params();
  p.max_tokens = max_tokens;
  p.callback = cb;
  p.user = user;
  return lamina_generate_speculative_ex(ctx, s, prompt, n_prompt, &p, params, result, stats);
}

lamina_status lamina_generate_speculative_ex(lamina_context* ctx, lamina_sampler* s,
                                             const int32_t* prompt, size_t n_prompt,
                                             const lamina_generate_params* gen,
                                             const lamina_speculative_params* params,
                                             lamina_generate_result* result,
                                             lamina_speculative_stats* stats) {
  return Guard([&]() -> lamina_status {
    lamina_generate_result r{0, LAMINA_STOP_NONE, -1};
    if (result) *result = r;
    if (stats) std::memset(stats, 0, sizeof(*stats));
    if (!ctx || !s || !params || (!prompt && n_prompt))
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_generate_speculative: NULL argument");
    const lamina_generate_params p = gen ? *gen : lamina_generate_default_params();
    Context& c = *ctx->c;
    if (s->s->n_vocab() != c.model().config().vocab)
      return Fail(LAMINA_ERR_INVALID_ARG,
                  "lamina_generate_speculative: sampler and context belong to models of "
                  "different vocabularies");
    if (s->s->grammar())
      return Fail(LAMINA_ERR_INVALID_ARG,
                  "lamina_generate_speculative: not with a grammar (lamina_sampler_set_grammar)");
    if (!params->lookup && !params->draft)
      return Fail(LAMINA_ERR_INVALID_ARG,
                  "lamina_generate_speculative: no drafter (set lookup and/or draft)");
    if (params->draft_max < 1 || params->draft_max > 64)
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_generate_speculative: draft_max " +
                                              std::to_string(params->draft_max) +
                                              " out of range (1..64)");
    if (params->lookup && (params->lookup_ngram < 1 || params->lookup_ngram > 64))
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_generate_speculative: lookup_ngram " +
                                              std::to_string(params->lookup_ngram) +
                                              " out of range (1..64)");
    if (params->draft == ctx)
      return Fail(LAMINA_ERR_INVALID_ARG,
                  "lamina_generate_speculative: the draft context must not be the target "
                  "context");
    std::string err;
    if (params->draft &&
        !lamina::engine::SameVocabulary(c.model(), params->draft->c->model(), &err))
      return Fail(LAMINA_ERR_INVALID_ARG, "lamina_generate_speculative: " + err);
    std::vector<std::string> stop_strings;
    const lamina_status sst = ReadStops(p, c, "lamina_generate_speculative", &stop_strings);
    if (sst != LAMINA_OK) return sst;
    const lamina_status pst = EvalPrompt(ctx, prompt, n_prompt, "lamina_generate_speculative");
    if (pst != LAMINA_OK) return pst;
    TokenStream out(c, p.callback, p.user, std::move(stop_strings));
    bool matched = false;
    auto emit = [&](int32_t t) -> bool { return out.Push(t, &matched) || matched; };
    lamina::engine::SpecParams sp;
    sp.lookup = params->lookup != 0;
    sp.ngram_max = params->lookup_ngram;
    sp.draft_max = params->draft_max;
    sp.draft = params->draft ? params->draft->c.get() : nullptr;
    lamina::engine::SpecResult res;
    lamina::engine::SpecStats st;
    if (!lamina::engine::GenerateSpeculative(c, *s->s, sp, p.max_tokens,
                                             c.model().config().stop_ids, emit, &res, &st, &err))
      return GenerationEvalFail(res.status, "lamina_generate_speculative: " + err);
    r.n_generated = res.n_generated;
    r.stop_token = res.stop_token;
    switch (res.reason) {
      case lamina::engine::SpecStop::kLength:
        r.reason = LAMINA_STOP_LENGTH;
        break;
      case lamina::engine::SpecStop::kStopToken:
        r.reason = LAMINA_STOP_EOS;
        break;
      case lamina::engine::SpecStop::kCallback:
        r.reason = matched ? LAMINA_STOP_STRING : LAMINA_STOP_CALLBACK;
        break;
      case lamina::engine::SpecStop::kContextFull:
        r.reason = LAMINA_STOP_CONTEXT_FULL;
        break;
    }
    if (r.reason != LAMINA_STOP_STRING && out.Finish()) r.reason = LAMINA_STOP_STRING;
    if (result) *result = r;
    if (stats) {
      stats->generated = st.generated;
      stats->drafted = st.drafted;
      stats->accepted = st.accepted;
      stats->target_passes = st.target_passes;
      stats->draft_passes = st.draft_passes;
      stats->ms = st.ms;
    }
    return LAMINA_OK;
  });
}

}  // extern "C"
