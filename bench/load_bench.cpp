// Load time of a lamina model: ModelFile::Open (mmap + full validation of
// header, hparams, directory and graph) with no weight page touched. The
// target is < 20 ms for a Llama-3.2-1B-shaped file, independent of its size:
// compare BM_Open/1b with BM_Open/tiny.
//
//   build-fmt/bench/lamina_bench --benchmark_filter=BM_Open
//
// Models are generated on first use (random weights, `lamina-convert
// --synthetic`) under $LAMINA_BENCH_DIR (default /tmp) and kept.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "loader/model_file.h"
#include "tools/convert/convert.h"

namespace {

std::string ModelPath(const std::string& preset, const std::string& weights) {
  const char* dir = std::getenv("LAMINA_BENCH_DIR");
  const std::string path =
      std::string(dir ? dir : "/tmp") + "/lamina-bench-" + preset + "-" + weights + ".lamina";
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return path;
  lamina::convert::ConvertOptions o;
  o.weights = weights;
  o.quiet = true;
  std::string err;
  if (!lamina::convert::ConvertSynthetic(preset, 1, path, o, &err)) {
    std::fprintf(stderr, "load_bench: cannot generate %s: %s\n", path.c_str(), err.c_str());
    return "";
  }
  return path;
}

// Evicts the file from the page cache (clean pages; no privileges needed), so
// the next open reads its header and directory from the disk.
void DropCache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

void Open(benchmark::State& state, const std::string& preset, const std::string& weights,
          lamina::LoadOptions opts, bool cold = false) {
  const std::string path = ModelPath(preset, weights);
  if (path.empty()) {
    state.SkipWithError("model generation failed");
    return;
  }
  std::string err;
  size_t bytes = 0, tensors = 0;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      DropCache(path);
      state.ResumeTiming();
    }
    auto m = lamina::ModelFile::Open(path, opts, &err);
    if (!m) {
      state.SkipWithError(err.c_str());
      return;
    }
    bytes = m->file_size();
    tensors = m->n_tensors();
    benchmark::DoNotOptimize(m->hparams().dim);
  }
  state.counters["file_MiB"] = static_cast<double>(bytes) / (1 << 20);
  state.counters["tensors"] = static_cast<double>(tensors);
}

void BM_Open_1b_q4(benchmark::State& s) { Open(s, "1b", "q4", {}); }
void BM_Open_3b_q4(benchmark::State& s) { Open(s, "3b", "q4", {}); }
void BM_Open_tiny_q4(benchmark::State& s) { Open(s, "tiny", "q4", {}); }
// Cold page cache: the open reads the header and directory pages from disk.
void BM_Open_1b_q4_cold(benchmark::State& s) { Open(s, "1b", "q4", {}, true); }
void BM_Open_1b_q4_willneed(benchmark::State& s) {
  lamina::LoadOptions o;
  o.willneed = true;
  Open(s, "1b", "q4", o);
}

BENCHMARK(BM_Open_tiny_q4)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Open_1b_q4)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Open_1b_q4_cold)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Open_1b_q4_willneed)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Open_3b_q4)->Unit(benchmark::kMillisecond);

}  // namespace
