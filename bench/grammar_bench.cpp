// Grammar-constrained sampling cost with the 128k Llama 3 vocabulary:
//   lamina_bench --benchmark_filter=Grammar
// - GrammarTrieBuild: the vocabulary trie (once per model).
// - GrammarMaskCold/<state>: one mask from a state never seen before (the mask
//   cache cleared), at the start of a JSON value and inside a JSON string (the
//   worst case: almost every token is allowed, the whole trie is walked).
// - GrammarGenerate/<grammar>: a JSON document replayed token by token, mask +
//   advance per token, as during generation (the per-state mask cache on);
//   "per_token" (seconds, wall) is the figure to hold against a decode step.
// Needs ../shared/tokenizers/llama3 (skipped with a message when absent).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/grammar.h"
#include "tokenizer/tokenizer.h"
#include "tools/import/tokenizer_import.h"
#include "tools/convert/json_schema.h"

namespace lamina {
namespace {

using engine::Grammar;
using engine::GrammarMatcher;
using engine::GrammarVocab;

const Tokenizer* Llama3() {
  static std::unique_ptr<Tokenizer> t = [] {
    std::string err;
    return TokenizerFromFile(
        std::string(LAMINA_SHARED_DIR) + "/tokenizers/llama3/tokenizer.model", &err);
  }();
  return t.get();
}

std::vector<std::string> TokenBytes(const Tokenizer& t) {
  std::vector<std::string> b(static_cast<size_t>(t.vocab_size()));
  for (int32_t i = 0; i < t.vocab_size(); ++i)
    if (!t.IsSpecial(i)) b[static_cast<size_t>(i)] = t.TokenBytes(i);
  return b;
}

std::shared_ptr<const GrammarVocab> Vocab() {
  static std::shared_ptr<const GrammarVocab> v =
      Llama3() ? std::make_shared<GrammarVocab>(TokenBytes(*Llama3()), Llama3()->stop_ids())
               : nullptr;
  return v;
}

constexpr const char* kSchema = R"({"type":"object","properties":{
  "name":{"type":"string"},"age":{"type":"integer"},"email":{"type":"string"},
  "tags":{"type":"array","items":{"type":"string"}},
  "address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"},
    "zip":{"type":"string"}},"required":["street","city"]},
  "score":{"type":"number"},"active":{"type":"boolean"}},
  "required":["name","age","tags","address"]})";

constexpr const char* kDocument =
    R"({"name": "Ada Lovelace", "age": 36, "email": "ada@example.org", "tags": ["math", )"
    R"("poetry", "engines", "notes on the analytical engine"], "address": {"street": "12 )"
    R"(St James's Square", "city": "London", "zip": "SW1Y 4JH"}, "score": 98.25, )"
    R"("active": true})";

std::shared_ptr<const Grammar> GrammarFor(bool schema) {
  std::string gbnf, err;
  if (schema) {
    if (!convert::JsonSchemaToGbnf(kSchema, &gbnf, &err)) return nullptr;
  } else {
    gbnf = convert::JsonAnyGbnf(false);
  }
  return Grammar::Parse(gbnf, "root", &err);
}

void GrammarTrieBuild(benchmark::State& state) {
  if (!Llama3()) return state.SkipWithError("../shared/tokenizers/llama3 not found");
  const std::vector<std::string> bytes = TokenBytes(*Llama3());
  for (auto _ : state) {
    GrammarVocab v(bytes, Llama3()->stop_ids());
    benchmark::DoNotOptimize(v.nodes().data());
  }
  state.counters["nodes"] = static_cast<double>(GrammarVocab(bytes, {}).nodes().size());
}
BENCHMARK(GrammarTrieBuild)->Unit(benchmark::kMillisecond);

// prefix: bytes fed before the mask ("" = start of a value; "{\"a\": \"x" =
// inside a string).
void MaskCold(benchmark::State& state, const std::string& prefix) {
  if (!Vocab()) return state.SkipWithError("../shared/tokenizers/llama3 not found");
  auto g = GrammarFor(false);
  GrammarMatcher m(g, Vocab());
  std::string err;
  int allowed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    m.Reset();  // also drops the mask cache
    if (!m.AcceptBytes(prefix, &err)) return state.SkipWithError(err.c_str());
    state.ResumeTiming();
    const uint32_t* bits = nullptr;
    allowed = m.ComputeMask(&bits, &err);
    benchmark::DoNotOptimize(bits);
  }
  state.counters["allowed"] = allowed;
}
BENCHMARK_CAPTURE(MaskCold, value_start, std::string(""))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(MaskCold, in_string, std::string("{\"a\": \"x"))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(MaskCold, after_key, std::string("{\"a\""))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(MaskCold, in_number, std::string("[12"))->Unit(benchmark::kMicrosecond);

void GrammarGenerate(benchmark::State& state, bool schema) {
  if (!Vocab()) return state.SkipWithError("../shared/tokenizers/llama3 not found");
  std::vector<int32_t> ids;
  std::string err;
  if (!Llama3()->Encode(kDocument, false, false, &ids, &err)) return state.SkipWithError("encode");
  auto g = GrammarFor(schema);
  if (!g) return state.SkipWithError("grammar");
  GrammarMatcher m(g, Vocab());
  for (auto _ : state) {
    m.Reset();  // a new generation: the mask cache starts empty
    for (int32_t id : ids) {
      const uint32_t* bits = nullptr;
      if (m.ComputeMask(&bits, &err) <= 0) return state.SkipWithError(err.c_str());
      benchmark::DoNotOptimize(bits);
      if (!m.AcceptToken(id, &err)) return state.SkipWithError(err.c_str());
    }
  }
  state.counters["tokens"] = static_cast<double>(ids.size());
  // Seconds per token (printed with an SI prefix, e.g. "135u" = 135 us).
  state.counters["per_token"] = benchmark::Counter(
      static_cast<double>(ids.size()),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK_CAPTURE(GrammarGenerate, any_json, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(GrammarGenerate, schema, true)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lamina
