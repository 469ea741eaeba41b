// ThreadSanitizer race test (preset tsan, ctest label "tsan"): one model, four
// contexts on four threads at once, each generating (its own thread pool of 2),
// tokenizing, detokenizing (streaming) and rendering + tokenizing chat with a
// shared Llama 3-shaped tokenizer. Every thread must produce exactly the
// tokens of a single-threaded reference run with its seed; TSan
// (halt_on_error=1) fails the test on any data race.
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "lamina/lamina.h"
#include "tests/fuzz/fuzz_util.h"
#include "tools/convert/convert.h"

namespace {

constexpr int kThreads = 4;
constexpr size_t kGenerate = 12;

struct Run {
  std::vector<int32_t> tokens;
  std::string text;
  std::string error;
};

int EmitCb(int32_t token, const char* piece, size_t len, void* user) {
  Run* r = static_cast<Run*>(user);
  if (token >= 0) r->tokens.push_back(token);
  if (piece) r->text.append(piece, len);
  return 0;
}

// One thread's work: generation with sampler seed `seed`, tokenization and
// chat rendering (results are checked by the caller).
Run Work(const lamina_model* m, const lamina::Tokenizer& chat_tok, uint64_t seed) {
  Run r;
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = 64;
  cp.n_threads = 2;
  lamina_context* c = nullptr;
  if (lamina_context_create(m, &cp, &c) != LAMINA_OK) {
    r.error = std::string("context: ") + lamina_last_error();
    return r;
  }
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.seed = seed;
  lamina_sampler* s = nullptr;
  if (lamina_sampler_create(m, &sp, &s) != LAMINA_OK) {
    r.error = std::string("sampler: ") + lamina_last_error();
    lamina_context_free(c);
    return r;
  }
  const std::string prompt = "Once upon a time " + std::to_string(seed);
  int32_t ids[128];
  size_t n = 0;
  if (lamina_tokenize(m, prompt.data(), prompt.size(), 1, 1, ids, 128, &n) != LAMINA_OK) {
    r.error = std::string("tokenize: ") + lamina_last_error();
  } else if (lamina_generate(c, s, ids, n, kGenerate, EmitCb, &r, nullptr) != LAMINA_OK) {
    r.error = std::string("generate: ") + lamina_last_error();
  }
  // Detokenize (whole and streaming) and the chat template of the model.
  char buf[1024];
  size_t nb = 0;
  if (r.error.empty() &&
      lamina_detokenize(m, r.tokens.data(), r.tokens.size(), buf, sizeof(buf), &nb) != LAMINA_OK)
    r.error = std::string("detokenize: ") + lamina_last_error();
  lamina_detokenizer* d = nullptr;
  if (r.error.empty() && lamina_detokenizer_create(m, &d) == LAMINA_OK) {
    std::string streamed;
    for (int32_t t : r.tokens) streamed += lamina_detokenizer_push(d, t);
    streamed += lamina_detokenizer_flush(d);
    if (streamed != r.text) r.error = "streamed text differs from the callback's";
    lamina_detokenizer_free(d);
  }
  const lamina_chat_message msg = {"user", prompt.c_str()};
  (void)lamina_chat_apply_template(m, &msg, 1, 1, buf, sizeof(buf), &nb);
  // Shared Llama 3-shaped tokenizer: render, tokenize (its merge cache is
  // shared between threads), decode.
  for (int k = 0; k < 20 && r.error.empty(); ++k) {
    const std::string text = chat_tok.ApplyChatTemplate(
        {{"system", "Be terse."}, {"user", prompt + " #" + std::to_string(k)}}, true);
    std::vector<int32_t> v;
    std::string err;
    if (!chat_tok.Encode(text, false, true, &v, &err) || chat_tok.Decode(v) != text)
      r.error = "chat tokenize round trip: " + err;
  }
  lamina_sampler_free(s);
  lamina_context_free(c);
  return r;
}

}  // namespace

int main() {
  const std::string path = lamina::fuzz::Dir() + "/tsan.lamina";
  lamina::convert::ConvertOptions o;
  o.quiet = true;
  std::string err;
  if (!lamina::convert::ConvertSynthetic("tiny", 5, path, o, &err)) {
    std::fprintf(stderr, "tsan: synthetic model: %s\n", err.c_str());
    return 1;
  }
  lamina_model* m = nullptr;
  if (lamina_model_load(path.c_str(), nullptr, &m) != LAMINA_OK) {
    std::fprintf(stderr, "tsan: load: %s\n", lamina_last_error());
    return 1;
  }
  const auto chat_tok = lamina::fuzz::MakeLlama3Like();
  // Reference: every seed alone.
  std::vector<Run> want;
  for (int i = 0; i < kThreads; ++i) want.push_back(Work(m, *chat_tok, 100 + i));
  // The same four at once.
  std::vector<Run> got(kThreads);
  std::vector<std::thread> th;
  for (int i = 0; i < kThreads; ++i)
    th.emplace_back([&, i] { got[i] = Work(m, *chat_tok, 100 + i); });
  for (auto& t : th) t.join();
  int bad = 0;
  for (int i = 0; i < kThreads; ++i) {
    if (!want[i].error.empty() || !got[i].error.empty()) {
      std::fprintf(stderr, "tsan: thread %d: %s%s\n", i, want[i].error.c_str(),
                   got[i].error.c_str());
      ++bad;
    } else if (got[i].tokens != want[i].tokens || got[i].tokens.empty()) {
      std::fprintf(stderr, "tsan: thread %d generated other tokens than alone\n", i);
      ++bad;
    }
  }
  lamina_model_free(m);
  std::printf("tsan: %d contexts x %zu tokens on %d threads: %s\n", kThreads, kGenerate, kThreads,
              bad ? "FAILED" : "identical to the single-threaded runs, no race reported");
  return bad ? 1 : 0;
}
