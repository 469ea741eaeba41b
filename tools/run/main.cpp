// llama-run: parses the flags, loads the model, builds the prompt and runs the
// mode (see run.h).
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "tools/run/run.h"

namespace lamina::run {
namespace {

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
        rc = RunGenerate(a, ctx, smp, spec.get(), ids, ci);
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

}  // namespace
}  // namespace lamina::run

int main(int argc, char** argv) {
  return lamina::tools::RunMain("llama-run", lamina::run::Main, argc, argv);
}
