// Tokenizer benchmarks: encode throughput (bytes/s) on English prose, source
// code and CJK text; worst case (1 MB without spaces); blob load time.
//   lamina_bench --benchmark_filter=Tokenizer
// Needs ../shared/tokenizers (skipped with a message when absent).
#include <benchmark/benchmark.h>

#include <dirent.h>

#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tools/import/tokenizer_import.h"

namespace lamina {
namespace {

const std::string kShared = LAMINA_SHARED_DIR;

const Tokenizer* Llama3() {
  static std::unique_ptr<Tokenizer> t = [] {
    std::string err;
    return TokenizerFromFile(kShared + "/tokenizers/llama3/tokenizer.model", &err);
  }();
  return t.get();
}

const Tokenizer* Llama2() {
  static std::unique_ptr<Tokenizer> t = [] {
    std::string err;
    return TokenizerFromFile(kShared + "/tokenizers/llama2/tokenizer.model", &err);
  }();
  return t.get();
}

// ~1 MB of English-like prose: sentences drawn (seeded) from the words of a
// fixed paragraph, with capitals, commas, full stops and paragraph breaks.
const std::string& English() {
  static const std::string text = [] {
    const char* para =
        "The river ran quietly past the old mill, where the miller and his daughter had "
        "lived for many years. Every morning they opened the heavy wooden doors, carried "
        "sacks of grain from the carts of neighbouring farmers, and listened to the steady "
        "rhythm of the wheel. In winter the water froze along the banks, and children from "
        "the village came to skate under a pale sky while their parents talked about prices, "
        "weather, harvests and the government in the capital. Nobody expected that a "
        "stranger would arrive one evening with a letter that would change everything they "
        "believed about their family, their history and themselves. She said she had "
        "travelled through seven countries, although she couldn't explain why, and she "
        "didn't want anything except a warm room, some bread and a chance to rest.";
    std::vector<std::string> words;
    std::istringstream in(para);
    for (std::string w; in >> w;) {
      while (!w.empty() && (w.back() == ',' || w.back() == '.')) w.pop_back();
      words.push_back(w);
    }
    std::mt19937 rng(1);
    std::string s;
    while (s.size() < (1u << 20)) {
      const int n = 6 + static_cast<int>(rng() % 14);
      for (int i = 0; i < n; ++i) {
        std::string w = words[rng() % words.size()];
        if (i == 0) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        s += w;
        s += i + 1 == n ? ". " : (rng() % 9 == 0 ? ", " : " ");
      }
      if (rng() % 6 == 0) s += "\n\n";
    }
    return s;
  }();
  return text;
}

// ~1 MB of C++: the repository's own sources, repeated.
const std::string& Code() {
  static const std::string text = [] {
    std::string s;
    for (const char* dir : {"/tokenizer", "/loader", "/engine", "/kernels/ref"}) {
      const std::string d = std::string(LAMINA_SOURCE_DIR) + dir;
      DIR* dp = opendir(d.c_str());
      if (!dp) continue;
      while (dirent* e = readdir(dp)) {
        const std::string name = e->d_name;
        if (name.size() < 4 ||
            (name.substr(name.size() - 4) != ".cpp" && name.substr(name.size() - 2) != ".h"))
          continue;
        std::ifstream f(d + "/" + name, std::ios::binary);
        std::ostringstream ss;
        ss << f.rdbuf();
        s += ss.str();
      }
      closedir(dp);
    }
    if (s.empty()) s = "int main() { return 0; }\n";
    std::string out;
    while (out.size() < (1u << 20)) out += s;
    out.resize(1u << 20);
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
    return out;
  }();
  return text;
}

// ~1 MB of CJK: common Chinese characters, kana and CJK punctuation.
const std::string& Cjk() {
  static const std::string text = [] {
    const std::string chars =
        "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过"
        "家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本"
        "見る日本語のテキストをしますがありましたこれはとても長い文章です東京大阪京都北海道";
    std::vector<std::string> cps;
    for (size_t i = 0; i < chars.size(); i += 3) cps.push_back(chars.substr(i, 3));
    std::mt19937 rng(2);
    std::string s;
    while (s.size() < (1u << 20)) {
      const int n = 8 + static_cast<int>(rng() % 30);
      for (int i = 0; i < n; ++i) s += cps[rng() % cps.size()];
      s += rng() % 3 ? "，" : "。";
      if (rng() % 10 == 0) s += "\n";
    }
    return s;
  }();
  return text;
}

void Encode(benchmark::State& state, const Tokenizer* t, const std::string& text) {
  if (!t) {
    state.SkipWithError("tokenizer fixture missing (../shared/tokenizers)");
    return;
  }
  std::vector<int32_t> ids;
  std::string err;
  for (auto _ : state) {
    if (!t->Encode(text, false, true, &ids, &err)) state.SkipWithError(err.c_str());
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(ids.size());
  state.counters["bytes_per_token"] = static_cast<double>(text.size()) / ids.size();
}

void BM_TokenizerLlama3EncodeEnglish(benchmark::State& s) { Encode(s, Llama3(), English()); }
void BM_TokenizerLlama3EncodeCode(benchmark::State& s) { Encode(s, Llama3(), Code()); }
void BM_TokenizerLlama3EncodeCjk(benchmark::State& s) { Encode(s, Llama3(), Cjk()); }
void BM_TokenizerLlama3EncodeNoSpaces1MB(benchmark::State& s) {
  static const std::string text = [] {
    std::string t(1u << 20, 'a');
    std::mt19937 rng(5);
    for (auto& c : t) c = static_cast<char>('a' + rng() % 26);
    return t;
  }();
  Encode(s, Llama3(), text);
}
void BM_TokenizerLlama2EncodeEnglish(benchmark::State& s) { Encode(s, Llama2(), English()); }
void BM_TokenizerLlama2ScoredEncodeEnglish(benchmark::State& s) {
  static std::unique_ptr<Tokenizer> scored = [] {
    GgufVocab v;
    std::string err;
    if (!Llama2() || !Llama2()->ExportVocab(&v)) return std::unique_ptr<Tokenizer>();
    return TokenizerFromGguf(v, &err);
  }();
  Encode(s, scored.get(), English());
}

// Model-load cost of the embedded tokenizer: Deserialize of the Llama 3 blob.
void BM_TokenizerLlama3Deserialize(benchmark::State& state) {
  if (!Llama3()) {
    state.SkipWithError("tokenizer fixture missing (../shared/tokenizers)");
    return;
  }
  const std::vector<uint8_t> blob = Llama3()->Serialize();
  std::string err;
  for (auto _ : state) {
    auto t = Tokenizer::Deserialize(blob.data(), blob.size(), &err);
    benchmark::DoNotOptimize(t.get());
  }
  state.counters["blob_bytes"] = static_cast<double>(blob.size());
}

BENCHMARK(BM_TokenizerLlama3EncodeEnglish)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizerLlama3EncodeCode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizerLlama3EncodeCjk)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizerLlama3EncodeNoSpaces1MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizerLlama2EncodeEnglish)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizerLlama2ScoredEncodeEnglish)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TokenizerLlama3Deserialize)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lamina
