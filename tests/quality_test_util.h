// Helpers of the quality tests (lamina-perplexity, lamina-convert's quantizers).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace lamina::test {

inline std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline void WriteFile(const std::string& path, const std::string& s) {
  std::ofstream f(path, std::ios::binary);
  f << s;
}

/// The number after "key": in a flat JSON object (NaN when absent).
inline double JsonNumber(const std::string& js, const std::string& key) {
  const size_t p = js.find("\"" + key + "\"");
  if (p == std::string::npos) return std::nan("");
  return std::strtod(js.c_str() + js.find(':', p) + 1, nullptr);
}

/// A small random llama2.c checkpoint (.bin, version 0): dim 64, ffn `ff`
/// (default 160), 2 layers, 4 heads (2 kv), vocab 40, seq_len 128 (or
/// `seq_len`), untied classifier, no tokenizer beside it.
inline bool WriteLlama2cCheckpoint(const std::string& path, uint64_t seed, int32_t seq_len = 128,
                                   int32_t ff = 160) {
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos) std::system(("mkdir -p '" + path.substr(0, slash) + "'").c_str());
  const int32_t d = 64, L = 2, H = 4, KV = 2, V = 40, S = seq_len;
  const int32_t kvd = d / H * KV, hd = d / H;
  const int32_t hdr[7] = {d, ff, L, H, KV, -V, S};  // negative vocab: untied classifier
  std::vector<float> w;
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto rnd = [&s](float scale) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return scale * (static_cast<float>(s >> 40) / 8388608.0f - 1.0f);
  };
  auto fill = [&](size_t n, float scale, float bias) {
    for (size_t i = 0; i < n; ++i) w.push_back(bias + rnd(scale));
  };
  fill(size_t{V} * d, 0.5f, 0);             // token_embedding
  fill(size_t{L} * d, 0.1f, 1);             // rms_att
  fill(size_t{L} * d * d, 0.2f, 0);         // wq
  fill(size_t{L} * kvd * d, 0.2f, 0);       // wk
  fill(size_t{L} * kvd * d, 0.2f, 0);       // wv
  fill(size_t{L} * d * d, 0.2f, 0);         // wo
  fill(size_t{L} * d, 0.1f, 1);             // rms_ffn
  fill(size_t{L} * ff * d, 0.2f, 0);        // w1
  fill(size_t{L} * d * ff, 0.15f, 0);       // w2
  fill(size_t{L} * ff * d, 0.2f, 0);        // w3
  fill(d, 0.1f, 1);                         // rms_final
  fill(static_cast<size_t>(S) * hd, 0, 0);  // freq_cis_real + imag (unused)
  fill(size_t{V} * d, 0.5f, 0);             // wcls
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(hdr, sizeof(hdr), 1, f) == 1 &&
            std::fwrite(w.data(), sizeof(float), w.size(), f) == w.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace lamina::test
