// llama-run: the usage text and the flags (a new flag goes into Args in run.h,
// Usage and ParseArgs here).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tools/run/run.h"

namespace lamina::run {
namespace {

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
      "  --grammar FILE      constrain the output to a GBNF grammar (llama.cpp format; start\n"
      "                      rule 'root')\n"
      "  --json-schema FILE  constrain the output to JSON valid for a JSON Schema (common subset:\n"
      "                      see README; unsupported keywords are an error)\n"
      "  --json              (without --bench) constrain the output to any JSON object\n"
      "                      (a warning says so if -n cut the output before it was complete)\n"
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
      "  --draft-max N       most tokens drafted per target pass (default 11, 1..64)\n"
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

}  // namespace

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
    } else if (f == "--grammar") {
      a->grammar = v;
    } else if (f == "--json-schema") {
      a->json_schema = v;
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
  const bool constrained = !a->grammar.empty() || !a->json_schema.empty() || (a->json && !a->bench);
  if (!a->grammar.empty() + !a->json_schema.empty() + (a->json && !a->bench) > 1)
    return BadUsage("give at most one of --grammar, --json-schema, --json");
  if (constrained && (a->bench || a->lookup || !a->draft.empty() || !a->dump_logits.empty()))
    return BadUsage(
        "--grammar/--json-schema do not combine with --bench, --lookup, --draft, "
        "--dump-logits");
  if (!a->bench) {
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
  if (!a->dump_logits.empty() && sources == 0)
    return BadUsage("--dump-logits needs a prompt (--tokens, -p or -f)");
  if ((a->lookup || !a->draft.empty()) && !a->dump_logits.empty())
    return BadUsage("--lookup/--draft generate; --dump-logits does not");
  return 0;
}

bool Speculative(const Args& a) { return a.lookup || !a.draft.empty(); }

}  // namespace lamina::run
