// Internals shared by the converters: row-streamed tensor emission (bounded
// memory: the float form of a whole matrix is never needed), read-only file
// mappings, progress and the end-of-run summary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "loader/format.h"
#include "loader/model_writer.h"
#include "tools/convert/convert.h"
#include "tools/convert/mapped_file.h"

namespace lamina::convert {

/// Fills `n` rows starting at row `r0` of a [N, K] matrix as f32 (n*K values).
using RowFn = std::function<void(uint64_t r0, uint64_t n, float* out)>;

/// The file type a float tensor of `role` gets under `opts.weights`,
/// `opts.output` and `opts.embedding` (convert.h rules). False + *err for an
/// unknown scheme or type name.
bool TypeFor(Role role, const ConvertOptions& opts, format::DType* dtype, std::string* err);
/// Whether a checkpoint with tied embeddings must be written untied: the
/// output layer and the embedding resolve to different types, so the file
/// holds two tensors ("output" from the embedding's float values, without
/// kFlagTiedEmbeddings). False when the options are invalid (TypeFor reports).
bool OutputUntied(const ConvertOptions& opts);
/// The q4g layout lamina-convert writes for its own quantization
/// (opts.q4_scales: f16 -> Q4G_R4K8_F16S, f32 -> Q4G_R4K8).
format::Layout Q4Layout(const ConvertOptions& opts);

/// Counts, progress and the summary of one conversion.
class Stats {
 public:
  explicit Stats(bool quiet) : quiet_(quiet) {}
  /// Number of tensors expected (for the progress counter).
  void Begin(size_t total) { total_ = total; }
  /// Records an appended tensor (logical element count, its dtype).
  void Add(const std::string& name, format::DType dtype, const std::vector<uint64_t>& shape);
  /// Prints the summary line(s) to stderr (unless quiet).
  void Summary(const std::string& out, uint64_t file_size) const;
  uint64_t params() const { return params_; }
  void Warn(const std::string& msg) const;

 private:
  bool quiet_;
  size_t total_ = 0, done_ = 0;
  uint64_t params_ = 0;
  uint64_t count_[5] = {};
};

/// Quantizes/stores a [N, K] matrix whose rows come from `rows` (read in
/// chunks), under `opts.weights`. Only the packed output is held in memory.
bool EmitMatrix(ModelWriter& w, Stats* stats, const std::string& name, Role role, uint64_t N,
                uint64_t K, const RowFn& rows, const ConvertOptions& opts, std::string* err,
                uint32_t tensor_flags = 0);
/// A 1-D f32 tensor (norm weights).
bool EmitVector(ModelWriter& w, Stats* stats, const std::string& name, const float* data,
                uint64_t n, std::string* err);

/// Directory part of a path ("." when none).
std::string DirName(const std::string& path);
bool IsFile(const std::string& path);
bool IsDir(const std::string& path);

/// Embeds the tokenizer at `path` (any TokenizerFromFile kind) into `w`;
/// fills its bos/eos/stop ids when `hp` lacks them (hp ids left untouched
/// when `keep_ids`). False + *err on a broken tokenizer file.
bool EmbedTokenizerFile(ModelWriter& w, const std::string& path, format::HParams* hp, bool keep_ids,
                        std::string* err);

}  // namespace lamina::convert
