// The C API of grammar-constrained sampling (lamina.h, "constrained output").
#include <string>
#include <vector>

#include "engine/capi_internal.h"
#include "engine/grammar.h"
#include "lamina/lamina.h"

using lamina::capi::Fail;
using lamina::capi::Guard;
using lamina::engine::GrammarVocab;

namespace {

// Token bytes of the model's vocabulary (special tokens: none), once per model.
std::shared_ptr<const GrammarVocab> ModelVocab(const lamina_model* m) {
  auto* mm = const_cast<lamina_model*>(m);  // the cache is the only mutable part
  std::call_once(mm->grammar_vocab_once, [mm] {
    const lamina::Tokenizer* tok = mm->m->tokenizer();
    const int32_t n = mm->m->config().vocab;
    std::vector<std::string> bytes(static_cast<size_t>(n));
    for (int32_t i = 0; i < n && i < tok->vocab_size(); ++i)
      if (!tok->IsSpecial(i)) bytes[static_cast<size_t>(i)] = tok->TokenBytes(i);
    mm->grammar_vocab = std::make_shared<const GrammarVocab>(bytes, mm->m->config().stop_ids);
  });
  return mm->grammar_vocab;
}

}  // namespace

extern "C" {

lamina_status lamina_sampler_set_grammar(lamina_sampler* s, const char* gbnf, const char* root) {
  return Guard([&]() -> lamina_status {
    if (!s) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_sampler_set_grammar: NULL sampler");
    if (!gbnf) {
      s->s->SetGrammar(nullptr);
      return LAMINA_OK;
    }
    std::string err;
    auto g = lamina::engine::Grammar::Parse(gbnf, root ? root : "root", &err);
    if (!g) return Fail(LAMINA_ERR_INVALID_ARG, "lamina_sampler_set_grammar: " + err);
    if (!s->model->m->tokenizer())
      return Fail(LAMINA_ERR_NO_TOKENIZER,
                  "lamina_sampler_set_grammar: a grammar needs the "
                  "model's tokenizer: " +
                      s->model->m->tokenizer_error());
    s->s->SetGrammar(std::make_unique<lamina::engine::GrammarMatcher>(g, ModelVocab(s->model)));
    return LAMINA_OK;
  });
}

void lamina_sampler_grammar_reset(lamina_sampler* s) {
  if (s && s->s->grammar()) s->s->grammar()->Reset();
}

lamina_grammar_state lamina_sampler_grammar_state(const lamina_sampler* s) {
  if (!s || !s->s->grammar()) return LAMINA_GRAMMAR_NONE;
  const lamina::engine::GrammarMatcher& g = *s->s->grammar();
  return g.Ended() || g.CanEnd() ? LAMINA_GRAMMAR_COMPLETE : LAMINA_GRAMMAR_INCOMPLETE;
}

}  // extern "C"
