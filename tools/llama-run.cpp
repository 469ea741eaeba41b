// llama-run: generate text with a lamina model (uses only the public C API).
//
//   llama-run -m model.lamina -p "prompt" -n 128     continuation streamed to stdout
//   llama-run -hf ORG/REPO[:FILE] ...                 a Hugging Face model instead of -m:
//       downloaded, converted and cached once (tools/hub/hf_hub.h)
//   llama-run -m M --tokens 128000,9906,1917 --dump-logits out.f32
//       evaluates exactly these ids and writes the logits of every position as raw
//       little-endian f32, row-major [n_tokens x vocab] (a stable validation interface)
//   llama-run -m M --chat [--system "..."]           interactive Llama 3 chat; when the
//       context fills up, the oldest whole turns are dropped (the system prompt stays)
//   llama-run -m M -p "..." -n 4000 --keep N         generate past the context: context
//       shift (keep the first N tokens, drop the oldest half of the rest)
//   llama-run -m M -p "..." --session FILE           prompt cache: reuse the saved prefix
//   llama-run -m M --bench [-p N_PROMPT] [-n N_GEN] [-t T] [-r REPS] [--json]
//       benchmark: load time, median prefill and decode tokens/s over REPS runs
//       (synthetic token ids, greedy decoding, no tokenizer), peak RSS; an aligned
//       table on stdout, or one JSON object with --json
// Statistics go to stderr at the end. Exit status: 0 ok, 1 runtime error, 2 bad usage.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "lamina/lamina.h"
#include "tools/convert/convert.h"
#ifdef LAMINA_WITH_HUB
#include "tools/hub/hf_hub.h"
#endif

namespace {

const char* KvName(lamina_kv_type t) {
  return t == LAMINA_KV_F32 ? "f32" : t == LAMINA_KV_Q8 ? "q8" : "f16";
}

volatile std::sig_atomic_t g_interrupted = 0;
void OnSigint(int) { g_interrupted = 1; }

void Usage(FILE* f) {
  std::fprintf(
      f,
      "usage: llama-run -m MODEL | -hf ORG/REPO[:FILE] [options]\n"
      "  -m FILE             model (.lamina)\n"
      "  -hf ORG/REPO[:FILE] Hugging Face model instead of -m: downloaded, converted (q4) and\n"
      "                      cached once in $LAMINA_CACHE or ~/.cache/lamina; FILE picks a .gguf\n"
      "                      (HF_ENDPOINT, HF_TOKEN for gated repos; see README)\n"
      "  -p TEXT             prompt\n"
      "  -f FILE             prompt read from a file\n"
      "  --tokens ID,ID,...  prompt given as token ids (no tokenizer involved)\n"
      "  -n N                tokens to generate (default 128)\n"
      "  -c N                context length (default min(8192, model max); up to the model max)\n"
      "  -t N                threads (default: number of performance cores)\n"
      "  -b N                prefill batch (default 64)\n"
      "  --temp T            temperature (default 0.8; 0 = greedy)\n"
      "  --top-k K           (default 40; 0 = off)\n"
      "  --top-p P           (default 0.95; 1 = off)\n"
      "  --min-p P           (default 0.05; 0 = off)\n"
      "  --repeat-penalty R  (default 1.0 = off), over the last --repeat-last-n tokens (64)\n"
      "  --seed S            RNG seed (default: time-based, printed)\n"
      "  --stop STR          stop when STR occurs in the output (repeatable); the text from\n"
      "                      STR on is not printed, even when it spans tokens\n"
      "  --chat              interactive chat (Llama 3 template); Ctrl-C stops a reply, Ctrl-D "
      "exits\n"
      "  --system TEXT       system prompt for --chat\n"
      "                      (--chat drops the oldest whole turns when the context is full,\n"
      "                      keeping the system prompt, and says so)\n"
      "  --keep N            when generation fills the context, shift it: keep the first N\n"
      "                      tokens (-1: the whole prompt), drop the oldest half of the rest,\n"
      "                      continue (default: stop at a full context)\n"
      "  --session FILE      prompt cache: if FILE exists, load it and reuse the longest\n"
      "                      common prefix of the prompt with its tokens (evaluate only the\n"
      "                      rest); save the context (prompt + output) to FILE at the end\n"
      "  --dump-logits FILE  write the logits of every prompt position (f32 LE [n x vocab]), exit\n"
      "  --kernels TIER      auto (default: the best the CPU has), ref, or a SIMD tier:\n"
      "                      neon|dotprod|i8mm|sve (aarch64), avx2|avxvnni|avx512vnni\n"
      "                      (x86-64); also $LAMINA_KERNELS\n"
      "  --kv f16|f32|q8     KV cache type (default f16; q8: int8 + f16 scale per head)\n"
      "  --no-bos            do not prepend BOS to -p/-f prompts\n"
      "  --lora PATH         apply a LoRA adapter (repeatable): a lamina-convert\n"
      "                      --lora-adapter file, or a Hugging Face PEFT directory\n"
      "  --lora-scale S      scale of the preceding --lora (default 1 = as trained)\n"
      "speculative decoding (greedy output identical to plain decoding; stats on stderr):\n"
      "  --lookup            draft by prompt lookup (continuation of the last n-gram's\n"
      "                      most recent earlier occurrence)\n"
      "  --lookup-ngram N    longest n-gram matched (default 3)\n"
      "  --draft FILE        draft model (.lamina, same vocabulary; lookup first if both)\n"
      "  --draft-max N       most tokens drafted per target pass (default 8, 1..64)\n"
      "benchmark mode:\n"
      "  --bench             load, then per repetition: clear the KV cache, prefill N_PROMPT\n"
      "                      synthetic ids ((i*7919) %% vocab), decode N_GEN tokens greedily;\n"
      "                      reports load ms, median prefill/decode tok/s, peak RSS\n"
      "  -p N_PROMPT         with --bench: prompt tokens (default 64)\n"
      "  -n N_GEN            with --bench: generated tokens (default 32; 0 = prefill only)\n"
      "  -r, --reps R        with --bench: repetitions (default 3)\n"
      "  --json              with --bench: one JSON object on stdout instead of the table\n"
      "  (-t, -c, -b, --kv, --kernels apply to --bench as well)\n");
}

struct Args {
  std::string hf;  // -hf ORG/REPO[:FILE]
  std::string model, prompt, prompt_file, tokens, dump_logits, kernels, system, session;
  long keep = -2;  // --keep: -2 off, -1 the whole prompt, else a token count
  // speculative decoding
  bool lookup = false;
  std::string draft;
  long lookup_ngram = 3, draft_max = 8;
  bool have_prompt = false, chat = false, no_bos = false, have_seed = false;
  bool have_n = false;
  long n_predict = 128, n_ctx = 0, n_threads = 0, n_batch = 0;
  // --bench
  bool bench = false, json = false, have_reps = false;
  long bench_prompt = 64, reps = 3;
  std::string sampling_flag;      // the last sampling option given (--bench is greedy)
  std::vector<std::string> stop;  // --stop (repeatable)
  std::vector<std::string> lora;  // --lora (repeatable)
  std::vector<float> lora_scale;  // --lora-scale of each --lora (default 1)
  lamina_kv_type kv = LAMINA_KV_F16;
  lamina_sampler_params sp = lamina_sampler_default_params();
};

bool ParseLong(const char* s, long lo, long hi, long* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}
bool ParseFloat(const char* s, float* out) {
  char* end = nullptr;
  errno = 0;
  const float v = std::strtof(s, &end);
  if (errno || end == s || *end || v != v) return false;
  *out = v;
  return true;
}

int BadUsage(const std::string& msg) {
  std::fprintf(stderr, "llama-run: %s\n(run llama-run --help for the options)\n", msg.c_str());
  return 2;
}

// Returns 0 on success, else the exit code.
int ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    auto need = [&](const char** v) {
      if (i + 1 >= argc) return false;
      *v = argv[++i];
      return true;
    };
    const char* v = nullptr;
    long l;
    float x;
    for (const char* s : {"--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
                          "--repeat-last-n", "--seed"})
      if (f == s) a->sampling_flag = f;
    if (f == "-h" || f == "--help") {
      Usage(stdout);
      std::exit(0);
    } else if (f == "--chat") {
      a->chat = true;
    } else if (f == "--no-bos") {
      a->no_bos = true;
    } else if (f == "--bench") {
      a->bench = true;
    } else if (f == "--json") {
      a->json = true;
    } else if (f == "--lookup") {
      a->lookup = true;
    } else if (!need(&v)) {
      return BadUsage(f.rfind("-", 0) == 0 ? "unknown option or missing value: " + f
                                           : "unexpected argument: " + f);
    } else if (f == "-m" || f == "--model") {
      a->model = v;
    } else if (f == "-hf" || f == "--hf-repo") {
      a->hf = v;
    } else if (f == "-p" || f == "--prompt") {
      a->prompt = v;
      a->have_prompt = true;
    } else if (f == "-f" || f == "--file") {
      a->prompt_file = v;
    } else if (f == "--tokens") {
      if (!*v) return BadUsage("--tokens: expected comma-separated token ids, got ''");
      a->tokens = v;
    } else if (f == "--dump-logits") {
      a->dump_logits = v;
    } else if (f == "--kernels") {
      a->kernels = v;
    } else if (f == "--system") {
      a->system = v;
    } else if (f == "--session") {
      if (!*v) return BadUsage("--session: expected a file name");
      a->session = v;
    } else if (f == "--keep") {
      if (!ParseLong(v, -1, 1L << 24, &a->keep)) return BadUsage("--keep: expected N >= -1");
    } else if (f == "--draft") {
      a->draft = v;
    } else if (f == "--lookup-ngram") {
      if (!ParseLong(v, 1, 64, &a->lookup_ngram)) return BadUsage("--lookup-ngram: expected 1..64");
    } else if (f == "--draft-max") {
      if (!ParseLong(v, 1, 64, &a->draft_max)) return BadUsage("--draft-max: expected 1..64");
    } else if (f == "-n" || f == "--n-predict") {
      if (!ParseLong(v, 0, 1L << 30, &a->n_predict)) return BadUsage("-n: expected a count >= 0");
      a->have_n = true;
    } else if (f == "-r" || f == "--reps") {
      if (!ParseLong(v, 1, 1000000, &a->reps)) return BadUsage("-r: expected a count >= 1");
      a->have_reps = true;
    } else if (f == "-c" || f == "--ctx-size") {
      if (!ParseLong(v, 1, 1L << 24, &a->n_ctx)) return BadUsage("-c: expected a length >= 1");
    } else if (f == "-t" || f == "--threads") {
      if (!ParseLong(v, 1, 512, &a->n_threads)) return BadUsage("-t: expected 1..512");
    } else if (f == "-b" || f == "--batch") {
      if (!ParseLong(v, 1, 4096, &a->n_batch)) return BadUsage("-b: expected 1..4096");
    } else if (f == "--temp") {
      if (!ParseFloat(v, &x) || x < 0) return BadUsage("--temp: expected a number >= 0");
      a->sp.temperature = x;
    } else if (f == "--top-k") {
      if (!ParseLong(v, 0, 1L << 24, &l)) return BadUsage("--top-k: expected an integer >= 0");
      a->sp.top_k = static_cast<int32_t>(l);
    } else if (f == "--top-p") {
      if (!ParseFloat(v, &x) || x < 0 || x > 1) return BadUsage("--top-p: expected 0..1");
      a->sp.top_p = x;
    } else if (f == "--min-p") {
      if (!ParseFloat(v, &x) || x < 0 || x > 1) return BadUsage("--min-p: expected 0..1");
      a->sp.min_p = x;
    } else if (f == "--repeat-penalty") {
      if (!ParseFloat(v, &x) || x <= 0) return BadUsage("--repeat-penalty: expected > 0");
      a->sp.repeat_penalty = x;
    } else if (f == "--repeat-last-n") {
      if (!ParseLong(v, 0, 1L << 24, &l)) return BadUsage("--repeat-last-n: expected >= 0");
      a->sp.repeat_last_n = static_cast<int32_t>(l);
    } else if (f == "--seed") {
      char* end = nullptr;
      errno = 0;
      const unsigned long long s = std::strtoull(v, &end, 10);
      if (errno || end == v || *end) return BadUsage("--seed: expected an unsigned integer");
      a->sp.seed = s;
      a->have_seed = true;
    } else if (f == "--stop") {
      if (!*v) return BadUsage("--stop: expected a non-empty string");
      if (std::strlen(v) > LAMINA_MAX_STOP_STRING_BYTES)
        return BadUsage("--stop: at most " + std::to_string(LAMINA_MAX_STOP_STRING_BYTES) +
                        " bytes");
      if (a->stop.size() >= LAMINA_MAX_STOP_STRINGS)
        return BadUsage("--stop: at most " + std::to_string(LAMINA_MAX_STOP_STRINGS) + " strings");
      a->stop.push_back(v);
    } else if (f == "--lora") {
      if (!*v) return BadUsage("--lora: expected an adapter file or PEFT directory");
      a->lora.push_back(v);
      a->lora_scale.push_back(1.f);
    } else if (f == "--lora-scale") {
      if (a->lora.empty()) return BadUsage("--lora-scale: give it after its --lora PATH");
      if (!ParseFloat(v, &x)) return BadUsage("--lora-scale: expected a number");
      a->lora_scale.back() = x;
    } else if (f == "--kv") {
      if (std::strcmp(v, "f16") == 0) {
        a->kv = LAMINA_KV_F16;
      } else if (std::strcmp(v, "f32") == 0) {
        a->kv = LAMINA_KV_F32;
      } else if (std::strcmp(v, "q8") == 0) {
        a->kv = LAMINA_KV_Q8;
      } else {
        return BadUsage("--kv: expected f16, f32 or q8");
      }
    } else {
      return BadUsage("unknown option: " + f);
    }
  }
  if (a->model.empty() == a->hf.empty())
    return BadUsage(a->hf.empty() ? "no model (-m FILE or -hf ORG/REPO)"
                                  : "give -m or -hf, not both");
  if (!a->bench) {
    if (a->json) return BadUsage("--json needs --bench");
    if (a->have_reps) return BadUsage("-r/--reps needs --bench");
  } else {
    if (a->chat || !a->prompt_file.empty() || !a->tokens.empty() || !a->dump_logits.empty() ||
        !a->system.empty() || a->no_bos || !a->stop.empty())
      return BadUsage(
          "--bench takes none of --chat, -f, --tokens, --dump-logits, --system, --no-bos, --stop "
          "(its prompt is -p N synthetic token ids)");
    if (a->have_prompt && !ParseLong(a->prompt.c_str(), 1, 1L << 24, &a->bench_prompt))
      return BadUsage("-p: with --bench, expected the prompt length in tokens (>= 1), got '" +
                      a->prompt + "'");
    if (!a->sampling_flag.empty())
      return BadUsage("--bench decodes greedily; it takes no " + a->sampling_flag);
    if (!a->have_n) a->n_predict = 32;
  }
  const int sources = a->have_prompt + !a->prompt_file.empty() + !a->tokens.empty();
  if (sources > 1) return BadUsage("give at most one of -p, -f, --tokens");
  if (a->chat && (sources > 0 || !a->dump_logits.empty()))
    return BadUsage("--chat takes no -p/-f/--tokens/--dump-logits");
  if ((a->chat || !a->dump_logits.empty() || a->bench) && (!a->session.empty() || a->keep != -2))
    return BadUsage("--session and --keep apply to -p/-f/--tokens generation only");
  if (a->keep != -2 && (a->lookup || !a->draft.empty()))
    return BadUsage("--keep (context shift) does not combine with --lookup/--draft");
  if (!a->dump_logits.empty() && sources == 0)
    return BadUsage("--dump-logits needs a prompt (--tokens, -p or -f)");
  if ((a->lookup || !a->draft.empty()) && !a->dump_logits.empty())
    return BadUsage("--lookup/--draft generate; --dump-logits does not");
  if ((a->lookup || !a->draft.empty()) && !a->stop.empty())
    return BadUsage("--stop does not combine with --lookup/--draft yet");
  return 0;
}

bool Speculative(const Args& a) { return a.lookup || !a.draft.empty(); }

// Speculative decoding state of a run: the draft model and context (if any),
// the parameters, and the statistics summed over every generation.
struct Spec {
  lamina_model* model = nullptr;
  lamina_context* ctx = nullptr;
  lamina_speculative_params params = lamina_speculative_default_params();
  lamina_speculative_stats total{};
  ~Spec() {
    lamina_context_free(ctx);
    lamina_model_free(model);
  }
};

int Fail(const char* what, lamina_status st);

/// Loads the draft model and creates its context as the target's (-c, -t, -b,
/// --kv, --kernels). Returns 0 or the exit code.
int SetUpSpec(const Args& a, const lamina_context_info& target, Spec* sp) {
  sp->params.lookup = a.lookup ? 1 : 0;
  sp->params.lookup_ngram = static_cast<int32_t>(a.lookup_ngram);
  sp->params.draft_max = static_cast<int32_t>(a.draft_max);
  if (a.draft.empty()) return 0;
  lamina_model_params mp = lamina_model_default_params();
  if (!a.kernels.empty()) mp.kernels = a.kernels.c_str();
  lamina_status st = lamina_model_load(a.draft.c_str(), &mp, &sp->model);
  if (st != LAMINA_OK) return Fail("loading the draft model", st);
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = target.n_ctx;
  cp.n_threads = target.n_threads;
  cp.n_batch = target.n_batch;
  cp.kv_type = target.kv_type;
  lamina_model_info di;
  lamina_model_get_info(sp->model, &di);
  if (cp.n_ctx > di.max_context) cp.n_ctx = di.max_context;
  st = lamina_context_create(sp->model, &cp, &sp->ctx);
  if (st != LAMINA_OK) return Fail("creating the draft context", st);
  sp->params.draft = sp->ctx;
  return 0;
}

/// lamina_generate, or its speculative form when --lookup/--draft is given.
lamina_status Generate(Spec* sp, lamina_context* ctx, lamina_sampler* smp, const int32_t* ids,
                       size_t n, size_t max_tokens, lamina_token_callback cb, void* user,
                       lamina_generate_result* res) {
  if (!sp) return lamina_generate(ctx, smp, ids, n, max_tokens, cb, user, res);
  lamina_speculative_stats st;
  const lamina_status s =
      lamina_generate_speculative(ctx, smp, ids, n, max_tokens, &sp->params, cb, user, res, &st);
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

/// Creates the context the flags ask for (-c, -t, -b, --kv); on failure prints
/// why, frees `model` and returns the exit code (0 on success).
int CreateContext(const Args& a, lamina_model* model, const lamina_model_info& mi, bool logits_all,
                  lamina_context** ctx, long n_keep = -1) {
  if (a.n_ctx > mi.max_context) {
    std::fprintf(stderr, "llama-run: -c %ld exceeds the model's maximum context %d\n", a.n_ctx,
                 mi.max_context);
    lamina_model_free(model);
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
  const lamina_status st = lamina_context_create(model, &cp, ctx);
  if (st != LAMINA_OK) {
    lamina_model_free(model);
    return Fail("creating the context", st);
  }
  if (!a.lora.empty()) {
    static lamina::convert::LoraSet lora;  // outlives every context
    std::string err;
    const bool ok =
        (!lora.adapters.empty() || lora.Load(model, a.model, a.lora, a.lora_scale, &err)) &&
        lora.Attach(*ctx) == LAMINA_OK;
    if (!ok) {
      std::fprintf(stderr, "llama-run: %s\n", err.empty() ? lamina_last_error() : err.c_str());
      lamina_context_free(*ctx);
      *ctx = nullptr;
      lamina_model_free(model);
      return 1;
    }
  }
  return 0;
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

int DumpLogits(lamina_context* ctx, const std::vector<int32_t>& ids, int32_t vocab, int32_t batch,
               const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    std::fprintf(stderr, "llama-run: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < ids.size(); i += static_cast<size_t>(batch)) {
    const size_t n = ids.size() - i < static_cast<size_t>(batch) ? ids.size() - i : batch;
    const lamina_status st = lamina_eval(ctx, ids.data() + i, n);
    if (st != LAMINA_OK) {
      std::fclose(f);
      return Fail("eval", st);
    }
    for (size_t j = 0; j < n; ++j) {
      const float* l = lamina_get_logits_ith(ctx, static_cast<int32_t>(j));
      // Raw little-endian f32 (every supported target is little-endian).
      if (!l || std::fwrite(l, sizeof(float), vocab, f) != static_cast<size_t>(vocab)) {
        std::fclose(f);
        std::fprintf(stderr, "llama-run: writing %s failed\n", path.c_str());
        return 1;
      }
    }
  }
  if (std::fclose(f) != 0) {
    std::fprintf(stderr, "llama-run: writing %s failed\n", path.c_str());
    return 1;
  }
  return 0;
}

/// --session: loads FILE into ctx if it exists and rewinds it to the longest
/// common prefix with ids (at least one prompt token is left to evaluate, for
/// fresh logits). Returns the number of prompt tokens reused (0 when the file
/// is absent or unusable: then a warning, and it is overwritten at the end).
size_t LoadSession(lamina_context* ctx, const std::string& path, const std::vector<int32_t>& ids) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return 0;  // no session yet
  std::fclose(f);
  const lamina_status st = lamina_state_load(ctx, path.c_str(), nullptr);
  if (st != LAMINA_OK) {
    std::fprintf(stderr, "llama-run: ignoring session %s: %s\n", path.c_str(), lamina_last_error());
    return 0;
  }
  std::vector<int32_t> saved(static_cast<size_t>(lamina_n_past(ctx)));
  size_t n = 0;
  lamina_kv_tokens(ctx, saved.data(), saved.size(), &n);
  size_t keep = 0;
  while (keep < n && keep < ids.size() && saved[keep] == ids[keep]) ++keep;
  if (keep == ids.size() && keep > 0) --keep;
  lamina_kv_rewind(ctx, static_cast<int32_t>(keep));
  std::fprintf(stderr, "[llama-run] session %s: reused %zu of %zu prompt tokens (%zu saved)\n",
               path.c_str(), keep, ids.size(), n);
  return keep;
}

/// Renders msgs (contents re-pointed at store) with the chat template and
/// tokenizes the text; 0 or the exit code.
int RenderChat(lamina_model* model, std::vector<lamina_chat_message>* msgs,
               const std::vector<std::string>& store, std::vector<int32_t>* ids) {
  for (size_t i = 0; i < msgs->size(); ++i) (*msgs)[i].content = store[i].c_str();
  size_t n = 0;
  std::string text(1024, '\0');
  lamina_status st =
      lamina_chat_apply_template(model, msgs->data(), msgs->size(), 1, &text[0], text.size(), &n);
  if (st == LAMINA_ERR_BUFFER_TOO_SMALL) {
    text.assign(n, '\0');
    st =
        lamina_chat_apply_template(model, msgs->data(), msgs->size(), 1, &text[0], text.size(), &n);
  }
  if (st != LAMINA_OK) return Fail("chat template", st);
  text.resize(n);
  return Tokenize(model, text, false, ids) ? 0 : 1;
}

int Chat(lamina_model* model, lamina_context* ctx, lamina_sampler* smp, const Args& a, Spec* sp) {
  {  // Say at once when the model cannot chat (e.g. a Llama 2 / Mistral tokenizer).
    const lamina_chat_message probe = {"user", "hi"};
    size_t n = 0;
    char buf[1];
    const lamina_status st = lamina_chat_apply_template(model, &probe, 1, 1, buf, 0, &n);
    if (st == LAMINA_ERR_NO_CHAT_TEMPLATE) {
      std::fprintf(stderr,
                   "llama-run: --chat: this model's tokenizer has no chat template (lamina "
                   "renders the Llama 3.x instruct template only); use -p PROMPT instead\n");
      return 1;
    }
  }
  std::vector<lamina_chat_message> msgs;
  std::vector<std::string> store;  // owns message texts (stable: reserved)
  store.reserve(1 << 16);
  if (!a.system.empty()) {
    store.push_back(a.system);
    msgs.push_back({"system", nullptr});
  }
  std::vector<int32_t> cached;  // tokens in the KV cache
  for (;;) {
    std::fprintf(stderr, "\n> ");
    std::fflush(stderr);
    std::string line;
    char buf[4096];
    bool got = false;
    g_interrupted = 0;
    while (std::fgets(buf, sizeof(buf), stdin)) {
      got = true;
      line += buf;
      if (!line.empty() && line.back() == '\n') break;
    }
    if (!got) {  // Ctrl-D (EOF) or Ctrl-C at the prompt
      std::fprintf(stderr, "\n");
      return 0;
    }
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.empty()) continue;
    if (store.size() + 2 > store.capacity()) {
      std::fprintf(stderr, "llama-run: too many turns\n");
      return 0;
    }
    store.push_back(line);
    msgs.push_back({"user", nullptr});
    // Render the whole conversation, reuse the cached prefix, evaluate the rest.
    std::vector<int32_t> ids;
    if (const int rc = RenderChat(model, &msgs, store, &ids)) return rc;
    lamina_context_info ci;
    lamina_context_get_info(ctx, &ci);
    // Context full: drop the oldest whole turns (the system prompt stays) until
    // the conversation leaves a quarter of the context for the reply.
    const size_t first = a.system.empty() ? 0 : 1;
    const size_t room = static_cast<size_t>(ci.n_ctx) - static_cast<size_t>(ci.n_ctx) / 4;
    int dropped = 0;
    const std::vector<int32_t> ids0 = ids;  // the render before dropping turns
    while (ids.size() > room && msgs.size() > first + 1) {
      // The oldest turn: a user message and the assistant reply after it.
      const size_t n =
          msgs.size() > first + 2 && std::strcmp(msgs[first + 1].role, "assistant") == 0 ? 2 : 1;
      msgs.erase(msgs.begin() + first, msgs.begin() + first + n);
      store.erase(store.begin() + first, store.begin() + first + n);
      ++dropped;
      if (const int rc = RenderChat(model, &msgs, store, &ids)) return rc;
    }
    if (ids.size() > static_cast<size_t>(ci.n_ctx)) {
      std::fprintf(stderr,
                   "llama-run: this message does not fit the context (%zu tokens > %d); "
                   "not sent (use a larger -c)\n",
                   ids.size(), ci.n_ctx);
      msgs.pop_back();
      store.pop_back();
      continue;
    }
    // Common prefix with what the cache holds (the context only ever holds
    // tokens of this conversation).
    size_t keep = 0;
    while (keep < cached.size() && keep < ids.size() && cached[keep] == ids[keep]) ++keep;
    if (dropped > 0) {
      // The cache = system prompt + dropped turns + kept turns: drop the dropped
      // turns' tokens from the cache by a context shift instead of re-evaluating
      // the kept turns (when the kept part is token-for-token unchanged).
      // d = the dropped turns' tokens; usable when the cache holds exactly
      // those tokens right after the kept prefix (it matches the old render).
      size_t p0 = 0;
      while (p0 < cached.size() && p0 < ids0.size() && cached[p0] == ids0[p0]) ++p0;
      const size_t d = ids0.size() - ids.size();
      size_t shifted = 0;
      if (d > 0 && p0 >= keep + d && keep + d < cached.size() &&
          lamina_kv_shift(ctx, static_cast<int32_t>(keep), static_cast<int32_t>(d)) == LAMINA_OK) {
        cached.erase(cached.begin() + keep, cached.begin() + keep + d);
        shifted = d;
      }
      std::fprintf(stderr,
                   "[llama-run] context full: dropped the oldest %d turn%s (%zu tokens)%s; %s\n",
                   dropped, dropped == 1 ? "" : "s", ids0.size() - ids.size(),
                   a.system.empty() ? "" : ", kept the system prompt",
                   shifted ? "cache shifted" : "re-reading the kept turns");
      keep = 0;
      while (keep < cached.size() && keep < ids.size() && cached[keep] == ids[keep]) ++keep;
    }
    if (keep == ids.size()) --keep;  // always evaluate at least one token
    lamina_kv_rewind(ctx, static_cast<int32_t>(keep));
    cached.resize(keep);
    struct Reply {
      std::string text;
      std::vector<int32_t> ids;
    } reply;
    auto cb = [](int32_t tok, const char* piece, size_t len, void* u) -> int {
      Reply* r = static_cast<Reply*>(u);
      if (tok >= 0) r->ids.push_back(tok);
      if (piece && len) {
        r->text.append(piece, len);
        std::fwrite(piece, 1, len, stdout);
        std::fflush(stdout);
      }
      return g_interrupted ? 1 : 0;
    };
    lamina_generate_result res;
    const lamina_status st =
        Generate(sp, ctx, smp, ids.data() + keep, ids.size() - keep,
                 static_cast<size_t>(a.n_predict > 0 ? a.n_predict : 1 << 30), cb, &reply, &res);
    if (st != LAMINA_OK) return Fail("generate", st);
    if (res.reason == LAMINA_STOP_CALLBACK) std::fprintf(stderr, "\n[interrupted]");
    if (res.reason == LAMINA_STOP_CONTEXT_FULL)
      std::fprintf(stderr, "\n[context full: reply cut; the next turn drops the oldest turns]");
    std::fprintf(stdout, "\n");
    std::fflush(stdout);
    cached.assign(ids.begin(), ids.end());
    cached.insert(cached.end(), reply.ids.begin(), reply.ids.end());
    store.push_back(reply.text);
    msgs.push_back({"assistant", nullptr});
  }
}

// ------------------------------------------------------------------ --bench

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void AppendJsonString(std::string* out, const std::string& s) {
  *out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      *out += buf;
    } else {
      *out += static_cast<char>(c);
    }
  }
  *out += '"';
}

std::string JsonArray(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%s%.3f", i ? ", " : "", v[i]);
    s += buf;
  }
  return s + "]";
}

// llama-run --bench: returns the exit status.
int Bench(const Args& a) {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  lamina_model_params mp = lamina_model_default_params();
  if (!a.kernels.empty()) mp.kernels = a.kernels.c_str();
  lamina_model* model = nullptr;
  lamina_status st = lamina_model_load(a.model.c_str(), &mp, &model);
  if (st != LAMINA_OK) return Fail("loading the model", st);
  lamina_model_info mi;
  lamina_model_get_info(model, &mi);
  const long n_prompt = a.bench_prompt, n_gen = a.n_predict;
  lamina_context* ctx = nullptr;
  if (const int rc = CreateContext(a, model, mi, false, &ctx)) return rc;
  lamina_context_info ci;
  lamina_context_get_info(ctx, &ci);
  if (n_prompt + n_gen > ci.n_ctx) {
    std::fprintf(stderr,
                 "llama-run: --bench: -p %ld + -n %ld tokens do not fit the context (%d; -c)\n",
                 n_prompt, n_gen, ci.n_ctx);
    lamina_context_free(ctx);
    lamina_model_free(model);
    return 2;
  }
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.temperature = 0;  // greedy
  lamina_sampler* smp = nullptr;
  st = lamina_sampler_create(model, &sp, &smp);
  if (st != LAMINA_OK) {
    lamina_context_free(ctx);
    lamina_model_free(model);
    return Fail("sampler", st);
  }
  std::vector<int32_t> ids(static_cast<size_t>(n_prompt));
  for (long i = 0; i < n_prompt; ++i)
    ids[i] = static_cast<int32_t>((static_cast<int64_t>(i) * 7919) % mi.vocab_size);

  std::vector<double> pre_tps, dec_tps;
  int rc = 0;
  std::unique_ptr<Spec> spec;
  if (Speculative(a)) {
    spec.reset(new Spec());
    rc = SetUpSpec(a, ci, spec.get());
  }
  for (long r = 0; r < a.reps && rc == 0; ++r) {
    lamina_kv_clear(ctx);
    Clock::time_point t0 = Clock::now();
    st = lamina_eval(ctx, ids.data(), ids.size());
    const double pre_ms = ms_since(t0);
    if (st != LAMINA_OK) {
      rc = Fail("prefill", st);
      break;
    }
    t0 = Clock::now();
    long generated = n_gen;
    if (spec && n_gen > 0) {
      // Speculative: up to n_gen tokens (a stop token may end it earlier).
      lamina_generate_result res;
      st = Generate(spec.get(), ctx, smp, nullptr, 0, static_cast<size_t>(n_gen), nullptr, nullptr,
                    &res);
      if (st != LAMINA_OK) {
        rc = Fail("decode", st);
        break;
      }
      generated = static_cast<long>(res.n_generated);
    }
    for (long g = 0; !spec && g < n_gen; ++g) {
      int32_t tok = 0;
      st = lamina_sample(smp, ctx, &tok);
      if (st == LAMINA_OK) st = lamina_eval(ctx, &tok, 1);
      if (st != LAMINA_OK) {
        rc = Fail("decode", st);
        break;
      }
    }
    const double dec_ms = ms_since(t0);
    pre_tps.push_back(pre_ms > 0 ? 1000.0 * n_prompt / pre_ms : 0);
    dec_tps.push_back(generated > 0 && dec_ms > 0 ? 1000.0 * generated / dec_ms : 0);
    if (!a.json)
      std::fprintf(stderr, "[llama-run] bench rep %ld/%ld: prefill %.2f tok/s, decode %.2f tok/s\n",
                   r + 1, a.reps, pre_tps.back(), dec_tps.back());
  }
  lamina_stats stats;
  std::memset(&stats, 0, sizeof(stats));
  lamina_context_get_stats(ctx, &stats);
  lamina_sampler_free(smp);
  lamina_context_free(ctx);
  if (rc != 0) {
    lamina_model_free(model);
    return rc;
  }
  const double pre = Median(pre_tps), dec = Median(dec_tps);
  const char* kv = KvName(ci.kv_type);
  if (a.json) {
    std::string j = "{\"model\": ";
    AppendJsonString(&j, a.model);
    char buf[2048];
    std::snprintf(
        buf, sizeof(buf),
        ", \"weight_scheme\": \"%s\", \"file_bytes\": %llu, \"dim\": %d, \"n_layers\": %d, "
        "\"n_heads\": %d, \"n_kv_heads\": %d, \"head_dim\": %d, \"ffn_dim\": %d, "
        "\"vocab_size\": %d, \"kernel_tier\": \"%s\", \"threads\": %d, \"n_ctx\": %d, "
        "\"kv_type\": \"%s\", \"kv_bytes\": %llu, \"n_batch\": %d, \"n_prompt\": %ld, "
        "\"n_gen\": %ld, \"reps\": %ld, \"load_ms\": %.3f, \"prefill_tok_s\": %.3f, "
        "\"decode_tok_s\": %.3f, ",
        mi.weight_scheme, static_cast<unsigned long long>(mi.file_bytes), mi.dim, mi.n_layers,
        mi.n_heads, mi.n_kv_heads, mi.head_dim, mi.ffn_dim, mi.vocab_size, mi.kernel_tier,
        ci.n_threads, ci.n_ctx, kv, static_cast<unsigned long long>(ci.kv_bytes), ci.n_batch,
        n_prompt, n_gen, a.reps, mi.load_ms, pre, dec);
    j += buf;
    j += "\"prefill_tok_s_runs\": " + JsonArray(pre_tps) +
         ", \"decode_tok_s_runs\": " + JsonArray(dec_tps);
    if (spec) {
      const lamina_speculative_stats& t = spec->total;
      std::snprintf(buf, sizeof(buf),
                    ", \"spec_generated\": %llu, \"spec_drafted\": %llu, \"spec_accepted\": %llu, "
                    "\"spec_target_passes\": %llu, \"spec_draft_passes\": %llu",
                    static_cast<unsigned long long>(t.generated),
                    static_cast<unsigned long long>(t.drafted),
                    static_cast<unsigned long long>(t.accepted),
                    static_cast<unsigned long long>(t.target_passes),
                    static_cast<unsigned long long>(t.draft_passes));
      j += buf;
    }
    std::snprintf(buf, sizeof(buf), ", \"peak_rss_bytes\": %llu}\n",
                  static_cast<unsigned long long>(stats.peak_rss_bytes));
    j += buf;
    std::fputs(j.c_str(), stdout);
  } else {
    std::printf("%-10s %s\n", "model", a.model.c_str());
    std::printf("%-10s dim %d, %d layers, %d heads (%d kv, head_dim %d), ffn %d, vocab %d\n",
                "dims", mi.dim, mi.n_layers, mi.n_heads, mi.n_kv_heads, mi.head_dim, mi.ffn_dim,
                mi.vocab_size);
    std::printf("%-10s %s (file %.1f MiB)\n", "weights", mi.weight_scheme,
                mi.file_bytes / 1048576.0);
    std::printf("%-10s %s\n", "kernels", mi.kernel_tier);
    std::printf("%-10s %d\n", "threads", ci.n_threads);
    std::printf("%-10s %d (KV %s, %.1f MiB), batch %d\n", "context", ci.n_ctx, kv,
                ci.kv_bytes / 1048576.0, ci.n_batch);
    std::printf("%-10s %.2f ms\n", "load", mi.load_ms);
    std::printf("%-10s %ld tokens: %10.2f tok/s  (median of %ld)\n", "prefill", n_prompt, pre,
                a.reps);
    std::printf("%-10s %ld tokens: %10.2f tok/s  (median of %ld)\n", "decode", n_gen, dec, a.reps);
    std::printf("%-10s %.1f MiB\n", "peak RSS", stats.peak_rss_bytes / 1048576.0);
  }
  if (spec) PrintSpecStats(spec->total);
  std::fflush(stdout);
  lamina_model_free(model);
  return 0;
}

// -hf: download + convert once (tools/hub), then run the cached file as -m.
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

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (const int rc = ParseArgs(argc, argv, &a)) return rc;
  if (!a.hf.empty())
    if (const int rc = ResolveHf(&a)) return rc;
  if (a.bench) return Bench(a);
  if (!a.have_seed) {
    a.sp.seed = static_cast<uint64_t>(std::time(nullptr));
    if (a.sp.temperature > 0 && a.dump_logits.empty())
      std::fprintf(stderr, "[llama-run] seed %llu\n", static_cast<unsigned long long>(a.sp.seed));
  }
  if (!a.prompt_file.empty()) {
    FILE* f = std::fopen(a.prompt_file.c_str(), "rb");
    if (!f) {
      std::fprintf(stderr, "llama-run: cannot read prompt file %s: %s\n", a.prompt_file.c_str(),
                   std::strerror(errno));
      return 1;
    }
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) a.prompt.append(buf, n);
    std::fclose(f);
    a.have_prompt = true;
  }

  lamina_model_params mp = lamina_model_default_params();
  if (!a.kernels.empty()) mp.kernels = a.kernels.c_str();
  lamina_model* model = nullptr;
  lamina_status st = lamina_model_load(a.model.c_str(), &mp, &model);
  if (st != LAMINA_OK) return Fail("loading the model", st);
  lamina_model_info mi;
  lamina_model_get_info(model, &mi);

  std::vector<int32_t> ids;
  if (!a.tokens.empty()) {
    if (!ParseTokens(a.tokens, mi.vocab_size, &ids)) {
      lamina_model_free(model);
      return 2;
    }
  } else if (a.have_prompt) {
    if (!mi.has_tokenizer) {
      std::fprintf(stderr, "llama-run: %s has no tokenizer; give the prompt with --tokens\n",
                   a.model.c_str());
      lamina_model_free(model);
      return 1;
    }
    if (!Tokenize(model, a.prompt, !a.no_bos, &ids)) {
      lamina_model_free(model);
      return 1;
    }
    if (ids.empty()) {
      std::fprintf(stderr, "llama-run: the prompt is empty\n");
      lamina_model_free(model);
      return 2;
    }
  } else if (!a.chat) {
    if (mi.bos_id < 0) {
      std::fprintf(stderr, "llama-run: no prompt and the model has no BOS token\n");
      lamina_model_free(model);
      return 2;
    }
    ids.push_back(mi.bos_id);  // unconditional generation
  }
  if (a.chat && !mi.has_tokenizer) {
    std::fprintf(stderr, "llama-run: --chat needs a model with a tokenizer\n");
    lamina_model_free(model);
    return 1;
  }

  lamina_context* ctx = nullptr;
  long n_keep = -1;  // context shift off
  if (a.keep != -2) {
    const long n_ctx = a.n_ctx > 0 ? a.n_ctx : std::min<long>(8192, mi.max_context);
    n_keep = a.keep == -1 ? static_cast<long>(ids.size()) : a.keep;
    if (n_keep >= n_ctx) {
      std::fprintf(stderr, "llama-run: --keep keeps %ld tokens, not below the context (%ld; -c)\n",
                   n_keep, n_ctx);
      lamina_model_free(model);
      return 2;
    }
  }
  if (const int rc = CreateContext(a, model, mi, !a.dump_logits.empty(), &ctx, n_keep)) return rc;
  lamina_context_info ci;
  lamina_context_get_info(ctx, &ci);
  std::fprintf(stderr,
               "[llama-run] %s: dim %d, %d layers, vocab %d, weights %s | context %d, KV %s "
               "%.1f MiB | threads %d | kernels %s\n",
               a.model.c_str(), mi.dim, mi.n_layers, mi.vocab_size, mi.weight_scheme, ci.n_ctx,
               KvName(ci.kv_type), ci.kv_bytes / 1048576.0, ci.n_threads, mi.kernel_tier);
  if (ids.size() > static_cast<size_t>(ci.n_ctx)) {
    std::fprintf(stderr, "llama-run: the prompt has %zu tokens, more than the context (%d; -c)\n",
                 ids.size(), ci.n_ctx);
    lamina_context_free(ctx);
    lamina_model_free(model);
    return 1;
  }

  int rc = 0;
  std::unique_ptr<Spec> spec;
  if (Speculative(a)) {
    spec.reset(new Spec());
    rc = SetUpSpec(a, ci, spec.get());
  }
  if (rc != 0) {
  } else if (!a.dump_logits.empty()) {
    rc = DumpLogits(ctx, ids, mi.vocab_size, ci.n_batch, a.dump_logits);
  } else {
    lamina_sampler* smp = nullptr;
    st = lamina_sampler_create(model, &a.sp, &smp);
    if (st != LAMINA_OK) {
      rc = Fail("sampler", st);
    } else {
      struct sigaction sa;
      std::memset(&sa, 0, sizeof(sa));
      sa.sa_handler = OnSigint;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = 0;  // no SA_RESTART: Ctrl-C at the chat prompt ends the read
      sigaction(SIGINT, &sa, nullptr);
      if (a.chat) {
        rc = Chat(model, ctx, smp, a, spec.get());
      } else {
        const size_t reuse = a.session.empty() ? 0 : LoadSession(ctx, a.session, ids);
        lamina_generate_result res;
        if (a.stop.empty()) {
          st = Generate(spec.get(), ctx, smp, ids.data() + reuse, ids.size() - reuse,
                        static_cast<size_t>(a.n_predict), OnToken, nullptr, &res);
        } else {
          std::vector<const char*> stop;
          for (const std::string& s : a.stop) stop.push_back(s.c_str());
          lamina_generate_params gp = lamina_generate_default_params();
          gp.max_tokens = static_cast<size_t>(a.n_predict);
          gp.stop = stop.data();
          gp.n_stop = stop.size();
          gp.callback = OnToken;
          st = lamina_generate_ex(ctx, smp, ids.data() + reuse, ids.size() - reuse, &gp, &res);
        }
        if (st != LAMINA_OK) {
          rc = Fail("generate", st);
        } else {
          std::fprintf(stdout, "\n");
          if (res.reason == LAMINA_STOP_CONTEXT_FULL)
            std::fprintf(stderr,
                         "[llama-run] stopped: context full (%d tokens; --keep N shifts it "
                         "instead)\n",
                         ci.n_ctx);
          if (res.reason == LAMINA_STOP_CALLBACK) std::fprintf(stderr, "[llama-run] interrupted\n");
          if (res.reason == LAMINA_STOP_STRING) std::fprintf(stderr, "[llama-run] stop string\n");
          if (!a.session.empty()) {
            st = lamina_state_save(ctx, a.session.c_str(), nullptr);
            if (st != LAMINA_OK)
              rc = Fail("saving the session", st);
            else
              std::fprintf(stderr, "[llama-run] session: saved %d tokens to %s\n",
                           lamina_n_past(ctx), a.session.c_str());
          }
        }
      }
      lamina_sampler_free(smp);
    }
  }
  if (rc == 0) PrintStats(ctx);
  if (rc == 0 && spec) PrintSpecStats(spec->total);
  spec.reset();
  lamina_context_free(ctx);
  lamina_model_free(model);
  return rc;
}
