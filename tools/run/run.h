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
//
// Files (tools/run/): run.h (this: the flags and what the modes share),
// args.cpp (usage text and flag parsing: a new flag goes into Args, Usage and
// ParseArgs), common.cpp (model loading, contexts, tokenizing, speculative
// decoding, statistics, -hf), generate.cpp (-p/-f/--tokens generation,
// --session, --stop), chat.cpp (--chat), bench.cpp (--bench), dump_logits.cpp
// (--dump-logits), main.cpp (prompt, sampler, mode dispatch).
#pragma once

#include <csignal>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lamina/lamina.h"
#include "tools/common/cli.h"
#include "tools/common/handles.h"

namespace lamina::run {

using lamina::tools::ContextPtr;  // owning handles (tools/common/handles.h)
using lamina::tools::ModelPtr;
using lamina::tools::ParseLong;
using lamina::tools::SamplerPtr;

/// The flags (args.cpp).
struct Args {
  std::string hf;  // -hf ORG/REPO[:FILE]
  std::string model, prompt, prompt_file, tokens, dump_logits, kernels, system, session;
  long keep = -2;  // --keep: -2 off, -1 the whole prompt, else a token count
  // speculative decoding
  bool lookup = false;
  std::string draft;
  long lookup_ngram = 3, draft_max = 11;
  bool have_prompt = false, chat = false, no_bos = false, have_seed = false;
  bool have_n = false;
  long n_predict = 128, n_ctx = 0, n_threads = 0, n_batch = 0;
  // --bench
  bool bench = false, json = false, have_reps = false;
  long bench_prompt = 64, reps = 3;
  std::string sampling_flag;         // the last sampling option given (--bench is greedy)
  std::vector<std::string> stop;     // --stop (repeatable)
  std::string grammar, json_schema;  // --grammar FILE, --json-schema FILE
  std::vector<std::string> lora;     // --lora (repeatable)
  std::vector<float> lora_scale;     // --lora-scale of each --lora (default 1)
  lamina_kv_type kv = LAMINA_KV_F16;
  lamina_sampler_params sp = lamina_sampler_default_params();
};

/// Parses argv into *a; returns 0 on success, else the exit code (usage
/// errors print a message and return 2; --help prints the usage and exits).
int ParseArgs(int argc, char** argv, Args* a);
bool Speculative(const Args& a);

const char* KvName(lamina_kv_type t);
extern volatile std::sig_atomic_t g_interrupted;  // set by SIGINT (Ctrl-C)
void OnSigint(int);
/// Prints "llama-run: WHAT: <last error> (<status>)" and returns 1.
int Fail(const char* what, lamina_status st);

// Speculative decoding state of a run: the draft model and context (if any),
// the parameters, and the statistics summed over every generation.
struct Spec {
  ModelPtr model;
  ContextPtr ctx;  // after model: freed first
  lamina_speculative_params params = lamina_speculative_default_params();
  lamina_speculative_stats total{};
};

/// With --lookup/--draft: the Spec of the run, with the draft model loaded and
/// its context created as the target's (-c, -t, -b, --kv, --kernels); without
/// them *out stays empty. Returns 0 or the exit code.
int SetUpSpec(const Args& a, const lamina_context_info& target, std::unique_ptr<Spec>* out);
/// lamina_generate_ex, or its speculative form when --lookup/--draft is given;
/// the --stop strings apply to either.
lamina_status Generate(Spec* sp, const Args& a, lamina_context* ctx, lamina_sampler* smp,
                       const int32_t* ids, size_t n, size_t max_tokens, lamina_token_callback cb,
                       void* user, lamina_generate_result* res);
void PrintSpecStats(const lamina_speculative_stats& t);
/// Loads the model at `path` with --kernels; on failure prints "WHAT: why"
/// and returns the exit code (0 on success).
int LoadModel(const Args& a, const std::string& path, const char* what, ModelPtr* out);
/// Creates the context the flags ask for (-c, -t, -b, --kv; n_keep >= 0: context
/// shift keeping n_keep tokens); on failure prints why and returns the exit
/// code (0 on success).
int CreateContext(const Args& a, const lamina_model* model, const lamina_model_info& mi,
                  bool logits_all, ContextPtr* ctx, long n_keep = -1);
/// Sends SIGINT (Ctrl-C) to OnSigint: generation stops at the next token.
void CatchSigint();
bool ParseTokens(const std::string& s, int32_t vocab, std::vector<int32_t>* out);
bool Tokenize(const lamina_model* m, const std::string& text, bool add_bos,
              std::vector<int32_t>* out);
/// Token callback of plain generation: streams the text (or the ids) to stdout.
int OnToken(int32_t tok, const char* piece, size_t len, void*);
void PrintStats(lamina_context* ctx);
/// -hf: download + convert once (tools/hub), then run the cached file as -m.
int ResolveHf(Args* a);

// The modes; each returns the exit status.
/// -p/-f/--tokens generation of ids (with --session, --stop, --keep).
int RunGenerate(const Args& a, lamina_context* ctx, lamina_sampler* smp, Spec* spec,
                const std::vector<int32_t>& ids, const lamina_context_info& ci);
int Chat(lamina_model* model, lamina_context* ctx, lamina_sampler* smp, const Args& a, Spec* sp);
int Bench(const Args& a);
int DumpLogits(lamina_context* ctx, const std::vector<int32_t>& ids, int32_t vocab, int32_t batch,
               const std::string& path);

}  // namespace lamina::run
