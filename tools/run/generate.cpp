// llama-run -p/-f/--tokens: generation of a prompt's continuation, streamed to
// stdout (with --session, --stop, --keep).
#include <cstdio>
#include <string>
#include <vector>

#include "tools/run/run.h"

namespace lamina::run {
namespace {

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

}  // namespace

int RunGenerate(const Args& a, lamina_context* ctx, lamina_sampler* smp, Spec* spec,
                const std::vector<int32_t>& ids, const lamina_context_info& ci) {
  const size_t reuse = a.session.empty() ? 0 : LoadSession(ctx, a.session, ids);
  lamina_generate_result res;
  lamina_status st;
  st = Generate(spec, a, ctx, smp, ids.data() + reuse, ids.size() - reuse,
                static_cast<size_t>(a.n_predict), OnToken, nullptr, &res);
  if (st != LAMINA_OK) return Fail("generate", st);
  std::fprintf(stdout, "\n");
  if (res.reason == LAMINA_STOP_CONTEXT_FULL)
    std::fprintf(stderr,
                 "[llama-run] stopped: context full (%d tokens; --keep N shifts it "
                 "instead)\n",
                 ci.n_ctx);
  if (res.reason == LAMINA_STOP_CALLBACK) std::fprintf(stderr, "[llama-run] interrupted\n");
  if (res.reason == LAMINA_STOP_STRING) std::fprintf(stderr, "[llama-run] stop string\n");
  if (lamina_sampler_grammar_state(smp) == LAMINA_GRAMMAR_INCOMPLETE)
    std::fprintf(stderr,
                 "[llama-run] grammar: the output is incomplete (cut before the grammar could "
                 "end; raise -n)\n");
  if (!a.session.empty()) {
    st = lamina_state_save(ctx, a.session.c_str(), nullptr);
    if (st != LAMINA_OK) return Fail("saving the session", st);
    std::fprintf(stderr, "[llama-run] session: saved %d tokens to %s\n", lamina_n_past(ctx),
                 a.session.c_str());
  }
  return 0;
}

}  // namespace lamina::run
