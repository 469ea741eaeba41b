// llama-run: what the modes share: contexts, tokenizing, speculative decoding,
// statistics, -hf.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tools/convert/convert.h"
#include "tools/run/run.h"
#ifdef LAMINA_WITH_HUB
#include "tools/hub/hf_hub.h"
#endif

namespace lamina::run {

const char* KvName(lamina_kv_type t) {
  return t == LAMINA_KV_F32 ? "f32" : t == LAMINA_KV_Q8 ? "q8" : "f16";
}

volatile std::sig_atomic_t g_interrupted = 0;
void OnSigint(int) { g_interrupted = 1; }

int SetUpSpec(const Args& a, const lamina_context_info& target, std::unique_ptr<Spec>* out) {
  if (!Speculative(a)) return 0;
  out->reset(new Spec());
  Spec* sp = out->get();
  sp->params.lookup = a.lookup ? 1 : 0;
  sp->params.lookup_ngram = static_cast<int32_t>(a.lookup_ngram);
  sp->params.draft_max = static_cast<int32_t>(a.draft_max);
  if (a.draft.empty()) return 0;
  if (const int rc = LoadModel(a, a.draft, "loading the draft model", &sp->model)) return rc;
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = target.n_ctx;
  cp.n_threads = target.n_threads;
  cp.n_batch = target.n_batch;
  cp.kv_type = target.kv_type;
  lamina_model_info di;
  lamina_model_get_info(sp->model.get(), &di);
  if (cp.n_ctx > di.max_context) cp.n_ctx = di.max_context;
  lamina_context* ctx = nullptr;
  const lamina_status st = lamina_context_create(sp->model.get(), &cp, &ctx);
  if (st != LAMINA_OK) return Fail("creating the draft context", st);
  sp->ctx.reset(ctx);
  sp->params.draft = sp->ctx.get();
  return 0;
}

lamina_status Generate(Spec* sp, const Args& a, lamina_context* ctx, lamina_sampler* smp,
                       const int32_t* ids, size_t n, size_t max_tokens, lamina_token_callback cb,
                       void* user, lamina_generate_result* res) {
  std::vector<const char*> stop;
  for (const std::string& s : a.stop) stop.push_back(s.c_str());
  lamina_generate_params gp = lamina_generate_default_params();
  gp.max_tokens = max_tokens;
  gp.stop = stop.empty() ? nullptr : stop.data();
  gp.n_stop = stop.size();
  gp.callback = cb;
  gp.user = user;
  if (!sp) return lamina_generate_ex(ctx, smp, ids, n, &gp, res);
  lamina_speculative_stats st;
  const lamina_status s =
      lamina_generate_speculative_ex(ctx, smp, ids, n, &gp, &sp->params, res, &st);
  if (s == LAMINA_OK) {
    sp->total.generated += st.generated;
    sp->total.drafted += st.drafted;
    sp->total.accepted += st.accepted;
    sp->total.target_passes += st.target_passes;
    sp->total.draft_passes += st.draft_passes;
    sp->total.ms += st.ms;
  }
  return s;
}

void PrintSpecStats(const lamina_speculative_stats& t) {
  std::fprintf(
      stderr,
      "[llama-run] speculative: generated %llu, drafted %llu, accepted %llu (%.1f%%), "
      "target passes %llu (%.3f per generated token), draft passes %llu, %.2f tok/s\n",
      static_cast<unsigned long long>(t.generated), static_cast<unsigned long long>(t.drafted),
      static_cast<unsigned long long>(t.accepted), t.drafted ? 100.0 * t.accepted / t.drafted : 0.0,
      static_cast<unsigned long long>(t.target_passes),
      t.generated ? static_cast<double>(t.target_passes) / t.generated : 0.0,
      static_cast<unsigned long long>(t.draft_passes),
      t.ms > 0 ? 1000.0 * t.generated / t.ms : 0.0);
}

int Fail(const char* what, lamina_status st) {
  std::fprintf(stderr, "llama-run: %s: %s (%s)\n", what, lamina_last_error(),
               lamina_status_string(st));
  return 1;
}

int LoadModel(const Args& a, const std::string& path, const char* what, ModelPtr* out) {
  lamina_model_params mp = lamina_model_default_params();
  if (!a.kernels.empty()) mp.kernels = a.kernels.c_str();
  lamina_model* m = nullptr;
  const lamina_status st = lamina_model_load(path.c_str(), &mp, &m);
  if (st != LAMINA_OK) return Fail(what, st);
  out->reset(m);
  return 0;
}

int CreateContext(const Args& a, const lamina_model* model, const lamina_model_info& mi,
                  bool logits_all, ContextPtr* ctx, long n_keep) {
  if (a.n_ctx > mi.max_context) {
    std::fprintf(stderr, "llama-run: -c %ld exceeds the model's maximum context %d\n", a.n_ctx,
                 mi.max_context);
    return 2;
  }
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = static_cast<int32_t>(a.n_ctx);
  cp.n_threads = static_cast<int32_t>(a.n_threads);
  cp.n_batch = static_cast<int32_t>(a.n_batch);
  cp.kv_type = a.kv;
  cp.logits_all = logits_all ? 1 : 0;
  if (n_keep >= 0) {
    cp.context_shift = 1;
    cp.n_keep = static_cast<int32_t>(n_keep);
  }
  lamina_context* c = nullptr;
  const lamina_status st = lamina_context_create(model, &cp, &c);
  if (st != LAMINA_OK) return Fail("creating the context", st);
  ctx->reset(c);
  if (!a.lora.empty()) {
    static lamina::convert::LoraSet lora;  // outlives every context
    std::string err;
    const bool ok =
        (!lora.adapters.empty() || lora.Load(model, a.model, a.lora, a.lora_scale, &err)) &&
        lora.Attach(ctx->get()) == LAMINA_OK;
    if (!ok) {
      std::fprintf(stderr, "llama-run: %s\n", err.empty() ? lamina_last_error() : err.c_str());
      ctx->reset();
      return 1;
    }
  }
  return 0;
}

void CatchSigint() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: Ctrl-C at the chat prompt ends the read
  sigaction(SIGINT, &sa, nullptr);
}

bool ParseTokens(const std::string& s, int32_t vocab, std::vector<int32_t>* out) {
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string t = s.substr(i, j - i);
    long v;
    if (!ParseLong(t.c_str(), 0, vocab - 1, &v)) {
      std::fprintf(stderr, "llama-run: --tokens: '%s' is not a token id in [0, %d)\n", t.c_str(),
                   vocab);
      return false;
    }
    out->push_back(static_cast<int32_t>(v));
    i = j + 1;
  }
  return !out->empty();
}

bool Tokenize(const lamina_model* m, const std::string& text, bool add_bos,
              std::vector<int32_t>* out) {
  size_t n = 0;
  out->assign(text.size() + 16, 0);
  lamina_status st =
      lamina_tokenize(m, text.data(), text.size(), add_bos, 1, out->data(), out->size(), &n);
  if (st == LAMINA_ERR_BUFFER_TOO_SMALL) {
    out->assign(n, 0);
    st = lamina_tokenize(m, text.data(), text.size(), add_bos, 1, out->data(), out->size(), &n);
  }
  if (st != LAMINA_OK) {
    Fail("tokenize", st);
    return false;
  }
  out->resize(n);
  return true;
}

int OnToken(int32_t tok, const char* piece, size_t len, void*) {
  if (piece && len) {
    std::fwrite(piece, 1, len, stdout);
  } else if (!piece && tok >= 0) {
    std::fprintf(stdout, "%d ", tok);  // no tokenizer: the ids
  }
  std::fflush(stdout);
  return g_interrupted ? 1 : 0;
}

void PrintStats(lamina_context* ctx) {
  lamina_stats s;
  if (lamina_context_get_stats(ctx, &s) != LAMINA_OK) return;
  const double pre = s.prefill_ms > 0 ? 1000.0 * s.prefill_tokens / s.prefill_ms : 0;
  const double dec = s.decode_ms > 0 ? 1000.0 * s.decode_tokens / s.decode_ms : 0;
  std::fprintf(stderr,
               "\n[llama-run] load %.1f ms | prompt %llu tokens, %.2f tok/s | generated %llu "
               "tokens, %.2f tok/s | peak RSS %.1f MiB | threads %d | kernels %s\n",
               s.load_ms, static_cast<unsigned long long>(s.prefill_tokens), pre,
               static_cast<unsigned long long>(s.decode_tokens), dec, s.peak_rss_bytes / 1048576.0,
               s.n_threads, s.kernel_tier);
}

int ResolveHf(Args* a) {
#ifdef LAMINA_WITH_HUB
  std::string err;
  if (!lamina::hub::ResolveHfModel(a->hf, lamina::hub::HubOptions{}, &a->model, &err)) {
    std::fprintf(stderr, "llama-run: -hf %s: %s\n", a->hf.c_str(), err.c_str());
    return 1;
  }
  return 0;
#else
  (void)a;
  std::fprintf(stderr,
               "llama-run: -hf: this build has no Hugging Face download (libcurl; "
               "LAMINA_WITH_HUB=OFF); download the model and use -m\n");
  return 1;
#endif
}

}  // namespace lamina::run
