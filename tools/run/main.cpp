// llama-run: parses the flags, loads the model, builds the prompt and runs the
// mode (see run.h).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "tools/convert/json_schema.h"
#include "tools/run/run.h"

namespace lamina::run {
namespace {

/// -f FILE: appends the file to a->prompt. 0 or the exit code.
int ReadPromptFile(Args* a) {
  FILE* f = std::fopen(a->prompt_file.c_str(), "rb");
  if (!f) {
    std::fprintf(stderr, "llama-run: cannot read prompt file %s: %s\n", a->prompt_file.c_str(),
                 std::strerror(errno));
    return 1;
  }
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) a->prompt.append(buf, n);
  std::fclose(f);
  a->have_prompt = true;
  return 0;
}

/// The prompt's token ids: --tokens, the tokenized -p/-f text, or BOS alone
/// (unconditional generation; none for --chat). 0 or the exit code.
int PromptIds(const Args& a, const lamina_model* model, const lamina_model_info& mi,
              std::vector<int32_t>* ids) {
  if (!a.tokens.empty()) return ParseTokens(a.tokens, mi.vocab_size, ids) ? 0 : 2;
  if (a.have_prompt) {
    if (!mi.has_tokenizer) {
      std::fprintf(stderr, "llama-run: %s has no tokenizer; give the prompt with --tokens\n",
                   a.model.c_str());
      return 1;
    }
    if (!Tokenize(model, a.prompt, !a.no_bos, ids)) return 1;
    if (ids->empty()) {
      std::fprintf(stderr, "llama-run: the prompt is empty\n");
      return 2;
    }
    return 0;
  }
  if (a.chat) {
    if (!mi.has_tokenizer) {
      std::fprintf(stderr, "llama-run: --chat needs a model with a tokenizer\n");
      return 1;
    }
    return 0;
  }
  if (mi.bos_id < 0) {
    std::fprintf(stderr, "llama-run: no prompt and the model has no BOS token\n");
    return 2;
  }
  ids->push_back(mi.bos_id);
  return 0;
}

int Main(int argc, char** argv) {
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
  if (!a.prompt_file.empty())
    if (const int rc = ReadPromptFile(&a)) return rc;

  ModelPtr model;
  if (const int rc = LoadModel(a, a.model, "loading the model", &model)) return rc;
  lamina_model_info mi;
  lamina_model_get_info(model.get(), &mi);
  std::vector<int32_t> ids;
  if (const int rc = PromptIds(a, model.get(), mi, &ids)) return rc;

  long n_keep = -1;  // context shift off
  if (a.keep != -2) {
    const long n_ctx = a.n_ctx > 0 ? a.n_ctx : std::min<long>(8192, mi.max_context);
    n_keep = a.keep == -1 ? static_cast<long>(ids.size()) : a.keep;
    if (n_keep >= n_ctx) {
      std::fprintf(stderr, "llama-run: --keep keeps %ld tokens, not below the context (%ld; -c)\n",
                   n_keep, n_ctx);
      return 2;
    }
  }
  ContextPtr ctx;
  if (const int rc = CreateContext(a, model.get(), mi, !a.dump_logits.empty(), &ctx, n_keep))
    return rc;
  lamina_context_info ci;
  lamina_context_get_info(ctx.get(), &ci);
  std::fprintf(stderr,
               "[llama-run] %s: dim %d, %d layers, vocab %d, weights %s | context %d, KV %s "
               "%.1f MiB | threads %d | kernels %s\n",
               a.model.c_str(), mi.dim, mi.n_layers, mi.vocab_size, mi.weight_scheme, ci.n_ctx,
               KvName(ci.kv_type), ci.kv_bytes / 1048576.0, ci.n_threads, mi.kernel_tier);
  if (ids.size() > static_cast<size_t>(ci.n_ctx)) {
    std::fprintf(stderr, "llama-run: the prompt has %zu tokens, more than the context (%d; -c)\n",
                 ids.size(), ci.n_ctx);
    return 1;
  }
  std::unique_ptr<Spec> spec;  // after ctx: the draft is freed first
  if (const int rc = SetUpSpec(a, ci, &spec)) return rc;

  int rc = 0;
  if (!a.dump_logits.empty()) {
    rc = DumpLogits(ctx.get(), ids, mi.vocab_size, ci.n_batch, a.dump_logits);
  } else {
    lamina_sampler* s = nullptr;
    const lamina_status st = lamina_sampler_create(model.get(), &a.sp, &s);
    if (st != LAMINA_OK) return Fail("sampler", st);
    SamplerPtr smp(s);
    std::string gbnf, gerr;
    if (!lamina::convert::GrammarForRun(a.grammar, a.json_schema, a.json, &gbnf, &gerr)) {
      std::fprintf(stderr, "llama-run: %s\n", gerr.c_str());
      return 1;
    }
    if (!a.grammar.empty() || !a.json_schema.empty() || a.json) {
      const lamina_status gst = lamina_sampler_set_grammar(smp.get(), gbnf.c_str(), nullptr);
      if (gst != LAMINA_OK) return Fail("grammar", gst);
    }
    CatchSigint();
    rc = a.chat ? Chat(model.get(), ctx.get(), smp.get(), a, spec.get())
                : RunGenerate(a, ctx.get(), smp.get(), spec.get(), ids, ci);
  }
  if (rc != 0) return rc;
  PrintStats(ctx.get());
  if (spec) PrintSpecStats(spec->total);
  return 0;
}

}  // namespace
}  // namespace lamina::run

int main(int argc, char** argv) {
  return lamina::tools::RunMain("llama-run", lamina::run::Main, argc, argv);
}
