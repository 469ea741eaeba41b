// llama-run --dump-logits: evaluates the prompt ids and writes the logits of
// every position, raw little-endian f32 [n_tokens x vocab].
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/run/run.h"

namespace lamina::run {

int DumpLogits(lamina_context* ctx, const std::vector<int32_t>& ids, int32_t vocab, int32_t batch,
               const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    std::fprintf(stderr, "llama-run: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < ids.size(); i += static_cast<size_t>(batch)) {
    const size_t n = ids.size() - i < static_cast<size_t>(batch) ? ids.size() - i : batch;
    const lamina_status st = lamina_eval(ctx, ids.data() + i, n);
    if (st != LAMINA_OK) {
      std::fclose(f);
      return Fail("eval", st);
    }
    for (size_t j = 0; j < n; ++j) {
      const float* l = lamina_get_logits_ith(ctx, static_cast<int32_t>(j));
      // Raw little-endian f32 (every supported target is little-endian).
      if (!l || std::fwrite(l, sizeof(float), vocab, f) != static_cast<size_t>(vocab)) {
        std::fclose(f);
        std::fprintf(stderr, "llama-run: writing %s failed\n", path.c_str());
        return 1;
      }
    }
  }
  if (std::fclose(f) != 0) {
    std::fprintf(stderr, "llama-run: writing %s failed\n", path.c_str());
    return 1;
  }
  return 0;
}

}  // namespace lamina::run
