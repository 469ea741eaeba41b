// llama-run --chat: an interactive Llama 3.x instruct chat; when the context
// fills up the oldest whole turns are dropped (the system prompt stays).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/run/run.h"

namespace lamina::run {
namespace {

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

}  // namespace

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
        Generate(sp, a, ctx, smp, ids.data() + keep, ids.size() - keep,
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

}  // namespace lamina::run
