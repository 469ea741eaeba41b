// The C API's object definitions and error helpers, shared by the files that
// implement lamina.h (capi.cpp, capi_grammar.cpp). Not a public header.
#pragma once

#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "engine/adapter.h"
#include "engine/engine.h"
#include "engine/grammar.h"
#include "engine/sampler.h"
#include "lamina/lamina.h"

struct lamina_model {
  explicit lamina_model(std::unique_ptr<lamina::engine::Model> model) : m(std::move(model)) {}
  std::unique_ptr<lamina::engine::Model> m;
  // The vocabulary trie of grammar-constrained sampling: built on first use,
  // then shared by every sampler of the model (call_once: thread-safe).
  std::once_flag grammar_vocab_once;
  std::shared_ptr<const lamina::engine::GrammarVocab> grammar_vocab;
};
struct lamina_context {
  std::unique_ptr<lamina::engine::Context> c;
};
struct lamina_adapter {
  std::unique_ptr<lamina::engine::Adapter> a;
};
static_assert(LAMINA_MAX_ADAPTERS == lamina::engine::kMaxAdapters, "lamina.h vs engine/adapter.h");
struct lamina_sampler {
  std::unique_ptr<lamina::engine::Sampler> s;
  const lamina_model* model = nullptr;
};
struct lamina_detokenizer {
  std::unique_ptr<lamina::StreamDecoder> d;
  std::string out;
};

namespace lamina::capi {

/// The message lamina_last_error() returns (per thread).
inline thread_local std::string g_last_error;

inline lamina_status Fail(lamina_status s, const std::string& msg) {
  g_last_error = msg;
  return s;
}

/// Runs f, turning every exception into a status + message.
template <class F>
lamina_status Guard(F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Fail(LAMINA_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return Fail(LAMINA_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return Fail(LAMINA_ERR_INTERNAL, "internal error");
  }
}

}  // namespace lamina::capi
